//! One measured period: the tasks that run side by side, and what they record.
//!
//! - the **dispatcher** offers the seeded writes at a constant rate (open loop: a write's
//!   latency counts from when it was meant to be sent, so a stall is charged to every write
//!   queued behind it);
//! - **writers**, one connection each, commit them on the primary with a client-side bound
//!   (past it the query is cancelled: the commit stays on the primary, unconfirmed);
//! - the **probe** reads each replica at 0, 1, 2, 5, … ms after a sample of commits returned,
//!   until it sees the write;
//! - a **watcher** per node polls its position (the primary's WAL, each standby's replay) every
//!   `watch_interval`, independently of any read: the apply lag of every write, staleness, and
//!   PBS's W all come from these samples;
//! - a **sampler** reads `pg_stat_replication`;
//! - **sessions** write their own counter and read it back from the replicas, with and without
//!   guarantees, counting what they see go wrong;
//! - the **fault**, in a drill, stops a standby and restarts it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls, Statement};

use super::BenchError;
use crate::cluster::{Cluster, StopMode};
use crate::db::connect;
use crate::lsn::Lsn;
use crate::read::{self, Nodes};
use crate::session::{Guarantees, ReadPolicy, Session, Target};
use crate::stats::VISIBILITY_OFFSETS_MS;

/// The lab's tables: a fact per write (what the nothing-lost check looks for) and a counter per
/// account (what reads look at), like Stats' `order_facts` and `account_totals`.
pub(super) const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS replica_writes (
        id bigint PRIMARY KEY, account_id int NOT NULL, amount_cents bigint NOT NULL);
    CREATE TABLE IF NOT EXISTS replica_totals (
        account_id int PRIMARY KEY, orders bigint NOT NULL, revenue_cents bigint NOT NULL);
    TRUNCATE replica_writes, replica_totals;";

/// One write of the workload, in one statement and so one transaction: the fact, and the
/// account's counter, whose new value tells a reader whether it sees this write.
const WRITE: &str = "
    WITH fact AS (INSERT INTO replica_writes (id, account_id, amount_cents) VALUES ($1, $2, $3))
    INSERT INTO replica_totals AS t (account_id, orders, revenue_cents) VALUES ($2, 1, $3)
    ON CONFLICT (account_id) DO UPDATE
        SET orders = t.orders + 1, revenue_cents = t.revenue_cents + EXCLUDED.revenue_cents
    RETURNING orders";

/// A session's write: its own counter only.
const SESSION_WRITE: &str = "
    INSERT INTO replica_totals AS t (account_id, orders, revenue_cents) VALUES ($1, 1, $2)
    ON CONFLICT (account_id) DO UPDATE
        SET orders = t.orders + 1, revenue_cents = t.revenue_cents + EXCLUDED.revenue_cents
    RETURNING orders";

/// What every read looks at.
const READ: &str = "SELECT orders FROM replica_totals WHERE account_id = $1";

/// Writes waiting for a writer, at most: the dispatcher stops offering past it (a run whose
/// writers fell this far behind is measuring the backlog, not the policy). 100,000 is 100 s of
/// the highest rate the lab is meant for, and a few MB.
const WRITE_BACKLOG_MAX: usize = 100_000;

/// The watcher and sampler retry a node that does not answer this often: a stopped standby is
/// noticed back within 50 ms of its restart without hammering it meanwhile.
const RECONNECT_PAUSE: Duration = Duration::from_millis(50);

/// How often `pg_stat_replication` is sampled: its lag columns move at the standbys' reply
/// rate, a few times a second at most under light load.
const REPLICATION_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// A write's amount, cents: an order's total, from a coffee to a dinner for two. Only its
/// size in the WAL matters here, and it barely does.
const AMOUNT_CENTS: std::ops::RangeInclusive<i64> = 100..=5_000;

/// How often [`catch_up`] asks a standby how far it has replayed: catching up takes ms to
/// a second; 10 ms adds little to it.
const CATCH_UP_POLL: Duration = Duration::from_millis(10);

/// After cancelling a write past its bound, how long its answer may take: a cancelled wait for
/// standbys returns at once; a primary that does not answer within 10 s is broken, and the run
/// must still end.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// Account ids of sessions start here, clear of the workload's accounts.
const SESSION_ACCOUNT_BASE: i32 = 1_000_000;

