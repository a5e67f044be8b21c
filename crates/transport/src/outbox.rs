//! The transactional outbox: events are rows written in the producer's own transaction, so an
//! event exists if and only if the state change that caused it committed.
//!
//! Reading it in order is where the engines differ. SQLite has one writer, so rows commit in
//! sequence order and "everything after `seq`" never misses a row. PostgreSQL has many
//! writers (every instance of the service, and the group commit of each): a transaction that
//! took sequence 5 may commit after one that took 6. A reader that has passed 6 would then
//! never see 5. So on PostgreSQL each row also records its transaction id, rows are read in
//! `(txid, seq)` order, and only rows whose transaction is older than the oldest transaction
//! still running (`pg_snapshot_xmin(pg_current_snapshot())`) are read. Why that never skips a
//! row: every row returned belongs to a committed transaction with id below that bound; every
//! transaction that can still commit has an id at or above it, so its rows sort after every
//! row returned; and rows of one transaction appear together, when it commits.

use std::time::Duration;

use contracts::events::{Cursor, Event, EventBody};
use storage::{Db, DbError, Engine, Tx, sql};
use tokio::sync::watch;

/// Events one read returns at most: a consumer applies hundreds per transaction; more would
/// only make one page larger without saving anything.
pub const PAGE_EVENTS_MAX: i64 = 1_000;

/// On PostgreSQL, how often a waiting reader looks again: another instance's commits do not
/// wake this one's readers, and a local commit may become readable only once an older
/// transaction elsewhere ends. Short enough to add little lag, long enough to cost nothing.
const POSTGRES_POLL: Duration = Duration::from_millis(20);

/// Rows pruned per statement, so pruning never holds the writer for long.
const PRUNE_ROWS_MAX: i64 = 5_000;

/// A producer's outbox. Cloning shares the notifier.
#[derive(Debug, Clone)]
pub struct Outbox {
    db: Db,
    /// Bumped after each commit that wrote events: long-polling readers wait on it instead of
    /// polling the database.
    commits: watch::Sender<u64>,
}

impl Outbox {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            commits: watch::Sender::new(0),
        }
    }

    /// Writes events inside the caller's write with one statement. Call
    /// [`Outbox::published`] once that write has committed.
    pub fn append_all(tx: &mut Tx<'_>, bodies: &[EventBody], now_ms: i64) -> Result<(), DbError> {
        if bodies.is_empty() {
            return Ok(());
        }
        let rows: Vec<(String, String)> = bodies
            .iter()
            .map(|body| {
                (
                    format!("evt_{}", uuid::Uuid::now_v7().simple()),
                    body.to_json(),
                )
            })
            .collect();
        let mut params: Vec<&dyn storage::Param> = Vec::with_capacity(rows.len() * 3);
        for (id, body) in &rows {
            params.extend([id as &dyn storage::Param, &now_ms, body]);
        }
        tx.execute(
            &format!(
                "INSERT INTO outbox (event_id, recorded_at_ms, body) VALUES {}",
                sql::values(rows.len(), 3)
            ),
            &params,
        )?;
        Ok(())
    }

    /// Tells waiting readers that events have committed.
    pub fn published(&self) {
        self.commits.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Waits until a commit of events here, or `timeout`.
    pub async fn wait_for_commit(&self, timeout: Duration) {
        let mut commits = self.commits.subscribe();
        let _ = tokio::time::timeout(timeout, commits.changed()).await;
    }

    /// Up to `limit` events after `after`, oldest first; if there are none, waits up to
    /// `wait` for one.
    pub async fn read(
        &self,
        after: Cursor,
        limit: i64,
        wait: Duration,
    ) -> Result<Vec<Event>, DbError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut commits = self.commits.subscribe();
        loop {
            // Marked seen before reading: a commit after the read still wakes this reader.
            commits.borrow_and_update();
            let events = self.db.read(move |tx| page(tx, after, limit)).await?;
            let now = tokio::time::Instant::now();
            if !events.is_empty() || now >= deadline {
                return Ok(events);
            }
            let nap = match self.db.engine() {
                Engine::Sqlite => deadline - now,
                Engine::Postgres => (deadline - now).min(POSTGRES_POLL),
            };
            let _ = tokio::time::timeout(nap, commits.changed()).await;
        }
    }

    /// The newest event committed (the start, if none).
    pub async fn head(&self) -> Result<Cursor, DbError> {
        self.db.read(head).await
    }

    /// Deletes events every consumer has passed (`floor`) and older than `before_ms`, a
    /// bounded number at a time; returns how many. The newest event always stays, so the head
    /// survives pruning.
    pub async fn prune(&self, floor: Cursor, before_ms: i64) -> Result<u64, DbError> {
        let sql = match self.db.engine() {
            Engine::Sqlite => {
                "DELETE FROM outbox WHERE seq IN (
                    SELECT seq FROM outbox
                    WHERE seq <= $2 AND recorded_at_ms < $3
                      AND seq < (SELECT MAX(seq) FROM outbox)
                    ORDER BY seq LIMIT $4)"
            }
            Engine::Postgres => {
                "DELETE FROM outbox WHERE seq IN (
                    SELECT seq FROM outbox
                    WHERE (txid, seq) <= ($1, $2) AND recorded_at_ms < $3
                      AND seq < (SELECT MAX(seq) FROM outbox)
                    ORDER BY txid, seq LIMIT $4)"
            }
        };
        let mut total = 0;
        loop {
            let deleted = self
                .db
                .write(move |tx| {
                    tx.execute(sql, &[&floor.tx, &floor.seq, &before_ms, &PRUNE_ROWS_MAX])
                })
                .await?;
            total += deleted;
            if deleted < PRUNE_ROWS_MAX as u64 {
                return Ok(total);
            }
        }
    }
}

