//! The threads that own the connections: one writer that commits every waiting write in one
//! transaction (group commit), and a few readers.
//!
//! Group commit: with every commit synced to disk, one write per transaction caps a service
//! at one write per sync, however many callers are waiting. The writer takes every write
//! waiting (up to [`BATCH_MAX`]), runs each in its own savepoint inside one transaction,
//! commits once, and only then answers each caller. No write waits for a batch to fill: alone,
//! a write is a batch of one. A write that fails rolls back to its savepoint and fails alone.
//!
//! The writer tells the truth about every write. If the engine ends the whole transaction
//! under a write (SQLite does, on a full disk or an I/O error), every write that ran in it is
//! told it failed and the writes not yet run go into the next transaction; nothing runs, and
//! commits, outside the transaction. If `COMMIT` fails, every write is told so, and told
//! "outcome unknown" when the failure leaves it unknown (see [`ErrorKind::Unknown`]).
//!
//! Running a service's SQL on a thread of its own, as plain functions, costs one hand-off per
//! batch instead of one per statement, and keeps the connection's prepared statements warm.
//!
//! [`ErrorKind::Unknown`]: crate::ErrorKind::Unknown

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::conn::{Conn, Tx};
use crate::error::{DbError, ErrorKind};
use crate::sql::Engine;

/// Writes per transaction at most. Large enough to amortize a sync over thousands of writes a
/// second, small enough that one transaction stays a few milliseconds of work.
pub const BATCH_MAX: usize = 512;

/// Writes that may wait for the writer; past this, callers wait to enqueue (backpressure)
/// rather than grow memory without bound.
pub(crate) const WRITE_QUEUE_MAX: usize = 16_384;

/// Reads that may wait for a reader, for the same reason.
pub(crate) const READ_QUEUE_MAX: usize = 4_096;

