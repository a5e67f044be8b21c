//! `converge replicas bench`: per replication policy, a steady run and a drill, measured at the
//! database level.
//!
//! For each policy: put it in force ([`crate::policy::apply`]), reset the lab's tables, then
//!
//! 1. **steady run** (`load.rs`): the seeded workload at a constant rate, the probe on every
//!    standby, sessions with and without guarantees; then wait until every standby caught up
//!    and check that no acknowledged write is missing anywhere;
//! 2. **drill**: the same workload without probe or sessions, the first standby stopped a third
//!    of the way in and restarted at two thirds; the same check after it caught up.
//!
//! `analyze.rs` turns each recording into the report's figures ([`crate::model`]).

mod analyze;
mod load;

use std::collections::HashSet;
use std::time::Duration;

use tokio_postgres::Client;

use crate::cluster::{Cluster, ClusterError};
use crate::db::connect;
use crate::model::{LossCheck, PolicyRun, Report, Settings};
use crate::policy::{self, Policy, PolicyError};
use crate::read::ReadError;
use crate::session::ReadPolicy;
use crate::stats::VISIBILITY_OFFSETS_MS;

use load::{Fault, Outcome, Plan, Recording};

/// After the load, the standbys get this long to replay everything before the loss check runs
/// anyway (and says they had not caught up): a restarted standby replays a few seconds of
/// missed WAL in well under a second here; a minute means something is wrong.
pub const CATCH_UP_MAX: Duration = Duration::from_secs(60);

/// What a bench runs.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub policies: Vec<Policy>,
    /// Writes offered per second.
    pub rate: f64,
    pub duration: Duration,
    pub accounts: u32,
    pub seed: u64,
    /// Connections committing the workload on the primary.
    pub writers: usize,
    /// Writes per second the probe follows on every standby.
    pub probe_per_s: f64,
    /// Probe connections per standby.
    pub probe_connections: usize,
    /// Sessions per guarantee setting (off, on).
    pub sessions: usize,
    /// A session's pause between rounds (write, two reads).
    pub session_pause: Duration,
    /// How sessions with guarantees route and wait.
    pub read_policy: ReadPolicy,
    /// The writers' bound on a commit.
    pub commit_timeout: Duration,
    /// How often the watchers sample each node's position.
    pub watch_interval: Duration,
    /// The drill's length; zero: no drill.
    pub drill: Duration,
}

/// What can stop a bench.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("a bench task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Runs every policy of `config` on `cluster` (running, at least one standby); `progress` is
/// told what starts. `command` and `machine` go into the report as they are.
pub async fn run(
    cluster: &Cluster,
    config: &BenchConfig,
    command: String,
    machine: String,
    progress: impl Fn(&str),
) -> Result<Report, BenchError> {
    let names = cluster.standby_names();
    let primary = connect(&cluster.conninfo(0)).await?;
    let mut policies = Vec::new();
    for &p in &config.policies {
        progress(&format!("{p}: {} for {:?}", p.waits_for(), config.duration));
        policy::apply(&primary, p, &names).await?;
        let mut run = steady(cluster, &primary, config, p).await?;
        if !config.drill.is_zero() {
            progress(&format!("{p}: drill, {} stopped under load", names[0]));
            run.drill = Some(drill(cluster, &primary, config).await?);
        }
        policies.push(run);
    }
    // The cluster is left asynchronous: a synchronous policy left behind would make the next
    // user's commits wait for standbys they may stop.
    policy::apply(&primary, Policy::Async, &names).await?;
    Ok(Report {
        command,
        started_unix_s: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        machine,
        settings: settings(config, names),
        offsets_ms: VISIBILITY_OFFSETS_MS.to_vec(),
        policies,
    })
}

fn settings(config: &BenchConfig, replicas: Vec<String>) -> Settings {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Settings {
        rate_per_s: config.rate,
        duration_s: config.duration.as_secs_f64(),
        accounts: config.accounts,
        seed: config.seed,
        writers: config.writers,
        probe_per_s: config.probe_per_s,
        sessions_per_setting: config.sessions,
        session_pause_ms: ms(config.session_pause),
        wait_max_ms: ms(config.read_policy.wait_max),
        commit_timeout_ms: ms(config.commit_timeout),
        watch_interval_ms: ms(config.watch_interval),
        drill_s: config.drill.as_secs_f64(),
        replicas,
    }
}