/// What a period runs.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub rate: f64,
    pub duration: Duration,
    pub writers: usize,
    pub accounts: u32,
    pub seed: u64,
    pub commit_timeout: Duration,
    pub watch_interval: Duration,
    /// Follow one write in this many with the probe; `None`: no probe.
    pub probe_every: Option<usize>,
    pub probe_connections: usize,
    /// Sessions per guarantee setting; 0: none.
    pub sessions: usize,
    pub session_pause: Duration,
    pub read_policy: ReadPolicy,
    pub fault: Option<Fault>,
}

/// A standby stopped during the period and restarted.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fault {
    /// Index among the standbys.
    pub standby: usize,
    pub stop_at: Duration,
    pub restart_at: Duration,
}

/// How a write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Acked,
    TimedOut,
    Failed,
}

/// One write of the workload.
#[derive(Debug, Clone)]
pub(super) struct WriteRecord {
    pub id: i64,
    pub outcome: Outcome,
    /// When it was meant to be sent, ms from the start.
    pub intended_ms: f64,
    /// When its answer came (or it gave up), ms from the start.
    pub done_ms: f64,
    pub token: Option<Lsn>,
}

impl WriteRecord {
    pub fn latency_ms(&self) -> f64 {
        self.done_ms - self.intended_ms
    }
}

/// The probe's follow-up of one write on one replica.
#[derive(Debug, Clone)]
pub(super) struct ProbeRecord {
    pub replica: usize,
    /// The offset of the first read that saw the write; `None`: none did.
    pub first_visible_ms: Option<f64>,
    /// Each read's delay from its intended moment to its snapshot (PBS's R), ms.
    pub read_delays_ms: Vec<f64>,
    pub error: bool,
}

/// One `pg_stat_replication` row.
#[derive(Debug, Clone)]
pub(super) struct ReplicationSample {
    pub name: String,
    pub replay_lag_ms: Option<f64>,
}

/// What sessions of one guarantee setting saw.
#[derive(Debug, Clone, Default)]
pub(super) struct SessionTally {
    pub guarantees: bool,
    pub writes: usize,
    pub reads: usize,
    pub ryw_violations: usize,
    pub mr_violations: usize,
    pub waited: usize,
    pub on_primary: usize,
    pub read_ms: Vec<f64>,
}

/// Everything a period recorded. Times are ms from its start.
#[derive(Debug, Default)]
pub(super) struct Recording {
    pub writes: Vec<WriteRecord>,
    pub probes: Vec<ProbeRecord>,
    /// Per node (the primary first): `(time, position)` samples.
    pub positions: Vec<Vec<(f64, Lsn)>>,
    pub replication: Vec<ReplicationSample>,
    /// Without guarantees, then with.
    pub sessions: Vec<SessionTally>,
    /// When the fault's stop completed, and when its restart was issued.
    pub stopped_ms: Option<f64>,
    pub restarted_ms: Option<f64>,
    /// When the last write was answered.
    pub load_end_ms: f64,
    /// Whether every standby had replayed everything before the watchers stopped.
    pub caught_up: bool,
}

/// Milliseconds from `t0` to `t`.
fn ms(t0: Instant, t: Instant) -> f64 {
    t.saturating_duration_since(t0).as_secs_f64() * 1000.0
}

/// The seeded workload: `(account, amount in cents)` per write. The same seed gives every
/// policy the same writes.
fn workload(plan: &Plan) -> Vec<(i32, i64)> {
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let n = (plan.rate * plan.duration.as_secs_f64()).round() as usize;
    (0..n)
        .map(|_| {
            let account = rng.random_range(1..=plan.accounts as i32);
            (account, rng.random_range(AMOUNT_CENTS))
        })
        .collect()
}

