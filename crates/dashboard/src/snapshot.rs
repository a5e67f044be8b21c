//! What the page receives, [`SNAPSHOT_INTERVAL`] apart: one JSON object per event of
//! `GET /dashboard/events`. Its field names are the page's contract (`assets/app.js` reads
//! them); a figure the server cannot fill yet is `null`, never left out.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use contracts::ServiceName;
use contracts::internal::DeadLetter;
use serde::Serialize;
use serde_json::Value;

use crate::load::{LoadView, RATE_MAX_PER_S, RECENT_ORDERS_MAX};
use crate::readings::{
    CounterWindow, HistogramWindow, ServiceProgress, SinceSource, StateClock, counter_sum,
    services_from_progress,
};
use crate::visibility::VisibilityView;

/// How often a snapshot is pushed. Twice a second reads as live motion on the charts; each
/// costs the system three reads of the gateway (fifteen internal calls) and, with the
/// controls on, one read of each service's processing delay: nothing against the thousands
/// of orders a second the slider can offer.
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(500);

/// The window of the apply-lag percentiles and rates: short enough that raising a delay
/// shows within a few seconds, long enough to hold a few hundred orders at a modest rate.
pub const LAG_WINDOW: Duration = Duration::from_secs(5);

/// Dead letters listed at most, newest first; the total is given beside them. A poison
/// event repeated by a broken producer could otherwise make every snapshot megabytes.
pub const DEAD_LETTERS_SHOWN_MAX: usize = 50;

/// The error text of a dead letter is cut to this many characters on the page.
const ERROR_CHARS_MAX: usize = 500;

/// The histogram every service exports: ms from an order's acknowledgement to this service
/// applying it.
pub const APPLY_LAG_METRIC: &str = "converge_apply_lag_seconds";
/// The gauge beside it: the largest lag since the service started.
pub const APPLY_LAG_MAX_METRIC: &str = "converge_apply_lag_max_seconds";
/// Order's answers, by outcome (the status code).
pub const ORDERS_METRIC: &str = "converge_orders_total";
/// Order's acknowledgement latency in ms, if Order exports it (it does not yet: then the
/// page shows only the latency the dashboard's own load measures).
pub const ORDER_ACK_LATENCY_METRIC: &str = "converge_ack_latency_ms";

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// The system's mode, as the server was told (`strong`, `queue`, `cron`).
    pub label: String,
    pub gateway_url: String,
    pub at_ms: i64,
    /// Whether the gateway answered the last reads.
    pub reachable: bool,
    /// Why a read failed, one line each; empty when all answered.
    pub errors: Vec<String>,
    /// Every event consumed and nothing in doubt, as `/progress` says.
    pub quiet: Option<bool>,
    pub load: LoadView,
    pub orders: OrdersView,
    pub services: Vec<ServiceView>,
    pub visibility: VisibilityView,
    pub dead_letters: DeadLettersView,
    pub controls: Controls,
    pub limits: Limits,
}