/// One page of events after `after`, in feed order.
pub(crate) fn page(tx: &mut Tx<'_>, after: Cursor, limit: i64) -> Result<Vec<Event>, DbError> {
    let sql = match tx.engine() {
        Engine::Sqlite => {
            "SELECT 0, seq, event_id, recorded_at_ms, body FROM outbox
             WHERE seq > $2 ORDER BY seq LIMIT $3"
        }
        Engine::Postgres => {
            "SELECT txid, seq, event_id, recorded_at_ms, body FROM outbox
             WHERE (txid, seq) > ($1, $2)
               AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
             ORDER BY txid, seq LIMIT $3"
        }
    };
    let rows: Vec<(i64, i64, String, i64, String)> =
        tx.query(sql, &[&after.tx, &after.seq, &limit])?;
    Ok(rows
        .into_iter()
        .map(|(txid, seq, id, recorded_at_ms, body)| {
            Event::from_stored(Cursor::new(txid, seq), id, recorded_at_ms, body)
        })
        .collect())
}

/// The newest committed event's cursor. On PostgreSQL it may not be readable yet (an older
/// transaction is still running), but consumers must reach it before the system is quiet.
pub(crate) fn head(tx: &mut Tx<'_>) -> Result<Cursor, DbError> {
    let sql = match tx.engine() {
        Engine::Sqlite => "SELECT 0, seq FROM outbox ORDER BY seq DESC LIMIT 1",
        Engine::Postgres => "SELECT txid, seq FROM outbox ORDER BY txid DESC, seq DESC LIMIT 1",
    };
    let head: Option<(i64, i64)> = tx.query_opt(sql, &[])?;
    Ok(head.map_or(Cursor::START, |(t, s)| Cursor::new(t, s)))
}

/// Events committed and not yet read by anyone reading after `after` (for a relay's backlog).
pub(crate) fn count_after(tx: &mut Tx<'_>, after: Cursor) -> Result<i64, DbError> {
    let sql = match tx.engine() {
        Engine::Sqlite => "SELECT COUNT(*) FROM outbox WHERE seq > $2",
        Engine::Postgres => "SELECT COUNT(*) FROM outbox WHERE (txid, seq) > ($1, $2)",
    };
    tx.query_one(sql, &[&after.tx, &after.seq])
}
