//! Producers with a broker: the relay that publishes the outbox to a stream, in order.
//!
//! The outbox stays the source of truth. The relay reads events after the last one it
//! published, publishes each with the event's id as `Nats-Msg-Id` (the server drops a
//! duplicate within its de-duplication window, so publishing again after a crash is
//! harmless), waits for the server's acknowledgements, and only then records how far it got,
//! with the stream sequence the last event received. One instance relays at a time (a lease).

use std::time::Duration;

use async_nats::jetstream::message::PublishMessage as Publish;
use contracts::events::Cursor;
use storage::{Db, DbError, Tx};
use tokio_util::sync::CancellationToken;

use crate::lease::{LEASE_TTL, Lease};
use crate::nats::{Broker, RECORDED_AT_HEADER};
use crate::outbox::{self, Outbox};

/// Events published per round at most: the acknowledgements of one round are awaited
/// together, so a round is a few milliseconds however many events it carries.
const ROUND_EVENTS_MAX: i64 = 500;

/// How long the relay sleeps when the outbox has nothing new, unless a local commit wakes it
/// sooner: bounds the lag of events committed by another instance of the service.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// First wait after a failure (the broker down); it doubles up to two seconds.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// A producer's relay, ready to run.
pub struct Relay {
    pub db: Db,
    pub outbox: Outbox,
    pub broker: Broker,
    /// The producing service.
    pub producer: &'static str,
    /// Every consumer of its feed (their durables are created with the stream).
    pub consumers: Vec<&'static str>,
    /// This process among the service's instances: one relays at a time.
    pub instance: String,
}

impl Relay {
    /// Relays until `shutdown`. Failures (the broker down, the database busy) are logged and
    /// retried with backoff; nothing is given up.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let stream = self.broker.stream_name(self.producer);
        let lease = Lease::new(format!("relay:{stream}"), self.instance.clone());
        let mut backoff = BACKOFF_MIN;
        loop {
            let round = tokio::select! {
                _ = shutdown.cancelled() => break,
                round = self.round(&lease, &stream) => round,
            };
            match round {
                Ok(0) => {
                    backoff = BACKOFF_MIN;
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        () = self.outbox.wait_for_commit(IDLE_POLL) => {}
                    }
                }
                Ok(_) => backoff = BACKOFF_MIN,
                Err(error) => {
                    tracing::warn!(
                        stream,
                        error = format!("{error:#}"),
                        "relay failed; retrying"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        let _ = lease.release(&self.db).await;
        Ok(())
    }

    /// One round: publishes what follows the recorded position and records how far it got;
    /// returns how many events it published.
    async fn round(&self, lease: &Lease, stream: &str) -> anyhow::Result<usize> {
        if !lease.try_hold(&self.db).await? {
            tokio::time::sleep(LEASE_TTL / 3).await;
            return Ok(0);
        }
        let name = stream.to_owned();
        let (events, _) = self
            .db
            .read(move |tx| {
                let (after, stream_seq) = published(tx, &name)?;
                Ok::<_, DbError>((outbox::page(tx, after, ROUND_EVENTS_MAX)?, stream_seq))
            })
            .await?;
        let Some(last) = events.last().map(|e| e.cursor()) else {
            return Ok(0);
        };
        self.broker.stream(self.producer, &self.consumers).await?;
        let subject = self.broker.subject(self.producer);
        // Publish the round, then wait for every acknowledgement: in order, pipelined.
        let mut acks = Vec::with_capacity(events.len());
        for event in &events {
            let message = Publish::build()
                .payload(event.body.get().to_owned().into())
                .message_id(&event.id)
                .header(
                    RECORDED_AT_HEADER,
                    event.recorded_at_ms.to_string().as_str(),
                );
            match self
                .broker
                .jetstream()
                .send_publish(subject.clone(), message)
                .await
            {
                Ok(ack) => acks.push(ack),
                Err(error) => {
                    self.broker.forget(self.producer).await;
                    return Err(error.into());
                }
            }
        }
        let mut stream_seq = 0;
        for ack in acks {
            let ack = ack
                .await
                .map_err(|e| anyhow::anyhow!("publish not acknowledged: {e}"))?;
            stream_seq = ack.sequence as i64;
        }
        // Published, not yet recorded: a relay that restarts publishes the round again, and
        // the broker drops the duplicates.
        runtime::crash_point(&format!("{}::after-publish", self.producer));
        let (lease, name) = (lease.clone(), stream.to_owned());
        self.db
            .write(move |tx| {
                lease.fence(tx)?;
                record(tx, &name, last, stream_seq)
            })
            .await?;
        Ok(events.len())
    }
}

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
