//! The thin database side of session guarantees: a few queries around the decisions of
//! [`crate::session`], over `tokio-postgres` clients.
//!
//! - [`write_token`]: the token a write's answer carries — `pg_current_wal_lsn()` read on the
//!   primary after the commit returned.
//! - [`replay_lsn`]: how far a standby has replayed (`pg_last_wal_replay_lsn()`).
//! - [`read`]: one read under a [`Session`]: pick a node, wait (bounded) for it to replay the
//!   session's floor or go to the primary, run the caller's query, record what it reflected.
//!
//! Why the order of queries matters: a standby's snapshot shows every commit replayed *before*
//! it was taken, so the LSN that proves a read fresh enough must be read *before* the read
//! (`replayed ≥ floor`, then the query), and the LSN recorded for monotonic reads *after* it
//! (an upper bound of what the read saw). Folding either into the read's own statement would be
//! evaluated after its snapshot and could certify a read that missed the floor.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::lsn::{Lsn, LsnError};
use crate::session::{ReadPolicy, ReplicaView, Session, Step, Target};

/// A replica that failed is skipped for this long before reads try it again: long enough not
/// to pay a failed connection attempt on every read while it is down, short enough that a
/// restarted replica takes its share again within a second.
pub const DOWN_RETRY_AFTER: Duration = Duration::from_secs(1);

/// What went wrong with a read or a token.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The primary failed: nothing else to fall back on. A retry may help if it comes back.
    #[error("the primary failed: {0}")]
    Primary(#[source] tokio_postgres::Error),
    /// A query about the log failed.
    #[error("reading the WAL position failed: {0}")]
    Position(#[source] tokio_postgres::Error),
    /// `pg_last_wal_replay_lsn()` is NULL: the node is not a standby (a configuration error).
    #[error("this node is not a standby (pg_last_wal_replay_lsn() is NULL)")]
    NotAStandby,
    /// PostgreSQL answered something that is not an LSN (never expected).
    #[error(transparent)]
    Lsn(#[from] LsnError),
}

/// Runs a one-column query with the simple protocol (one round trip, no prepared statement)
/// and returns its single value.
async fn single_text(client: &Client, sql: &str) -> Result<Option<String>, tokio_postgres::Error> {
    let messages = client.simple_query(sql).await?;
    Ok(messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
        _ => None,
    }))
}

/// The primary's WAL write position. Read right after a commit returned, it is at or past
/// that commit's record: a commit returns once its record is flushed, and the write position
/// is never behind the flush position. It may be a little past (other sessions' records), which
/// only makes a read wait a little longer than needed, never certifies a stale one. It holds
/// under every policy here, all of which commit with `synchronous_commit` at least `on`; with
/// `off` a commit returns before its flush and the token could be short.
pub async fn wal_lsn(primary: &Client) -> Result<Lsn, ReadError> {
    let text = single_text(primary, "SELECT pg_current_wal_lsn()")
        .await
        .map_err(ReadError::Position)?;
    Ok(Lsn::parse(&text.unwrap_or_default())?)
}

/// The token for a write that has just committed on `primary`, through this same client
/// (see [`wal_lsn`] for why it covers the commit).
pub async fn write_token(primary: &Client) -> Result<Lsn, ReadError> {
    wal_lsn(primary).await
}

/// How far a standby has replayed the log: every commit up to this LSN is visible to a
/// snapshot taken from now on.
pub async fn replay_lsn(standby: &Client) -> Result<Lsn, ReadError> {
    let text = single_text(standby, "SELECT pg_last_wal_replay_lsn()")
        .await
        .map_err(ReadError::Position)?;
    Ok(Lsn::parse(&text.ok_or(ReadError::NotAStandby)?)?)
}

/// A primary, its replicas, and what reads have learnt of each replica (shared by every session
/// reading through it, so one session's poll spares the next a wait).
pub struct Nodes {
    pub primary: Client,
    pub replicas: Vec<Client>,
    /// Last known replay position and failure time of each replica. A std mutex: it is held
    /// for a copy or an update, never across an await.
    known: Mutex<Vec<Known>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Known {
    replayed: Option<Lsn>,
    failed_at: Option<Instant>,
}

/// A read's answer and how it was served.
#[derive(Debug, Clone, PartialEq)]
pub struct Served<T> {
    pub value: T,
    pub target: Target,
    /// Time spent waiting for the replica to replay the session's floor.
    pub waited: Duration,
    /// How many times the replica was asked how far it had replayed.
    pub polls: u32,
    /// An upper bound of the LSN the read reflected, when the session tracks monotonic reads.
    pub reflected: Option<Lsn>,
    /// Whether the read went to the primary although a replica was chosen (it was behind past
    /// the bound, or failed).
    pub fell_back: bool,
}

impl Nodes {
    pub fn new(primary: Client, replicas: Vec<Client>) -> Self {
        let known = vec![Known::default(); replicas.len()];
        Self {
            primary,
            replicas,
            known: Mutex::new(known),
        }
    }