/// Every order the system answered, whoever placed it, from Order's metrics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OrdersView {
    /// `2xx` answers per second over [`LAG_WINDOW`].
    pub acked_per_s: Option<f64>,
    pub answered_per_s: Option<f64>,
    /// From [`ORDER_ACK_LATENCY_METRIC`], when Order exports it.
    pub ack_p50_ms: Option<f64>,
    pub ack_p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceView {
    #[serde(flatten)]
    pub progress: ServiceProgress,
    /// Apply lag over [`LAG_WINDOW`]; `None` when nothing was applied in it.
    pub lag_p50_ms: Option<f64>,
    pub lag_p99_ms: Option<f64>,
    /// The largest apply lag since the service started.
    pub lag_max_ms: Option<f64>,
    /// Orders applied per second over the window.
    pub applied_per_s: Option<f64>,
    pub dead_letters: usize,
    /// Since when the service has been in its state, and who says so.
    pub state_since_ms: i64,
    pub state_since_source: SinceSource,
    /// The processing delay in force (the largest among its instances); `None` when the
    /// dashboard has no access to the services or the service did not answer.
    pub delay_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DeadLettersView {
    pub total: usize,
    /// Newest first, at most [`DEAD_LETTERS_SHOWN_MAX`].
    pub shown: Vec<DeadLetterView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeadLetterView {
    /// The service's handle for it: what replay and discard name.
    pub id: i64,
    pub service: String,
    pub feed: String,
    pub seq: i64,
    pub event_id: String,
    pub error: String,
    pub attempts: i64,
    pub recorded_at_ms: i64,
}

/// Why the controls that act on the services are off on a dashboard given no access to
/// them (see [`crate::DashboardConfig::services`]).
pub const NO_SERVICES_REASON: &str = "this dashboard was started without the services' \
    addresses and secret, so it can only watch them";

/// Why killing and restarting a service is off: only the supervisor that started the
/// services as processes can stop and start one. Under `converge serve` they share the page's
/// own process, so killing one would kill them all.
pub const KILL_DISABLED_REASON: &str = "needs the services as separate processes under \
    `converge up`: under `converge serve` they share the page's own process";

/// One control: whether it works on this server, and if not, why (shown beside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Control {
    pub enabled: bool,
    pub reason: Option<&'static str>,
}

impl Control {
    const ON: Control = Control {
        enabled: true,
        reason: None,
    };

    const fn off(reason: &'static str) -> Self {
        Control {
            enabled: false,
            reason: Some(reason),
        }
    }
}

/// Which controls work on this server. The page draws every control and disables those that
/// do not, with the reason. Whether a service has consumers to pause is per service
/// ([`ServiceView`]'s `consumes`).
#[derive(Debug, Clone, Serialize)]
pub struct Controls {
    pub load: Control,
    /// Each service's processing delay.
    pub delays: Control,
    /// Pausing and resuming a service's consumers.
    pub pause: Control,
    /// Reading, replaying and discarding dead letters.
    pub dead_letters: Control,
    /// Killing and restarting a service (separate processes only).
    pub kill: Control,
}

impl Controls {
    /// The controls of a dashboard with (or without) access to the services, and through
    /// them (or not) to the supervisor of their processes.
    pub fn new(services: Option<&crate::ServiceAdmin>) -> Self {
        let kill = if services.is_some_and(crate::ServiceAdmin::has_supervisor) {
            Control::ON
        } else {
            Control::off(KILL_DISABLED_REASON)
        };
        let on_services = if services.is_some() {
            Control::ON
        } else {
            Control::off(NO_SERVICES_REASON)
        };
        Self {
            load: Control::ON,
            delays: on_services,
            pause: on_services,
            dead_letters: on_services,
            kill,
        }
    }
}

/// The server's limits, so the page draws its slider and labels from them.
#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    pub rate_max_per_s: u32,
    pub snapshot_interval_ms: u64,
    pub lag_window_s: u64,
    pub recent_orders_max: usize,
    pub dead_letters_shown_max: usize,
    /// The largest processing delay a service accepts.
    pub processing_delay_ms_max: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            rate_max_per_s: RATE_MAX_PER_S,
            snapshot_interval_ms: SNAPSHOT_INTERVAL.as_millis() as u64,
            lag_window_s: LAG_WINDOW.as_secs(),
            recent_orders_max: RECENT_ORDERS_MAX,
            dead_letters_shown_max: DEAD_LETTERS_SHOWN_MAX,
            processing_delay_ms_max: contracts::internal::PROCESSING_DELAY_MS_MAX,
        }
    }
}

/// The windows kept from one snapshot to the next: metrics are cumulative, the page wants
/// the last seconds.
#[derive(Debug)]
pub struct Windows {
    apply_lag: Vec<HistogramWindow>,
    acked: CounterWindow,
    answered: CounterWindow,
    ack_latency: HistogramWindow,
}

impl Default for Windows {
    fn default() -> Self {
        Self {
            apply_lag: ServiceName::ALL
                .iter()
                .map(|_| HistogramWindow::new(LAG_WINDOW))
                .collect(),
            acked: CounterWindow::new(LAG_WINDOW),
            answered: CounterWindow::new(LAG_WINDOW),
            ack_latency: HistogramWindow::new(LAG_WINDOW),
        }
    }
}

