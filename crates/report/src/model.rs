//! What a bench run measured: the contents of `report.json`. Every figure of the table and of
//! the charts comes from here, so the JSON and the page always agree.

use serde::{Deserialize, Serialize};

/// The whole report of one `converge bench` (or `converge demo`) invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The command line that produced it, so it can be reproduced.
    pub command: String,
    /// When the bench started, RFC 3339.
    pub started_at: String,
    pub machine: Machine,
    pub settings: Settings,
    /// One run per (mode, stats delay), in the order they ran. `baseline` is a mode here.
    pub runs: Vec<Run>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub os: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Offered orders per second; `None` means `--rate max` (closed loop).
    pub rate: Option<u64>,
    /// Connections (requests in flight at most) of the load generator.
    pub connections: usize,
    pub duration_s: f64,
    pub accounts: usize,
    pub seed: u64,
    pub cron_interval_ms: u64,
    /// The Stats delays swept; `[0]` when there was no sweep.
    pub stats_delays_ms: Vec<u64>,
}

/// Percentiles of a latency distribution, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// A cumulative distribution: `(value_ms, fraction ≤ value)` points, increasing in both.
pub type Cdf = Vec<(f64, f64)>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// `floor`, `baseline`, `strong`, `queue` or `cron`.
    pub mode: String,
    /// The database and transport it ran on: `sqlite+embedded`, `postgres+nats`, …; the
    /// floor and the baseline, which have no transport, by their database alone.
    #[serde(default = "default_backends")]
    pub backends: String,
    pub stats_delay_ms: u64,
    /// Orders per second offered; `None` for `--rate max`.
    pub offered_rate: Option<u64>,
    /// Orders per second acknowledged over the measured window.
    pub achieved_rate: f64,
    pub sent: u64,
    /// Answered 201 or 202.
    pub acknowledged: u64,
    /// Answered 4xx: refused before the acknowledgement (strong).
    pub refused: u64,
    /// Answered 5xx or not at all (timeouts, connection errors).
    pub failed: u64,
    /// Acknowledged, then cancelled (eventual modes), once the system was quiet.
    pub cancelled: u64,
    /// Acknowledgement latency counted from each request's intended send time (no
    /// coordinated omission).
    pub ack_latency: Percentiles,
    pub ack_latency_cdf: Cdf,
    /// This run's p50 and p99 divided by the baseline's at the same load, if one ran.
    pub ratio_to_baseline: Option<Ratio>,
    /// Per service: time from an order's acknowledgement to that service applying it.
    pub apply_lag: Vec<ServiceLag>,
    /// The probability that a read t ms after the acknowledgement already reflects the order.
    pub visibility: Visibility,
    /// How many acknowledged orders a Stats read was behind.
    pub k_staleness: KStaleness,
    /// Per second of the run.
    pub timeline: Vec<TimelinePoint>,
    /// From the last acknowledgement until every service had applied every order, ms.
    pub converged_after_ms: f64,
    /// Invariant violations found by the checker once quiet (must be 0).
    pub violations: Vec<String>,
    /// Resident memory of the system's process, sampled every second.
    pub rss_mib: MemoryUse,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    pub p50: f64,
    pub p99: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceLag {
    pub service: String,
    /// Estimated from the service's Prometheus histogram (bucket interpolation).
    pub lag: Percentiles,
    /// The exact largest lag the service saw.
    pub max_ms: f64,
    pub cdf: Cdf,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Visibility {
    /// The delays after the acknowledgement at which reads were made, ms, increasing.
    pub delays_ms: Vec<f64>,
    /// One curve per service and for the order's own status (`order`).
    pub curves: Vec<VisibilityCurve>,
    /// Acknowledged orders that were probed.
    pub samples: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisibilityCurve {
    pub service: String,
    /// For each delay of [`Visibility::delays_ms`], the fraction of reads that reflected the
    /// order, in `[0, 1]`.
    pub probability: Vec<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct KStaleness {
    pub reads: u64,
    pub mean: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    /// Seconds since the load started.
    pub t_s: f64,
    pub acknowledged_per_s: f64,
    pub ack_p99_ms: f64,
    /// How many acknowledged orders Stats had not applied yet, sampled at this second.
    pub stats_backlog: f64,
    pub rss_mib: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct MemoryUse {
    pub max: f64,
    /// Resident memory at the start and at the end of the load, to show it stays flat.
    pub start: f64,
    pub end: f64,
}

fn default_backends() -> String {
    "sqlite+embedded".into()
}
