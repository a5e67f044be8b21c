//! The transactional outbox: events are rows written in the producer's own transaction, so an
//! event exists if and only if the state change that caused it committed.

use std::time::Duration;

use contracts::events::{Event, EventBody};
use storage::Db;
use storage::sqlx::{self, Row, SqliteConnection};
use tokio::sync::watch;

/// A producer's outbox. Cloning shares the head notifier.
#[derive(Debug, Clone)]
pub struct Outbox {
    db: Db,
    /// The newest committed position. Writers bump it after their commit; long-polling feed
    /// readers wait on it instead of polling the database.
    head: watch::Sender<i64>,
}

impl Outbox {
    pub async fn open(db: Db) -> Result<Self, sqlx::Error> {
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM outbox")
            .fetch_one(&db.read)
            .await?;
        Ok(Self {
            db,
            head: watch::Sender::new(head),
        })
    }

    /// Writes many events inside the caller's transaction with one statement; returns the
    /// newest position written (`None` for no events). Call [`Outbox::published`] with it once
    /// that transaction has committed.
    pub async fn append_all(
        conn: &mut SqliteConnection,
        bodies: &[EventBody],
        now_ms: i64,
    ) -> Result<Option<i64>, sqlx::Error> {
        if bodies.is_empty() {
            return Ok(None);
        }
        let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO outbox (event_id, recorded_at_ms, body) ",
        );
        insert.push_values(bodies, |mut row, body| {
            row.push_bind(format!("evt_{}", uuid::Uuid::now_v7().simple()))
                .push_bind(now_ms)
                .push_bind(body.to_json().to_string());
        });
        insert.push(" RETURNING seq");
        let seqs: Vec<i64> = insert.build_query_scalar().fetch_all(conn).await?;
        Ok(seqs.into_iter().max())
    }

    /// Tells waiting readers that everything up to `seq` has committed.
    pub fn published(&self, seq: i64) {
        self.head.send_if_modified(|head| {
            if seq > *head {
                *head = seq;
                true
            } else {
                false
            }
        });
    }

    pub fn head(&self) -> i64 {
        *self.head.borrow()
    }

    /// Up to `limit` events after position `after`, oldest first; if there are none, waits up
    /// to `wait` for one to commit.
    pub async fn read(
        &self,
        after: i64,
        limit: i64,
        wait: Duration,
    ) -> Result<Vec<Event>, sqlx::Error> {
        if self.head() <= after && !wait.is_zero() {
            let mut head = self.head.subscribe();
            let _ = tokio::time::timeout(wait, head.wait_for(|h| *h > after)).await;
        }
        let rows = sqlx::query(
            "SELECT seq, event_id, recorded_at_ms, body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.db.read)
        .await?;
        rows.into_iter()
            .map(|row| {
                let body: String = row.get("body");
                Ok(Event {
                    seq: row.get("seq"),
                    id: row.get("event_id"),
                    recorded_at_ms: row.get("recorded_at_ms"),
                    // A body that is not JSON still travels, as a string, so that the
                    // consumer dead-letters it instead of the feed failing for everyone.
                    body: serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
                })
            })
            .collect()
    }
}