impl Windows {
    /// Takes a `/metrics` exposition read at `at`.
    pub fn push_metrics(&mut self, at: Instant, text: &str) {
        for (service, window) in ServiceName::ALL.iter().zip(&mut self.apply_lag) {
            if let Some(mut h) =
                loadgen::stats::prometheus_histogram(text, APPLY_LAG_METRIC, service.as_str())
            {
                // Exposed in seconds (Prometheus' base unit), shown in milliseconds.
                h.sum *= 1_000.0;
                h.buckets.iter_mut().for_each(|(le, _)| *le *= 1_000.0);
                window.push(at, h);
            }
        }
        let order = [("service", "order")];
        let is_2xx = |labels: &[(String, String)]| {
            labels
                .iter()
                .any(|(k, v)| k == "status" && v.starts_with('2'))
        };
        if let Some(acked) = counter_sum(text, ORDERS_METRIC, &order, is_2xx) {
            self.acked.push(at, acked);
        }
        if let Some(answered) = counter_sum(text, ORDERS_METRIC, &order, |_| true) {
            self.answered.push(at, answered);
        }
        if let Some(h) =
            loadgen::stats::prometheus_histogram(text, ORDER_ACK_LATENCY_METRIC, "order")
        {
            self.ack_latency.push(at, h);
        }
    }

    pub fn orders(&self) -> OrdersView {
        let latency = self.ack_latency.summary();
        OrdersView {
            acked_per_s: self.acked.per_s(),
            answered_per_s: self.answered.per_s(),
            ack_p50_ms: latency.and_then(|s| s.p50),
            ack_p99_ms: latency.and_then(|s| s.p99),
        }
    }
}

/// What the sampler read of the system, for [`services`].
#[derive(Debug, Clone, Copy)]
pub struct Readings<'a> {
    /// The last `/progress` body, if any.
    pub progress: Option<&'a Value>,
    /// The last `/metrics` text (for the since-start maximum).
    pub metrics: Option<&'a str>,
    pub dead_letters: &'a BTreeMap<String, Vec<DeadLetter>>,
    /// Each service's processing delay, in [`ServiceName::ALL`] order, when read.
    pub delays_ms: Option<&'a [Option<u64>]>,
    /// When these were read, in ms since the Unix epoch.
    pub at_ms: i64,
}

/// Every service's row, from what was read, the windows, and the clock of their states.
pub fn services(
    readings: &Readings<'_>,
    windows: &Windows,
    clock: &mut StateClock,
) -> Vec<ServiceView> {
    let empty = Value::Null;
    let metrics = readings.metrics;
    let progress = services_from_progress(readings.progress.unwrap_or(&empty));
    progress
        .into_iter()
        .zip(&windows.apply_lag)
        .enumerate()
        .map(|(i, (progress, window))| {
            let summary = window.summary();
            let name = progress.name;
            let lag_max_ms = metrics.and_then(|text| {
                counter_sum(text, APPLY_LAG_MAX_METRIC, &[("service", name)], |_| true)
                    .map(|seconds| seconds * 1_000.0)
            });
            // A percentile interpolated within a bucket can exceed every lag observed (lags
            // of 0 ms read as 0.25 ms from the first bucket, 0–0.5 ms); the exact maximum
            // since start bounds it.
            let bounded = |p: Option<f64>| match (p, lag_max_ms) {
                (Some(p), Some(max)) => Some(p.min(max)),
                (p, _) => p,
            };
            let (state_since_ms, state_since_source) = clock.observe(
                name,
                progress.state,
                progress.stuck_since_ms,
                readings.at_ms,
            );
            ServiceView {
                lag_p50_ms: bounded(summary.and_then(|s| s.p50)),
                lag_p99_ms: bounded(summary.and_then(|s| s.p99)),
                lag_max_ms,
                applied_per_s: summary.map(|s| s.per_s),
                dead_letters: readings.dead_letters.get(name).map_or(0, Vec::len),
                state_since_ms,
                state_since_source,
                delay_ms: readings.delays_ms.and_then(|d| d.get(i).copied().flatten()),
                progress,
            }
        })
        .collect()
}