/// Runs one period on `cluster` (tables already reset) and returns what it recorded, once every
/// standby has caught up (at most `catch_up_max`).
pub(super) async fn run(
    cluster: &Cluster,
    plan: &Plan,
    catch_up_max: Duration,
) -> Result<Recording, BenchError> {
    let connections = open(cluster, plan).await?;
    let t0 = Instant::now();
    let stop_watching = Arc::new(AtomicBool::new(false));
    let watchers: Vec<JoinHandle<Vec<(f64, Lsn)>>> = (0..cluster.nodes.len())
        .map(|i| {
            let conninfo = cluster.conninfo(i);
            let stop = stop_watching.clone();
            tokio::spawn(watch(conninfo, i == 0, plan.watch_interval, stop, t0))
        })
        .collect();
    let sampler = tokio::spawn(sample_replication(
        cluster.conninfo(0),
        stop_watching.clone(),
    ));
    let fault = plan
        .fault
        .map(|f| tokio::spawn(fault(cluster.clone(), f, t0)));
    let sessions = spawn_sessions(connections.sessions, plan, t0);
    let (probe_tx, probe_rx) = mpsc::unbounded_channel();
    let probe = plan
        .probe_every
        .map(|_| tokio::spawn(probe(connections.probe, probe_rx)));
    let writes = offer_writes(connections.writers, plan, t0, probe_tx).await?;
    let load_end_ms = writes.iter().map(|w| w.done_ms).fold(0.0, f64::max);

    let mut recording = Recording {
        load_end_ms,
        ..Recording::default()
    };
    for s in sessions {
        recording.sessions.push(s.await??);
    }
    if let Some(f) = fault {
        (recording.stopped_ms, recording.restarted_ms) = f.await??;
    }
    if let Some(p) = probe {
        recording.probes = p.await??;
    }
    recording.caught_up = catch_up(cluster, catch_up_max).await?;
    stop_watching.store(true, Ordering::Relaxed);
    for w in watchers {
        recording.positions.push(w.await?);
    }
    recording.replication = sampler.await?;
    recording.writes = writes;
    Ok(recording)
}

/// A writer's connection to the primary with its two statements: the write, the token.
type Writer = (Client, (Statement, Statement));

/// A standby's probe connections, each with the read prepared.
type ProbePool = Arc<Vec<(Client, Statement)>>;

/// Every connection a period uses, opened before it starts: no write, read or session pays
/// for opening one mid-run.
struct Connections {
    writers: Vec<Writer>,
    /// Per standby; empty without a probe.
    probe: Vec<ProbePool>,
    /// Per session: its guarantees, its index, its own connections to every node.
    sessions: Vec<(Guarantees, usize, Nodes)>,
}

async fn open(cluster: &Cluster, plan: &Plan) -> Result<Connections, BenchError> {
    let mut writers = Vec::with_capacity(plan.writers);
    for _ in 0..plan.writers {
        let client = connect(&cluster.conninfo(0)).await?;
        let token = client.prepare("SELECT pg_current_wal_lsn()::text").await?;
        let statements = (client.prepare(WRITE).await?, token);
        writers.push((client, statements));
    }
    let mut probe = Vec::new();
    for i in (1..cluster.nodes.len()).filter(|_| plan.probe_every.is_some()) {
        let mut pool = Vec::new();
        for _ in 0..plan.probe_connections.max(1) {
            let client = connect(&cluster.conninfo(i)).await?;
            let read = client.prepare(READ).await?;
            pool.push((client, read));
        }
        probe.push(Arc::new(pool));
    }
    let mut sessions = Vec::new();
    let settings = [Guarantees::NONE, Guarantees::BOTH];
    for (index, guarantees) in settings
        .iter()
        .flat_map(|g| vec![*g; plan.sessions])
        .enumerate()
    {
        let primary = connect(&cluster.conninfo(0)).await?;
        let mut replicas = Vec::new();
        for i in 1..cluster.nodes.len() {
            replicas.push(connect(&cluster.conninfo(i)).await?);
        }
        sessions.push((guarantees, index, Nodes::new(primary, replicas)));
    }
    Ok(Connections {
        writers,
        probe,
        sessions,
    })
}