/// A write waiting for the writer: it runs once inside the shared transaction, then is
/// answered once the transaction's fate is known.
pub(crate) trait Job: Send {
    /// Runs the write; returns whether it succeeded.
    fn run(&mut self, tx: &mut Tx<'_>) -> bool;
    /// Answers the caller: the write's own error if it failed, else `fate` if the transaction
    /// did not commit, else the write's result.
    fn answer(self: Box<Self>, fate: Option<DbError>);
}

pub(crate) struct WriteJob<F, T, E> {
    write: Option<F>,
    result: Option<Result<T, E>>,
    answer: oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> WriteJob<F, T, E> {
    pub(crate) fn new(write: F) -> (Self, oneshot::Receiver<Result<T, E>>) {
        let (answer, answered) = oneshot::channel();
        let job = Self {
            write: Some(write),
            result: None,
            answer,
        };
        (job, answered)
    }
}

impl<F, T, E> Job for WriteJob<F, T, E>
where
    F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send,
    T: Send,
    E: From<DbError> + Send,
{
    fn run(&mut self, tx: &mut Tx<'_>) -> bool {
        let write = self.write.take().expect("a write runs once");
        let result = write(tx);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, fate: Option<DbError>) {
        let answer = match (self.result, fate) {
            (Some(Err(own)), _) => Err(own),
            (Some(Ok(value)), None) => Ok(value),
            (_, Some(fate)) => Err(E::from(fate)),
            (None, None) => Err(E::from(DbError::new(
                ErrorKind::Permanent,
                "a write was answered without running",
            ))),
        };
        let _ = self.answer.send(answer);
    }
}

/// The writer thread's loop: a transaction per batch of waiting writes, until every sender
/// is dropped.
pub(crate) fn run_writer(mut conn: Box<dyn Conn>, mut jobs: mpsc::Receiver<Box<dyn Job>>) {
    // Writes that did not run because the transaction ended under an earlier one: they go
    // first into the next transaction.
    let mut carried: VecDeque<Box<dyn Job>> = VecDeque::new();
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(BATCH_MAX);
    loop {
        batch.extend(carried.drain(..));
        if batch.is_empty() {
            match jobs.blocking_recv() {
                Some(job) => batch.push(job),
                None => return,
            }
        }
        while batch.len() < BATCH_MAX {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&mut *conn, &mut batch, &mut carried);
        debug_assert!(
            batch.is_empty(),
            "every write of a batch is answered or carried"
        );
    }
}

/// Runs and commits one batch; answers every write in it or carries it to the next.
fn commit_batch(
    conn: &mut dyn Conn,
    batch: &mut Vec<Box<dyn Job>>,
    carried: &mut VecDeque<Box<dyn Job>>,
) {
    if let Err(error) = conn.begin() {
        tracing::warn!(%error, writes = batch.len(), "cannot begin a transaction");
        conn.recover();
        batch
            .drain(..)
            .for_each(|job| job.answer(Some(error.clone())));
        return;
    }
    let shared = batch.len() > 1;
    let mut ran: Vec<Box<dyn Job>> = Vec::with_capacity(batch.len());
    let mut failed_alone = false;
    let mut jobs = batch.drain(..);
    for mut job in jobs.by_ref() {
        let outcome = run_one(conn, &mut *job, shared);
        ran.push(job);
        match outcome {
            Ok(true) => {}
            Ok(false) => failed_alone = !shared,
            Err(broken) => {
                // The engine ended the transaction: what ran is lost, what did not run goes
                // into the next transaction.
                tracing::warn!(error = %broken, lost = ran.len(), "a shared transaction was rolled back");
                carried.extend(jobs);
                conn.recover();
                ran.into_iter()
                    .for_each(|job| job.answer(Some(broken.clone())));
                return;
            }
        }
    }
    if failed_alone {
        // A batch of one write that failed: nothing to commit.
        conn.recover();
        ran.into_iter().for_each(|job| job.answer(None));
        return;
    }
    let fate = commit(conn).err();
    if let Some(error) = &fate {
        tracing::warn!(%error, writes = ran.len(), "a batch did not commit");
        conn.recover();
    }
    ran.into_iter().for_each(|job| job.answer(fate.clone()));
}

/// Runs one write, in a savepoint when it shares the transaction. `Ok(ok)` says whether the
/// write succeeded (its changes kept) or failed alone (rolled back to its savepoint); `Err`
/// says the whole transaction is gone.
fn run_one(conn: &mut dyn Conn, job: &mut dyn Job, shared: bool) -> Result<bool, DbError> {
    if shared {
        conn.control("SAVEPOINT job")?;
    }
    let ok = std::panic::catch_unwind(AssertUnwindSafe(|| {
        job.run(&mut Tx {
            conn: &mut *conn,
            in_write: true,
        })
    }))
    .unwrap_or_else(|_| {
        tracing::error!("a write panicked; its changes are rolled back");
        false
    });
    if shared {
        let end = if ok {
            conn.control("RELEASE job")
        } else {
            conn.control("ROLLBACK TO job")
                .and_then(|()| conn.control("RELEASE job"))
        };
        end.map_err(|e| DbError::rolled_back(&e.to_string()))?;
    }
    if (ok || shared) && !conn.transaction_usable() {
        return Err(DbError::rolled_back(
            "the engine ended the transaction after an error",
        ));
    }
    Ok(ok)
}

fn commit(conn: &mut dyn Conn) -> Result<(), DbError> {
    if !conn.transaction_usable() {
        return Err(DbError::rolled_back(
            "the engine ended the transaction after an error",
        ));
    }
    conn.control("COMMIT").map_err(|error| match conn.engine() {
        Engine::Postgres => crate::postgres::commit_error(error),
        Engine::Sqlite => {
            // SQLite answered: a full or busy disk means nothing was written; an I/O error
            // while syncing leaves the outcome to the disk.
            let answered = error.code().is_some_and(|code| {
                let primary = code.parse::<i32>().unwrap_or(0) & 0xff;
                primary != rusqlite::ffi::SQLITE_IOERR
            });
            error.at_commit(answered)
        }
    })
}

/// A read waiting for a reader.
pub(crate) type ReadJob = Box<dyn FnOnce(&mut dyn Conn) + Send>;

/// A reader thread's loop: one read at a time from the shared queue, until it is closed.
pub(crate) fn run_reader(mut conn: Box<dyn Conn>, jobs: Arc<Mutex<mpsc::Receiver<ReadJob>>>) {
    loop {
        // The lock is held only while waiting for the next read; the read runs without it.
        let job = match jobs.lock() {
            Ok(mut queue) => queue.blocking_recv(),
            Err(_) => return,
        };
        let Some(job) = job else { return };
        if std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut *conn))).is_err() {
            tracing::error!("a read panicked");
            conn.recover();
        }
    }
}
