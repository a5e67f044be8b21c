//! Producers with a broker: the relay that publishes the outbox to a stream, in order.
//!
//! The outbox stays the source of truth. The relay reads events after the last one it
//! published, publishes each with the event's id as `Nats-Msg-Id` (the server drops a
//! duplicate within its de-duplication window, so publishing again after a crash is
//! harmless), waits for the server's acknowledgements, and only then records how far it got,
//! with the stream sequence the last event received. One instance relays at a time (a lease).

use contracts::events::Cursor;
use storage::{DbError, Tx};

/// The last outbox cursor published to `stream`, and the stream sequence it received.
pub(crate) fn published(tx: &mut Tx<'_>, stream: &str) -> Result<(Cursor, i64), DbError> {
    let row: Option<(i64, i64, i64)> = tx.query_opt(
        "SELECT tx, seq, stream_seq FROM relay_positions WHERE stream = $1",
        &[&stream],
    )?;
    Ok(row.map_or((Cursor::START, 0), |(t, s, stream_seq)| {
        (Cursor::new(t, s), stream_seq)
    }))
}

/// Records that everything up to `cursor` is published, the last as `stream_seq`.
#[allow(dead_code)] // The NATS relay, next, writes it.
pub(crate) fn record(
    tx: &mut Tx<'_>,
    stream: &str,
    cursor: Cursor,
    stream_seq: i64,
) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO relay_positions (stream, tx, seq, stream_seq) VALUES ($1, $2, $3, $4)
         ON CONFLICT (stream) DO UPDATE SET tx = excluded.tx, seq = excluded.seq,
             stream_seq = excluded.stream_seq
         WHERE (relay_positions.tx, relay_positions.seq) < (excluded.tx, excluded.seq)",
        &[&stream, &cursor.tx, &cursor.seq, &stream_seq],
    )?;
    Ok(())
}