/// The dispatcher and the writers; returns every write, in id order.
async fn offer_writes(
    connections: Vec<Writer>,
    plan: &Plan,
    t0: Instant,
    probe_tx: mpsc::UnboundedSender<(i32, i64, Instant)>,
) -> Result<Vec<WriteRecord>, BenchError> {
    let (jobs_tx, jobs_rx) = mpsc::channel::<(i64, i32, i64, Instant)>(WRITE_BACKLOG_MAX);
    // Writers take turns at the queue; the lock is held only while one waits for a job.
    let jobs_rx = Arc::new(Mutex::new(jobs_rx));
    let mut writers = Vec::with_capacity(connections.len());
    for (client, statements) in connections {
        let (jobs, probe_tx, plan) = (jobs_rx.clone(), probe_tx.clone(), plan.clone());
        writers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let job = jobs.lock().await.recv().await;
                let Some((id, account, amount, intended)) = job else {
                    return done;
                };
                let (record, count) = write_one(
                    &client,
                    &statements,
                    (id, account, amount),
                    intended,
                    &plan,
                    t0,
                )
                .await;
                let follow = plan
                    .probe_every
                    .is_some_and(|every| (id as usize).is_multiple_of(every));
                if let (Outcome::Acked, Some(count), true) = (record.outcome, count, follow) {
                    let acked = t0 + Duration::from_secs_f64(record.done_ms / 1000.0);
                    let _ = probe_tx.send((account, count, acked));
                }
                done.push(record);
            }
        }));
    }
    drop(probe_tx);
    for (k, (account, amount)) in workload(plan).into_iter().enumerate() {
        let intended = t0 + Duration::from_secs_f64(k as f64 / plan.rate);
        tokio::time::sleep_until(intended.into()).await;
        if jobs_tx
            .send((k as i64, account, amount, intended))
            .await
            .is_err()
        {
            break;
        }
    }
    drop(jobs_tx);
    let mut all = Vec::new();
    for w in writers {
        all.extend(w.await?);
    }
    all.sort_by_key(|w| w.id);
    Ok(all)
}

/// One write: the statement and the token query pipelined (both go out at once, the token is
/// read after the commit), bounded by `plan.commit_timeout` from when it was sent. Past the
/// bound the query is cancelled: a commit waiting for standbys then returns, committed on the
/// primary only, and the write counts as timed out. Returns the record and the counter's value.
async fn write_one(
    client: &Client,
    (write, token): &(Statement, Statement),
    (id, account, amount): (i64, i32, i64),
    intended: Instant,
    plan: &Plan,
    t0: Instant,
) -> (WriteRecord, Option<i64>) {
    let commit = async {
        let row = client.query_one(write, &[&id, &account, &amount]).await;
        (row, Instant::now())
    };
    let both = async { tokio::join!(commit, client.query_one(token, &[])) };
    tokio::pin!(both);
    let (timed_out, ((row, answered), token)) = tokio::select! {
        answer = &mut both => (false, answer),
        _ = tokio::time::sleep(plan.commit_timeout) => {
            let _ = client.cancel_token().cancel_query(NoTls).await;
            match tokio::time::timeout(CANCEL_GRACE, &mut both).await {
                Ok(answer) => (true, answer),
                // The primary did not honour the cancel: its outcome is unknown, and this
                // connection's next write queues behind it (and is bounded the same way).
                Err(_) => return (
                    WriteRecord {
                        id,
                        outcome: Outcome::TimedOut,
                        intended_ms: ms(t0, intended),
                        done_ms: ms(t0, Instant::now()),
                        token: None,
                    },
                    None,
                ),
            }
        }
    };
    let count = row.as_ref().ok().map(|r| r.get::<_, i64>(0));
    let token = token
        .ok()
        .and_then(|r| r.get::<_, Option<String>>(0))
        .and_then(|t| Lsn::parse(&t).ok());
    let outcome = match (timed_out, &row) {
        (true, _) => Outcome::TimedOut,
        (false, Ok(_)) => Outcome::Acked,
        (false, Err(_)) => Outcome::Failed,
    };
    let record = WriteRecord {
        id,
        outcome,
        intended_ms: ms(t0, intended),
        done_ms: ms(t0, answered),
        token,
    };
    (record, count)
}

/// Follows each write it is sent on every standby: reads at each offset after the commit
/// returned until a read sees the counter at the write's value.
async fn probe(
    pools: Vec<ProbePool>,
    mut writes: mpsc::UnboundedReceiver<(i32, i64, Instant)>,
) -> Result<Vec<ProbeRecord>, tokio::task::JoinError> {
    let mut followers = Vec::new();
    let mut turn = 0usize;
    while let Some((account, count, acked)) = writes.recv().await {
        for (replica, pool) in pools.iter().enumerate() {
            let pool = pool.clone();
            turn += 1;
            followers.push(tokio::spawn(async move {
                let (client, read) = &pool[turn % pool.len()];
                follow(client, read, replica, account, count, acked).await
            }));
        }
    }
    let mut records = Vec::with_capacity(followers.len());
    for f in followers {
        records.push(f.await?);
    }
    Ok(records)
}

