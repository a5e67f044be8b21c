//! One Prometheus registry per service, so that five services in one process keep their
//! figures apart and each can be scraped on its own.

use std::sync::Arc;

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Buckets for lags and latencies, in milliseconds: fine below 10 ms where strong mode and a
/// quiet queue live, coarse up to a minute where a stopped service or a cron tick puts them.
pub const LAG_BUCKETS_MS: &[f64] = &[
    0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 1_000.0,
    1_500.0, 2_500.0, 5_000.0, 10_000.0, 30_000.0, 60_000.0,
];

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Time from an order's acknowledgement to this service applying it.
    pub apply_lag_ms: Histogram,
    /// The largest apply lag seen since start, exact (a histogram only bounds it).
    pub apply_lag_max_ms: IntGauge,
    /// Events applied, by feed and outcome (`applied`, `dead_lettered`).
    pub events: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new(service: &str) -> Self {
        let registry = Registry::new_custom(
            Some("converge".into()),
            Some([("service".to_owned(), service.to_owned())].into()),
        )
        .expect("a constant prefix and label are valid");
        let apply_lag_ms = Histogram::with_opts(
            HistogramOpts::new(
                "apply_lag_ms",
                "Milliseconds from an order's acknowledgement to this service applying it.",
            )
            .buckets(LAG_BUCKETS_MS.to_vec()),
        )
        .expect("valid histogram");
        let apply_lag_max_ms = IntGauge::new(
            "apply_lag_max_ms",
            "The largest apply lag seen since the service started, in milliseconds.",
        )
        .expect("valid gauge");
        let events = IntCounterVec::new(
            Opts::new("events_total", "Events consumed, by feed and outcome."),
            &["feed", "outcome"],
        )
        .expect("valid counter");
        registry
            .register(Box::new(apply_lag_ms.clone()))
            .expect("registered once");
        registry
            .register(Box::new(events.clone()))
            .expect("registered once");
        registry
            .register(Box::new(apply_lag_max_ms.clone()))
            .expect("registered once");
        Self {
            registry,
            apply_lag_ms,
            apply_lag_max_ms,
            events,
        }
    }

    /// Registers a service's own metric.
    pub fn register(&self, metric: Box<dyn prometheus::core::Collector>) {
        self.registry
            .register(metric)
            .expect("metric names are unique per service");
    }

    /// Records that an order acknowledged at `acknowledged_at_ms` was applied now.
    pub fn observe_apply(&self, acknowledged_at_ms: i64) {
        let lag = (contracts::now_ms() - acknowledged_at_ms).max(0);
        self.apply_lag_ms.observe(lag as f64);
        // Only one task applies events per service, so read-then-set does not race.
        if lag > self.apply_lag_max_ms.get() {
            self.apply_lag_max_ms.set(lag);
        }
    }

    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("encoding to a Vec cannot fail");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}

/// Shared so that handlers and background tasks record into the same registry.
pub type SharedMetrics = Arc<Metrics>;