fn plan(config: &BenchConfig, duration: Duration) -> Plan {
    Plan {
        rate: config.rate,
        duration,
        writers: config.writers.max(1),
        accounts: config.accounts.max(1),
        seed: config.seed,
        commit_timeout: config.commit_timeout,
        watch_interval: config.watch_interval,
        probe_every: None,
        probe_connections: config.probe_connections,
        sessions: 0,
        session_pause: config.session_pause,
        read_policy: config.read_policy,
        fault: None,
    }
}

/// Empties the lab's tables (creating them the first time) and waits for the standbys to
/// have done the same, so a run starts with every node equal.
async fn reset(cluster: &Cluster, primary: &Client) -> Result<(), BenchError> {
    primary.batch_execute(load::SCHEMA).await?;
    load::catch_up(cluster, CATCH_UP_MAX).await?;
    Ok(())
}

async fn steady(
    cluster: &Cluster,
    primary: &Client,
    config: &BenchConfig,
    policy: Policy,
) -> Result<PolicyRun, BenchError> {
    reset(cluster, primary).await?;
    let mut plan = plan(config, config.duration);
    let every = (config.rate / config.probe_per_s.max(f64::MIN_POSITIVE)).round() as usize;
    plan.probe_every = (config.probe_per_s > 0.0).then_some(every.max(1));
    plan.sessions = config.sessions;
    let rec = load::run(cluster, &plan, CATCH_UP_MAX).await?;
    let names = cluster.standby_names();
    let duration_s = config.duration.as_secs_f64();
    Ok(PolicyRun {
        policy: policy.name().to_string(),
        synchronous_standby_names: policy.standby_names(&names),
        synchronous_commit: policy.synchronous_commit().to_string(),
        waits_for: policy.waits_for().to_string(),
        writes: analyze::writes(&rec.writes, duration_s),
        replicas: analyze::replicas(&rec, &names, &VISIBILITY_OFFSETS_MS),
        sessions: analyze::sessions(&rec, config.sessions),
        lost: check_loss(cluster, &rec).await?,
        drill: None,
    })
}

async fn drill(
    cluster: &Cluster,
    primary: &Client,
    config: &BenchConfig,
) -> Result<crate::model::Drill, BenchError> {
    reset(cluster, primary).await?;
    let mut plan = plan(config, config.drill);
    plan.fault = Some(Fault {
        standby: 0,
        stop_at: config.drill / 3,
        restart_at: config.drill * 2 / 3,
    });
    let rec = load::run(cluster, &plan, CATCH_UP_MAX).await?;
    let names = cluster.standby_names();
    let mut drill = analyze::drill(&rec, &names, 0, config.drill.as_secs_f64());
    drill.lost = check_loss(cluster, &rec).await?;
    Ok(drill)
}

/// A loss check not run yet (filled in by [`check_loss`]).
fn no_loss_check_yet() -> LossCheck {
    LossCheck {
        acked: 0,
        missing_on_primary: 0,
        missing_on_replicas: Vec::new(),
        timed_out: 0,
        timed_out_committed: 0,
        caught_up: false,
    }
}

/// Every acknowledged write must be on the primary and, the standbys having caught up, on every
/// standby; timed-out writes are looked for on the primary (a cancelled wait for standbys
/// leaves the commit there).
async fn check_loss(cluster: &Cluster, rec: &Recording) -> Result<LossCheck, BenchError> {
    let ids = |o: Outcome| -> HashSet<i64> {
        rec.writes
            .iter()
            .filter(|w| w.outcome == o)
            .map(|w| w.id)
            .collect()
    };
    let (acked, timed_out) = (ids(Outcome::Acked), ids(Outcome::TimedOut));
    let mut present = Vec::new();
    for i in 0..cluster.nodes.len() {
        let client = connect(&cluster.conninfo(i)).await?;
        let rows = client.query("SELECT id FROM replica_writes", &[]).await?;
        present.push(rows.iter().map(|r| r.get(0)).collect::<HashSet<i64>>());
    }
    let missing = |node: &HashSet<i64>| acked.difference(node).count();
    Ok(LossCheck {
        acked: acked.len(),
        missing_on_primary: missing(&present[0]),
        missing_on_replicas: cluster
            .standby_names()
            .into_iter()
            .zip(present[1..].iter().map(missing))
            .collect(),
        timed_out: timed_out.len(),
        timed_out_committed: timed_out.intersection(&present[0]).count(),
        caught_up: rec.caught_up,
    })
}