/// The dead letters of every service, newest first, at most [`DEAD_LETTERS_SHOWN_MAX`].
pub fn dead_letters(by_service: &BTreeMap<String, Vec<DeadLetter>>) -> DeadLettersView {
    let mut all: Vec<DeadLetterView> = by_service
        .iter()
        .flat_map(|(service, letters)| {
            letters.iter().map(move |letter| DeadLetterView {
                id: letter.id,
                service: service.clone(),
                feed: letter.feed.clone(),
                seq: letter.cursor.seq,
                event_id: letter.event_id.clone(),
                error: letter.error.chars().take(ERROR_CHARS_MAX).collect(),
                attempts: letter.attempts,
                recorded_at_ms: letter.recorded_at_ms,
            })
        })
        .collect();
    let total = all.len();
    all.sort_by_key(|letter| std::cmp::Reverse(letter.recorded_at_ms));
    all.truncate(DEAD_LETTERS_SHOWN_MAX);
    DeadLettersView { total, shown: all }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn letter(seq: i64, at: i64) -> DeadLetter {
        DeadLetter {
            id: seq,
            feed: "order".into(),
            cursor: contracts::events::Cursor::new(0, seq),
            event_id: format!("evt_{seq}"),
            body: None,
            error: "x".repeat(ERROR_CHARS_MAX * 2),
            attempts: 5,
            recorded_at_ms: at,
        }
    }

    #[test]
    fn dead_letters_are_newest_first_and_capped() {
        let mut by_service = BTreeMap::new();
        by_service.insert(
            "stats".to_owned(),
            (0..DEAD_LETTERS_SHOWN_MAX as i64 + 5)
                .map(|i| letter(i, i))
                .collect(),
        );
        by_service.insert("loyalty".to_owned(), vec![letter(99, 1_000)]);
        let view = dead_letters(&by_service);
        assert_eq!(view.total, DEAD_LETTERS_SHOWN_MAX + 6);
        assert_eq!(view.shown.len(), DEAD_LETTERS_SHOWN_MAX);
        assert_eq!(view.shown[0].service, "loyalty");
        assert!(view.shown[1].recorded_at_ms > view.shown[2].recorded_at_ms);
        assert_eq!(view.shown[0].error.chars().count(), ERROR_CHARS_MAX);
    }

    #[test]
    fn services_join_progress_metrics_and_dead_letters() {
        let t0 = Instant::now();
        let exposition = |stats_count: u64| {
            format!(
                "converge_apply_lag_seconds_bucket{{service=\"stats\",le=\"0.01\"}} 0\n\
                 converge_apply_lag_seconds_bucket{{service=\"stats\",le=\"0.1\"}} {stats_count}\n\
                 converge_apply_lag_seconds_bucket{{service=\"stats\",le=\"+Inf\"}} {stats_count}\n\
                 converge_apply_lag_seconds_count{{service=\"stats\"}} {stats_count}\n\
                 converge_apply_lag_max_seconds{{service=\"stats\"}} 0.097\n\
                 converge_orders_total{{status=\"202\",service=\"order\"}} {stats_count}\n\
                 converge_orders_total{{status=\"402\",service=\"order\"}} 1\n"
            )
        };
        let mut windows = Windows::default();
        windows.push_metrics(t0, &exposition(0));
        let later = exposition(40);
        windows.push_metrics(t0 + Duration::from_secs(2), &later);
        let progress = json!({"services": {
            "order": {"outbox_head": {"tx": 0, "seq": 50}, "consumers": {}, "in_doubt": 0},
            "stats": {"outbox_head": null, "consumers": {"order": {"position": {"tx": 0, "seq": 30}}}, "in_doubt": 0}
        }});
        let mut letters = BTreeMap::new();
        letters.insert("stats".to_owned(), vec![letter(1, 1)]);
        let delays = [Some(0), Some(0), Some(0), None, Some(500)];
        let readings = Readings {
            progress: Some(&progress),
            metrics: Some(&later),
            dead_letters: &letters,
            delays_ms: Some(&delays),
            at_ms: 1_000,
        };
        let rows = services(&readings, &windows, &mut StateClock::default());
        let stats = rows.iter().find(|r| r.progress.name == "stats").unwrap();
        assert_eq!(stats.progress.backlog, Some(20));
        assert_eq!(stats.applied_per_s, Some(20.0));
        assert!(stats.lag_p50_ms.unwrap() > 10.0);
        assert_eq!(stats.lag_max_ms, Some(97.0));
        assert_eq!(stats.dead_letters, 1);
        assert_eq!(stats.delay_ms, Some(500));
        assert!(stats.progress.consumes);
        assert_eq!(
            (stats.state_since_ms, stats.state_since_source),
            (1_000, SinceSource::Observed)
        );
        let loyalty = rows.iter().find(|r| r.progress.name == "loyalty").unwrap();
        assert_eq!(loyalty.delay_ms, None, "loyalty did not answer");
        // Interpolated in the 10–100 ms bucket, p99 would be 99.1 ms; no lag exceeded 97.
        assert_eq!(stats.lag_p99_ms, Some(97.0));
        let account = rows.iter().find(|r| r.progress.name == "account").unwrap();
        assert_eq!(account.lag_p99_ms, None);
        assert_eq!(windows.orders().acked_per_s, Some(20.0));
        assert_eq!(windows.orders().ack_p50_ms, None);
    }
}
