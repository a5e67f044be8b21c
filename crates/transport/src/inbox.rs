//! A consumer's bookkeeping, kept in its own database: its position in each feed, and the
//! events it set aside.

use contracts::events::{Cursor, Event};
use contracts::internal::DeadLetter;
use storage::{DbError, Tx};

/// The position of the last event applied from `feed`; the start before the first.
pub fn position(tx: &mut Tx<'_>, feed: &str) -> Result<Cursor, DbError> {
    let position: Option<(i64, i64)> = tx.query_opt(
        "SELECT tx, seq FROM inbox_positions WHERE feed = $1",
        &[&feed],
    )?;
    Ok(position.map_or(Cursor::START, |(t, s)| Cursor::new(t, s)))
}

/// Every feed's position.
pub fn positions(tx: &mut Tx<'_>) -> Result<Vec<(String, Cursor)>, DbError> {
    let rows: Vec<(String, i64, i64)> = tx.query(
        "SELECT feed, tx, seq FROM inbox_positions ORDER BY feed",
        &[],
    )?;
    Ok(rows
        .into_iter()
        .map(|(feed, t, s)| (feed, Cursor::new(t, s)))
        .collect())
}

/// Moves the position forward inside the caller's write: the effect and the record that it
/// was applied commit together, or neither does. Never moves it back.
pub fn advance(tx: &mut Tx<'_>, feed: &str, to: Cursor) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO inbox_positions (feed, tx, seq) VALUES ($1, $2, $3)
         ON CONFLICT (feed) DO UPDATE SET tx = excluded.tx, seq = excluded.seq
         WHERE (inbox_positions.tx, inbox_positions.seq) < (excluded.tx, excluded.seq)",
        &[&feed, &to.tx, &to.seq],
    )?;
    Ok(())
}

/// Sets an event aside and moves past it, in the caller's write, so the events behind it
/// flow on.
pub fn dead_letter(
    tx: &mut Tx<'_>,
    feed: &str,
    event: &Event,
    error: &str,
    attempts: u32,
) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO dead_letters (feed, tx, seq, event_id, body, error, attempts, recorded_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (feed, tx, seq) DO NOTHING",
        &[
            &feed,
            &event.tx,
            &event.seq,
            &event.id,
            &event.body.get(),
            &error,
            &i64::from(attempts),
            &contracts::now_ms(),
        ],
    )?;
    advance(tx, feed, event.cursor())
}

/// Dead letters listed at most: the list is for an operator to act on, not an archive.
pub const DEAD_LETTERS_LISTED_MAX: i64 = 1_000;

type DeadLetterRow = (i64, String, i64, i64, String, String, String, i64, i64);

fn from_row(row: DeadLetterRow, with_body: bool) -> DeadLetter {
    let (id, feed, t, s, event_id, body, error, attempts, recorded_at_ms) = row;
    DeadLetter {
        id,
        feed,
        cursor: Cursor::new(t, s),
        event_id,
        body: with_body
            .then(|| serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body))),
        error,
        attempts,
        recorded_at_ms,
    }
}

const COLUMNS: &str = "id, feed, tx, seq, event_id, body, error, attempts, recorded_at_ms";

/// The dead letters, oldest first; with their bodies only if `with_body`.
pub fn dead_letters(tx: &mut Tx<'_>, with_body: bool) -> Result<Vec<DeadLetter>, DbError> {
    let rows: Vec<DeadLetterRow> = tx.query(
        &format!("SELECT {COLUMNS} FROM dead_letters ORDER BY id LIMIT $1"),
        &[&DEAD_LETTERS_LISTED_MAX],
    )?;
    Ok(rows.into_iter().map(|r| from_row(r, with_body)).collect())
}

/// One dead letter, as the event it was.
pub fn dead_letter_event(tx: &mut Tx<'_>, id: i64) -> Result<Option<(String, Event)>, DbError> {
    let row: Option<DeadLetterRow> = tx.query_opt(
        &format!("SELECT {COLUMNS} FROM dead_letters WHERE id = $1"),
        &[&id],
    )?;
    Ok(
        row.map(|(_, feed, t, s, event_id, body, _, _, recorded_at_ms)| {
            (
                feed,
                Event::from_stored(Cursor::new(t, s), event_id, recorded_at_ms, body),
            )
        }),
    )
}

/// Removes a dead letter; whether it was there.
pub fn remove_dead_letter(tx: &mut Tx<'_>, id: i64) -> Result<bool, DbError> {
    Ok(tx.execute("DELETE FROM dead_letters WHERE id = $1", &[&id])? == 1)
}

/// Records that a replay failed again.
pub fn replay_failed(tx: &mut Tx<'_>, id: i64, error: &str) -> Result<(), DbError> {
    tx.execute(
        "UPDATE dead_letters SET error = $2, attempts = attempts + 1 WHERE id = $1",
        &[&id, &error],
    )?;
    Ok(())
}
