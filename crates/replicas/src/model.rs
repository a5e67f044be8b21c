//! What a replicas bench found, as `report.json`: per policy, the writers' cost, what each
//! replica showed (measured and predicted visibility, staleness, replay lag), what sessions
//! saw with and without guarantees, whether anything was lost, and the standby-stopped drill.
//! Times are milliseconds, positions WAL bytes, shares fractions in `[0, 1]` (NaN is written
//! as `null`).

use serde::{Deserialize, Serialize};

use crate::stats::Summary;

/// A whole bench.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The command line that produced it.
    pub command: String,
    /// Start, seconds since the Unix epoch.
    pub started_unix_s: u64,
    /// `postgres --version`, cores.
    pub machine: String,
    pub settings: Settings,
    /// The delays after a commit at which replicas were read (the visibility curves' x), ms.
    pub offsets_ms: Vec<f64>,
    pub policies: Vec<PolicyRun>,
}

/// The knobs of the bench.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub rate_per_s: f64,
    pub duration_s: f64,
    pub accounts: u32,
    pub seed: u64,
    pub writers: usize,
    pub probe_per_s: f64,
    pub sessions_per_setting: usize,
    pub session_pause_ms: f64,
    pub wait_max_ms: f64,
    pub commit_timeout_ms: f64,
    pub watch_interval_ms: f64,
    pub drill_s: f64,
    pub replicas: Vec<String>,
}

/// One policy's runs: the steady one, and the drill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyRun {
    pub policy: String,
    pub synchronous_standby_names: String,
    pub synchronous_commit: String,
    /// What a commit waits for, in words.
    pub waits_for: String,
    pub writes: Writes,
    pub replicas: Vec<ReplicaRun>,
    /// Sessions without guarantees, then with both.
    pub sessions: Vec<SessionRun>,
    pub lost: LossCheck,
    pub drill: Option<Drill>,
}

/// The workload's writes on the primary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Writes {
    pub offered: usize,
    /// Answered: committed, and replicated as the policy demands.
    pub acked: usize,
    /// Not answered within the client's bound, then cancelled. Either it was waiting for
    /// standbys (cancelled, it stays committed on the primary, never confirmed replicated) or
    /// it had not committed yet (cancelled, it rolls back: e.g. waiting for the row lock of an
    /// earlier write to the same account, which a commit keeps while it waits for standbys).
    /// The client does not know which.
    pub timed_out: usize,
    /// Failed with an error.
    pub failed: usize,
    /// Acknowledged per second of load.
    pub acked_per_s: f64,
    /// Commit latency of acknowledged writes, from when each was meant to be sent.
    pub latency_ms: Summary,
}

/// What one replica showed during the steady run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaRun {
    pub name: String,
    /// Writes the probe followed on this replica.
    pub probed: usize,
    pub probe_errors: usize,
    /// Share of probed writes a read saw, at each offset (measured).
    pub visibility: Vec<f64>,
    /// The same, predicted from the apply-lag and read-delay distributions (PBS).
    pub predicted: Vec<f64>,
    /// When the replica applied each write, from the commit's return (negative: before).
    pub apply_lag_ms: Summary,
    /// How long its oldest missing acknowledged write had been acknowledged, sampled.
    pub staleness_ms: Summary,
    /// How far its replay position was behind the primary's WAL, sampled.
    pub staleness_bytes: Summary,
    /// `pg_stat_replication.replay_lag`, sampled (PostgreSQL's own measure).
    pub replay_lag_ms: Summary,
}

/// What sessions saw, with or without guarantees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRun {
    /// `off`, or `on` (read-your-writes and monotonic reads).
    pub guarantees: String,
    pub sessions: usize,
    pub writes: usize,
    pub reads: usize,
    /// Reads that missed the session's own last write.
    pub ryw_violations: usize,
    /// Reads older than an earlier read of the session.
    pub mr_violations: usize,
    /// Reads that waited for a replica to catch up.
    pub waited: usize,
    /// Reads served by the primary because no replica caught up within the bound.
    pub on_primary: usize,
    pub read_ms: Summary,
}

/// Whether every write is where it must be, once the replicas caught up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossCheck {
    pub acked: usize,
    pub missing_on_primary: usize,
    /// `(replica, acknowledged writes it lacks)`.
    pub missing_on_replicas: Vec<(String, usize)>,
    pub timed_out: usize,
    /// Timed-out writes found committed on the primary (the others rolled back).
    pub timed_out_committed: usize,
    /// Whether every replica caught up with the primary before the check.
    pub caught_up: bool,
}

impl LossCheck {
    /// Nothing acknowledged is missing anywhere.
    pub fn nothing_lost(&self) -> bool {
        self.caught_up
            && self.missing_on_primary == 0
            && self.missing_on_replicas.iter().all(|(_, n)| *n == 0)
    }
}

/// A standby stopped under load, then restarted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drill {
    pub stopped: String,
    pub stopped_at_s: f64,
    pub restarted_at_s: f64,
    pub duration_s: f64,
    pub writes: Writes,
    /// Commit latency p99 of the writes meant to be sent while the standby was down.
    pub latency_down_ms: Summary,
    pub bucket_s: f64,
    pub buckets: Vec<DrillBucket>,
    /// From the restart (issued) until the stopped standby had replayed everything the primary
    /// had written by then: its start-up and its catching up.
    pub recovered_after_ms: Option<f64>,
    /// The stopped standby's largest staleness.
    pub max_staleness_ms: f64,
    pub lost: LossCheck,
}

/// One slice of the drill's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillBucket {
    /// The slice's end, s from the start.
    pub t_s: f64,
    pub acked: usize,
    pub timed_out: usize,
    /// Commit latency p99 of the writes answered in the slice.
    pub latency_p99_ms: f64,
    /// Each replica's staleness at the slice's end (its last known position; carried while it
    /// is down).
    pub staleness_ms: Vec<f64>,
    pub staleness_bytes: Vec<f64>,
}
