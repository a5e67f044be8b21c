//! Group commit: many concurrent writes share one transaction, so one fsync acknowledges them
//! all.
//!
//! With `synchronous = FULL` every commit waits for the disk. One order per transaction caps a
//! service at one order per fsync, however many clients are waiting. Here a single committer
//! task takes every write that is waiting, runs each in its own savepoint inside one
//! transaction, commits once, and only then answers each caller. No write waits for a batch to
//! fill: under light load a batch is one write; under heavy load the writes that arrived during
//! one fsync share the next. A write that fails rolls back to its savepoint and fails alone.

use std::future::Future;
use std::pin::Pin;

use sqlx::{Connection, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

/// Writes that may wait for the committer. Past this, callers wait to enqueue (backpressure)
/// instead of growing memory without bound.
const QUEUE_MAX: usize = 16_384;

/// Writes per transaction at most. Large enough to amortize an fsync over thousands of
/// orders per second, small enough that one transaction stays a few milliseconds of work.
pub const BATCH_MAX: usize = 512;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A write, type-erased: it runs inside the batch's transaction and returns what to do once
/// the transaction's fate is known.
type Job = Box<
    dyn for<'c> FnOnce(
            &'c mut SqliteConnection,
        ) -> BoxFuture<'c, Box<dyn FnOnce(Option<String>) + Send>>
        + Send,
>;

/// The handle writers use. Cloning shares the queue.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    jobs: mpsc::Sender<Job>,
}

/// The other end, run by [`Committer::run`].
pub struct Committer {
    jobs: mpsc::Receiver<Job>,
    pool: SqlitePool,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer").finish_non_exhaustive()
    }
}

impl GroupCommit {
    pub fn new(pool: SqlitePool) -> (Self, Committer) {
        let (tx, rx) = mpsc::channel(QUEUE_MAX);
        (Self { jobs: tx }, Committer { jobs: rx, pool })
    }

    /// Runs `write` inside a shared transaction and returns its result once that transaction
    /// is durable. If `write` fails, its changes are rolled back and the others' are not.
    pub async fn write<T, E, F>(&self, write: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<sqlx::Error> + Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
    {
        let (answer_tx, answer_rx) = oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |conn: &mut SqliteConnection| {
            Box::pin(async move {
                let result = in_savepoint(conn, write).await;
                let done: Box<dyn FnOnce(Option<String>) + Send> =
                    Box::new(move |commit_error: Option<String>| {
                        let answer = match (result, commit_error) {
                            (Ok(value), None) => Ok(value),
                            (Err(error), _) => Err(error),
                            (Ok(_), Some(reason)) => Err(E::from(sqlx::Error::Protocol(reason))),
                        };
                        let _ = answer_tx.send(answer);
                    });
                done
            })
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| E::from(sqlx::Error::PoolClosed))?;
        answer_rx
            .await
            .unwrap_or_else(|_| Err(E::from(sqlx::Error::PoolClosed)))
    }
}

async fn in_savepoint<T, E, F>(conn: &mut SqliteConnection, write: F) -> Result<T, E>
where
    E: From<sqlx::Error>,
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, E>>,
{
    sqlx::query("SAVEPOINT job").execute(&mut *conn).await?;
    match write(conn).await {
        Ok(value) => {
            sqlx::query("RELEASE job").execute(&mut *conn).await?;
            Ok(value)
        }
        Err(error) => {
            sqlx::query("ROLLBACK TO job").execute(&mut *conn).await?;
            sqlx::query("RELEASE job").execute(&mut *conn).await?;
            Err(error)
        }
    }
}

impl Committer {
    /// Commits batches until every [`GroupCommit`] handle is dropped. The write connection is
    /// taken per batch, so other writers of the same database (consumers applying a batch of
    /// events) interleave with it.
    pub async fn run(mut self) -> anyhow::Result<()> {
        let mut batch: Vec<Job> = Vec::with_capacity(BATCH_MAX);
        while self.jobs.recv_many(&mut batch, BATCH_MAX).await > 0 {
            let mut done = Vec::with_capacity(batch.len());
            let outcome = async {
                let mut conn = self.pool.acquire().await?;
                let mut tx = conn.begin().await?;
                for job in batch.drain(..) {
                    done.push(job(&mut tx).await);
                }
                tx.commit().await
            }
            .await;
            let commit_error = outcome.err().map(|e| format!("group commit failed: {e}"));
            if let Some(error) = &commit_error {
                tracing::warn!(error, writes = done.len(), "a batch did not commit");
            }
            // Jobs that never ran (the connection could not be had) are answered by their
            // dropped channels: the caller sees the pool as closed and may retry.
            batch.clear();
            for finish in done {
                finish(commit_error.clone());
            }
        }
        Ok(())
    }
}
