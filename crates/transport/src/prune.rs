//! Bounded disk: what is no longer needed is deleted, so a service that runs for months keeps
//! its bookkeeping at the size of its recent past.
//!
//! - The outbox: an event every consumer has passed (or, with a broker, that the relay has
//!   published), once it is older than the retention.
//! - Each service's own bookkeeping, by the rules it passes in ([`Rule`]): expired
//!   idempotency keys, completed two-phase-commit decisions, tombstones of aborted prepares.
//!
//! Business data (orders, payments, ledger entries) is never pruned: it is what the service
//! is for.

use std::time::Duration;

use contracts::events::Cursor;
use contracts::now_ms;
use storage::{Db, DbError, Tx};
use tokio_util::sync::CancellationToken;

use crate::outbox::Outbox;

/// How often housekeeping runs by default. Pruning is a few indexed deletes; once a minute
/// keeps the tables within a minute of their bound and costs nothing measurable.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// Writes down how far `consumer` has read this producer's feed.
pub(crate) fn note_reader(tx: &mut Tx<'_>, consumer: &str, after: Cursor) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO feed_readers (consumer, tx, seq, seen_at_ms) VALUES ($1, $2, $3, $4)
         ON CONFLICT (consumer) DO UPDATE SET tx = excluded.tx, seq = excluded.seq,
             seen_at_ms = excluded.seen_at_ms
         WHERE (feed_readers.tx, feed_readers.seq) <= (excluded.tx, excluded.seq)",
        &[&consumer, &after.tx, &after.seq, &now_ms()],
    )?;
    Ok(())
}

/// How far every one of `consumers` has read, or `None` while one of them has not been seen
/// (it may be down, or new: nothing is pruned from under it).
pub(crate) fn readers_floor(
    tx: &mut Tx<'_>,
    consumers: &[&str],
) -> Result<Option<Cursor>, DbError> {
    let mut floor: Option<Cursor> = None;
    for consumer in consumers {
        let seen: Option<(i64, i64)> = tx.query_opt(
            "SELECT tx, seq FROM feed_readers WHERE consumer = $1",
            &[consumer],
        )?;
        let Some((t, s)) = seen else { return Ok(None) };
        let cursor = Cursor::new(t, s);
        floor = Some(floor.map_or(cursor, |f| f.min(cursor)));
    }
    Ok(floor)
}

/// Which events may go: those every consumer has passed, or those a relay has published.
#[derive(Debug, Clone)]
pub enum Passed {
    /// The embedded feed: the named consumers' reads.
    Readers(Vec<&'static str>),
    /// A broker: the relay's progress on this stream.
    Relay(String),
}

/// Deletes what is no longer needed, given the time now (ms); returns how many rows went.
pub type Prune = Box<dyn Fn(&mut Tx<'_>, i64) -> Result<u64, DbError> + Send + Sync>;

/// A service's own rule for what of its bookkeeping may go.
pub struct Rule {
    pub what: &'static str,
    pub prune: Prune,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule").field("what", &self.what).finish()
    }
}

/// The outbox's part of housekeeping.
#[derive(Debug, Clone)]
pub struct OutboxRetention {
    pub outbox: Outbox,
    pub passed: Passed,
    /// Events stay at least this long after they are passed, for an operator to look at.
    pub keep: Duration,
}

/// Runs housekeeping every `interval` until `shutdown`. A failure is logged and tried again
/// next time: pruning late costs only disk.
pub async fn run(
    db: Db,
    outbox: Option<OutboxRetention>,
    rules: Vec<Rule>,
    interval: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let rules = std::sync::Arc::new(rules);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = ticks.tick() => {}
        }
        if let Some(retention) = &outbox
            && let Err(error) = prune_outbox(&db, retention).await
        {
            tracing::warn!(%error, "cannot prune the outbox");
        }
        let rules = rules.clone();
        let pruned = db
            .write(move |tx| {
                let now = now_ms();
                rules
                    .iter()
                    .map(|rule| Ok((rule.what, (rule.prune)(tx, now)?)))
                    .collect::<Result<Vec<_>, DbError>>()
            })
            .await;
        match pruned {
            Ok(counts) => {
                for (what, rows) in counts.into_iter().filter(|(_, rows)| *rows > 0) {
                    tracing::debug!(what, rows, "pruned");
                }
            }
            Err(error) => tracing::warn!(%error, "cannot prune"),
        }
    }
}

async fn prune_outbox(db: &Db, retention: &OutboxRetention) -> Result<(), DbError> {
    let passed = retention.passed.clone();
    let floor = db
        .read(move |tx| match &passed {
            Passed::Readers(consumers) => readers_floor(tx, consumers),
            Passed::Relay(stream) => crate::relay::published(tx, stream).map(|p| Some(p.0)),
        })
        .await?;
    if let Some(floor) = floor {
        let before = now_ms() - retention.keep.as_millis() as i64;
        let pruned = retention.outbox.prune(floor, before).await?;
        if pruned > 0 {
            tracing::debug!(pruned, %floor, "pruned the outbox");
        }
    }
    Ok(())
}