    /// What is known of each replica, as [`ReadPolicy::choose`] takes it.
    pub fn views(&self) -> Vec<ReplicaView> {
        let known = self
            .known
            .lock()
            .expect("the lock is never held across a panic");
        known
            .iter()
            .map(|k| ReplicaView {
                down: k.failed_at.is_some_and(|t| t.elapsed() < DOWN_RETRY_AFTER),
                replayed: k.replayed,
            })
            .collect()
    }

    fn learn(&self, replica: usize, replayed: Option<Lsn>, failed: bool) {
        let mut known = self
            .known
            .lock()
            .expect("the lock is never held across a panic");
        let k = &mut known[replica];
        k.replayed = k.replayed.max(replayed);
        k.failed_at = failed.then(Instant::now);
    }
}

/// One read under `session`: on the node [`ReadPolicy::choose`] picks, after waiting for it to
/// replay the session's floor within `policy.wait_max`, else on the primary. `query` runs the
/// read on the client it is given (boxed, so that its future may borrow the client and still be
/// sent across threads: `|c| Box::pin(async move { c.query(…).await })`). The session records
/// what the read reflected when it tracks monotonic reads (one more round trip).
pub async fn read<T, F>(
    nodes: &Nodes,
    policy: &ReadPolicy,
    session: &mut Session,
    turn: usize,
    mut query: F,
) -> Result<Served<T>, ReadError>
where
    F: for<'c> FnMut(&'c Client) -> BoxFuture<'c, Result<T, tokio_postgres::Error>>,
{
    let floor = session.floor();
    let track = session.guarantees().monotonic_reads;
    let started = Instant::now();
    let mut polls = 0;
    let Target::Replica(i) = policy.choose(floor, &nodes.views(), turn) else {
        return on_primary(nodes, session, track, &mut query).await;
    };
    if let Ok(Some((value, waited))) =
        on_replica(nodes, policy, i, floor, &mut polls, started, &mut query).await
    {
        let reflected = match track {
            true => reflected_by(nodes, i).await,
            false => None,
        };
        if let Some(lsn) = reflected {
            session.saw(lsn);
        }
        return Ok(Served {
            value,
            target: Target::Replica(i),
            waited,
            polls,
            reflected,
            fell_back: false,
        });
    }
    // Behind past the bound, or failed: the primary has every commit.
    let waited = started.elapsed();
    let mut served = on_primary(nodes, session, track, &mut query).await?;
    served.waited = waited;
    served.polls = polls;
    served.fell_back = true;
    Ok(served)
}

/// An upper bound of what a read just served by replica `i` reflected: the replica's replay
/// position now, or if it fails to say, the primary's (which has everything any replica has).
async fn reflected_by(nodes: &Nodes, i: usize) -> Option<Lsn> {
    match replay_lsn(&nodes.replicas[i]).await {
        Ok(lsn) => {
            nodes.learn(i, Some(lsn), false);
            Some(lsn)
        }
        Err(_) => wal_lsn(&nodes.primary).await.ok(),
    }
}

/// Waits on replica `i` for the floor, then reads there; returns the answer and the time
/// waited before the query. `Ok(None)`: the bound passed first.
async fn on_replica<T, F>(
    nodes: &Nodes,
    policy: &ReadPolicy,
    i: usize,
    floor: Option<Lsn>,
    polls: &mut u32,
    started: Instant,
    query: &mut F,
) -> Result<Option<(T, Duration)>, ReadError>
where
    F: for<'c> FnMut(&'c Client) -> BoxFuture<'c, Result<T, tokio_postgres::Error>>,
{
    let client = &nodes.replicas[i];
    if floor.is_some() {
        loop {
            let replayed = replay_lsn(client)
                .await
                .inspect_err(|_| nodes.learn(i, None, true))?;
            *polls += 1;
            nodes.learn(i, Some(replayed), false);
            match policy.next(floor, replayed, started.elapsed()) {
                Step::Serve => break,
                Step::Wait(pause) => tokio::time::sleep(pause).await,
                Step::Primary => return Ok(None),
            }
        }
    }
    let waited = started.elapsed();
    match query(client).await {
        Ok(value) => Ok(Some((value, waited))),
        Err(e) => {
            nodes.learn(i, None, true);
            Err(ReadError::Position(e))
        }
    }
}

async fn on_primary<T, F>(
    nodes: &Nodes,
    session: &mut Session,
    track: bool,
    query: &mut F,
) -> Result<Served<T>, ReadError>
where
    F: for<'c> FnMut(&'c Client) -> BoxFuture<'c, Result<T, tokio_postgres::Error>>,
{
    let value = query(&nodes.primary).await.map_err(ReadError::Primary)?;
    let reflected = match track {
        true => Some(wal_lsn(&nodes.primary).await?),
        false => None,
    };
    if let Some(lsn) = reflected {
        session.saw(lsn);
    }
    Ok(Served {
        value,
        target: Target::Primary,
        waited: Duration::ZERO,
        polls: 0,
        reflected,
        fell_back: false,
    })
}