/// The reads of one write on one replica.
async fn follow(
    client: &Client,
    read: &Statement,
    replica: usize,
    account: i32,
    count: i64,
    acked: Instant,
) -> ProbeRecord {
    let mut record = ProbeRecord {
        replica,
        first_visible_ms: None,
        read_delays_ms: Vec::new(),
        error: false,
    };
    for offset in VISIBILITY_OFFSETS_MS {
        let at = acked + Duration::from_secs_f64(offset / 1000.0);
        tokio::time::sleep_until(at.into()).await;
        let sent = Instant::now();
        let answer = client.query_opt(read, &[&account]).await;
        let round_trip = sent.elapsed();
        record
            .read_delays_ms
            .push(ms(at, sent) + round_trip.as_secs_f64() * 500.0);
        match answer {
            Ok(row) if row.as_ref().is_some_and(|r| r.get::<_, i64>(0) >= count) => {
                record.first_visible_ms = Some(offset);
                break;
            }
            Ok(_) => {}
            Err(_) => {
                record.error = true;
                break;
            }
        }
    }
    record
}

/// Polls a node's position until told to stop: the primary's WAL write position, or a
/// standby's replay position. A sample's time is the middle of its round trip.
async fn watch(
    conninfo: String,
    primary: bool,
    interval: Duration,
    stop: Arc<AtomicBool>,
    t0: Instant,
) -> Vec<(f64, Lsn)> {
    let mut samples = Vec::new();
    let mut client: Option<Client> = None;
    while !stop.load(Ordering::Relaxed) {
        let Some(c) = &client else {
            client = connect(&conninfo).await.ok();
            if client.is_none() {
                tokio::time::sleep(RECONNECT_PAUSE).await;
            }
            continue;
        };
        let sent = Instant::now();
        let position = match primary {
            true => read::wal_lsn(c).await,
            false => read::replay_lsn(c).await,
        };
        let back = Instant::now();
        match position {
            Ok(lsn) => samples.push(((ms(t0, sent) + ms(t0, back)) / 2.0, lsn)),
            Err(_) => client = None,
        }
        tokio::time::sleep_until((sent + interval).into()).await;
    }
    samples
}

/// Samples `pg_stat_replication` on the primary until told to stop.
async fn sample_replication(conninfo: String, stop: Arc<AtomicBool>) -> Vec<ReplicationSample> {
    let mut samples = Vec::new();
    let mut client: Option<Client> = None;
    while !stop.load(Ordering::Relaxed) {
        if client.is_none() {
            client = connect(&conninfo).await.ok();
        }
        if let Some(c) = &client {
            let rows = c
                .query(
                    "SELECT application_name,
                            (EXTRACT(epoch FROM replay_lag) * 1000)::float8
                     FROM pg_stat_replication",
                    &[],
                )
                .await;
            match rows {
                Ok(rows) => samples.extend(rows.iter().map(|r| ReplicationSample {
                    name: r.get(0),
                    replay_lag_ms: r.get(1),
                })),
                Err(_) => client = None,
            }
        }
        tokio::time::sleep(REPLICATION_SAMPLE_INTERVAL).await;
    }
    samples
}

/// Stops a standby at `stop_at`, restarts it at `restart_at`; returns when the stop had
/// completed (the standby is gone) and when the restart was issued (its start-up, which
/// replays what it has, counts towards its recovery).
async fn fault(
    cluster: Cluster,
    fault: Fault,
    t0: Instant,
) -> Result<(Option<f64>, Option<f64>), BenchError> {
    let node = fault.standby + 1;
    tokio::time::sleep_until((t0 + fault.stop_at).into()).await;
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.stop_node(node, StopMode::Fast)).await??;
    let stopped = ms(t0, Instant::now());
    tokio::time::sleep_until((t0 + fault.restart_at).into()).await;
    let restarted = ms(t0, Instant::now());
    tokio::task::spawn_blocking(move || cluster.start_node(node)).await??;
    Ok((Some(stopped), Some(restarted)))
}

