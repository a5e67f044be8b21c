//! One Prometheus registry per service, so that five services in one process keep their
//! figures apart and each can be scraped on its own.

use std::sync::Arc;

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Buckets for lags and latencies, in seconds (Prometheus' base unit): fine below 10 ms where
/// strong mode and a quiet queue live, coarse up to a minute where a stopped service or a
/// cron tick puts them.
pub const LAG_BUCKETS_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5,
    1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Time from an order's acknowledgement to this service applying it.
    pub apply_lag: Histogram,
    /// The largest apply lag seen since start, exact (a histogram only bounds it).
    pub apply_lag_max: Gauge,
    /// Events applied, by feed and outcome (`applied`, `dead_lettered`, `replayed`).
    pub events: IntCounterVec,
    /// 1 while a feed's consumer is failing and retrying the batch in hand.
    pub consumer_stuck: IntGaugeVec,
    /// Failed attempts at a batch, by feed: each one is retried.
    pub consumer_retries: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry whose every sample says which service it is from.
    pub fn new(service: &str) -> Self {
        Self::with_labels([("service".to_owned(), service.to_owned())].into())
    }

    /// A registry whose samples also say which process of the service they are from, so the
    /// gateway can put several instances' expositions side by side without repeating a series.
    pub fn of_process(service: &str, process: &str) -> Self {
        Self::with_labels(
            [
                ("service".to_owned(), service.to_owned()),
                ("process".to_owned(), process.to_owned()),
            ]
            .into(),
        )
    }

    fn with_labels(labels: std::collections::HashMap<String, String>) -> Self {
        let registry = Registry::new_custom(Some("converge".into()), Some(labels))
            .expect("a constant prefix and labels are valid");
        let apply_lag = Histogram::with_opts(
            HistogramOpts::new(
                "apply_lag_seconds",
                "Seconds from an order's acknowledgement to this service applying it.",
            )
            .buckets(LAG_BUCKETS_SECONDS.to_vec()),
        )
        .expect("valid histogram");
        let apply_lag_max = Gauge::new(
            "apply_lag_max_seconds",
            "The largest apply lag seen since the service started, in seconds.",
        )
        .expect("valid gauge");
        let events = IntCounterVec::new(
            Opts::new("events_total", "Events consumed, by feed and outcome."),
            &["feed", "outcome"],
        )
        .expect("valid counter");
        let consumer_stuck = IntGaugeVec::new(
            Opts::new(
                "consumer_stuck",
                "1 while a feed's consumer is retrying a batch that failed.",
            ),
            &["feed"],
        )
        .expect("valid gauge");
        let consumer_retries = IntCounterVec::new(
            Opts::new(
                "consumer_retries_total",
                "Failed attempts at applying a batch of events, each retried.",
            ),
            &["feed"],
        )
        .expect("valid counter");
        let metrics = Self {
            registry,
            apply_lag,
            apply_lag_max,
            events,
            consumer_stuck,
            consumer_retries,
        };
        metrics.register(Box::new(metrics.apply_lag.clone()));
        metrics.register(Box::new(metrics.apply_lag_max.clone()));
        metrics.register(Box::new(metrics.events.clone()));
        metrics.register(Box::new(metrics.consumer_stuck.clone()));
        metrics.register(Box::new(metrics.consumer_retries.clone()));
        metrics
    }

    /// Registers a service's own metric.
    pub fn register(&self, metric: Box<dyn prometheus::core::Collector>) {
        self.registry
            .register(metric)
            .expect("metric names are unique per service");
    }

    /// Records that an order acknowledged at `acknowledged_at_ms` was applied now.
    pub fn observe_apply(&self, acknowledged_at_ms: i64) {
        let lag = (contracts::now_ms() - acknowledged_at_ms).max(0) as f64 / 1_000.0;
        self.apply_lag.observe(lag);
        // Only one task applies events per service, so read-then-set does not race.
        if lag > self.apply_lag_max.get() {
            self.apply_lag_max.set(lag);
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