/// Starts the sessions (without guarantees, then with both, as many of each); two tasks
/// return the tallies of each setting at the end of the period. Both settings run at once, so
/// they meet the same lag.
fn spawn_sessions(
    sessions: Vec<(Guarantees, usize, Nodes)>,
    plan: &Plan,
    t0: Instant,
) -> Vec<JoinHandle<Result<SessionTally, BenchError>>> {
    let until = t0 + plan.duration;
    let mut by_setting: Vec<(Guarantees, Vec<_>)> = Vec::new();
    for (guarantees, index, nodes) in sessions {
        let plan = plan.clone();
        let task =
            tokio::spawn(async move { one_session(nodes, guarantees, index, &plan, until).await });
        match by_setting.iter_mut().find(|(g, _)| *g == guarantees) {
            Some((_, tasks)) => tasks.push(task),
            None => by_setting.push((guarantees, vec![task])),
        }
    }
    by_setting
        .into_iter()
        .map(|(guarantees, tasks)| {
            tokio::spawn(async move {
                let mut total = SessionTally {
                    guarantees: guarantees != Guarantees::NONE,
                    ..SessionTally::default()
                };
                for t in tasks {
                    let t = t.await??;
                    total.writes += t.writes;
                    total.reads += t.reads;
                    total.ryw_violations += t.ryw_violations;
                    total.mr_violations += t.mr_violations;
                    total.waited += t.waited;
                    total.on_primary += t.on_primary;
                    total.read_ms.extend(t.read_ms);
                }
                Ok(total)
            })
        })
        .collect()
}

/// A session: write its own counter, read it back twice (the replicas take turns), check each
/// read against its last write (read-your-writes) and its earlier reads (monotonic reads).
async fn one_session(
    nodes: Nodes,
    guarantees: Guarantees,
    index: usize,
    plan: &Plan,
    until: Instant,
) -> Result<SessionTally, BenchError> {
    let account = SESSION_ACCOUNT_BASE + index as i32;
    let write = nodes.primary.prepare(SESSION_WRITE).await?;
    let mut session = Session::new(guarantees);
    let mut tally = SessionTally::default();
    let (mut turn, mut seen) = (index, 0i64);
    while Instant::now() < until {
        let written: i64 = nodes
            .primary
            .query_one(&write, &[&account, &100i64])
            .await?
            .get(0);
        session.wrote(read::write_token(&nodes.primary).await?);
        tally.writes += 1;
        for _ in 0..2 {
            let started = Instant::now();
            let served = read::read(&nodes, &plan.read_policy, &mut session, turn, |c| {
                Box::pin(async move {
                    let row = c.query_opt(READ, &[&account]).await?;
                    Ok(row.map_or(0, |r| r.get::<_, i64>(0)))
                })
            })
            .await?;
            turn += 1;
            tally.reads += 1;
            tally.read_ms.push(started.elapsed().as_secs_f64() * 1000.0);
            tally.ryw_violations += usize::from(served.value < written);
            tally.mr_violations += usize::from(served.value < seen);
            tally.waited += usize::from(served.polls > 1);
            tally.on_primary += usize::from(served.target == Target::Primary);
            seen = seen.max(served.value);
        }
        tokio::time::sleep(plan.session_pause).await;
    }
    Ok(tally)
}

/// Waits until every standby has replayed the primary's current WAL position, at most `max`;
/// whether they did.
pub(super) async fn catch_up(cluster: &Cluster, max: Duration) -> Result<bool, BenchError> {
    let primary = connect(&cluster.conninfo(0)).await?;
    let target = read::wal_lsn(&primary).await?;
    let deadline = Instant::now() + max;
    for i in 1..cluster.nodes.len() {
        let mut standby: Option<Client> = None;
        loop {
            if standby.is_none() {
                standby = connect(&cluster.conninfo(i)).await.ok();
            }
            let replayed = match &standby {
                Some(c) => read::replay_lsn(c).await.ok(),
                None => None,
            };
            if replayed.is_some_and(|r| r >= target) {
                break;
            }
            if replayed.is_none() {
                standby = None;
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(CATCH_UP_POLL).await;
        }
    }
    Ok(true)
}
