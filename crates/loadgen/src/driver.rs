//! The load driver: places orders at a constant rate (open loop) or as fast as a fixed number
//! of connections allows (closed loop), and records how long each took to be acknowledged.
//!
//! # Coordinated omission
//!
//! A closed-loop generator sends the next request only when the previous one has been
//! answered, so while the system stalls it stops sending, and the requests a real user would
//! have sent meanwhile are never measured: the stall shows up as one slow request instead of
//! the many it delayed. In the open loop here, request `i` is *intended* at
//! `start + i / rate` whatever happened before, and its latency is counted from that
//! intended time. At most [`LoadConfig::connections`] requests are in flight: one task per
//! connection takes the next index from a shared counter and sleeps until its intended time;
//! when every connection is busy the next request waits, and the wait is charged to it.
//!
//! One refinement: a connection that was idle and slept until the intended time is woken by
//! tokio's millisecond timer, up to about a millisecond late. That lateness is the
//! generator's, not the system's, and at the sub-millisecond latencies of a quiet localhost
//! system it would double the median; so when the connection was idle, up to
//! [`TIMER_SLACK`] of wake-up lateness is not charged. A connection that was busy when its
//! request was due is always charged from the intended time.
//!
//! Memory stays bounded: latencies go into HDR histograms (microseconds), the per-second
//! timeline keeps one histogram for the second in progress, and every acknowledgement is
//! handed to a caller's callback rather than stored.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use contracts::api::PlaceOrderRequest;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::workload::Client;

/// The wake-up lateness of an idle connection that is not charged to the request; see the
/// [module documentation](self).
pub const TIMER_SLACK: Duration = Duration::from_millis(2);

/// How long one order request may take before it counts as failed, by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest latency the histograms hold, in microseconds (an hour); larger values are
/// recorded as this.
pub const HISTOGRAM_MAX_US: u64 = 3_600_000_000;

/// What load to offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadConfig {
    /// Orders per second, arriving at constant intervals (open loop); `None` for as fast as
    /// `connections` allow (closed loop, `--rate max`).
    pub rate: Option<u64>,
    /// The most requests in flight at once (at least one is used).
    pub connections: usize,
    /// How long requests are sent for. An open-loop run sends exactly
    /// [`LoadConfig::planned`] requests and then waits for their answers.
    pub duration: Duration,
}

impl LoadConfig {
    /// The number of requests an open-loop run sends: `rate × duration`, rounded to the
    /// nearest whole request. `None` for a closed loop.
    pub fn planned(&self) -> Option<u64> {
        self.rate.map(|rate| {
            let nanos = u128::from(rate) * self.duration.as_nanos();
            ((nanos + 500_000_000) / 1_000_000_000).min(u128::from(u64::MAX)) as u64
        })
    }

    /// When request `i` of an open-loop run at `rate` per second is due, after the start.
    pub fn intended_offset(rate: u64, i: u64) -> Duration {
        let nanos = u128::from(i) * 1_000_000_000 / u128::from(rate.max(1));
        Duration::from_nanos(nanos.min(u128::from(u64::MAX)) as u64)
    }
}

/// One acknowledged order, as handed to the [`Driver::on_ack`] callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub order_id: String,
    pub account_id: String,
    pub total_cents: i64,
    pub points: i64,
    /// When the driver had the whole answer.
    pub acknowledged_at: Instant,
    /// The same moment, in milliseconds since the Unix epoch.
    pub at_unix_ms: i64,
}

/// One whole second of the run, counted from its start, by when the answers arrived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Second {
    pub acknowledged: u64,
    pub refused: u64,
    pub failed: u64,
    /// The 99th percentile latency of the acknowledgements of this second, in
    /// microseconds; 0 when there were none.
    pub p99_us: u64,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Latency of every acknowledged (2xx) order, in microseconds: the acknowledgement
    /// latency. Open loop: from the intended send time.
    pub histogram: Histogram<u64>,
    /// Latency of every request whatever its answer (acknowledged, refused, failed: until it
    /// failed), in microseconds.
    pub responses: Histogram<u64>,
    /// Requests sent.
    pub sent: u64,
    /// Answered 2xx with a readable order.
    pub acknowledged: u64,
    /// Answered 4xx.
    pub refused: u64,
    /// Answered 5xx, not answered (transport error, timeout), or a 2xx without a readable
    /// order.
    pub failed: u64,
    /// From the start until the last answer.
    pub elapsed: Duration,
    /// Per whole second since the start; covers the whole of `elapsed`.
    pub timeline: Vec<Second>,
    /// Open loop: the longest any request was sent after its intended time (how far the
    /// driver fell behind the offered rate because every connection was busy). Zero for a
    /// closed loop.
    pub max_send_lag: Duration,
}

impl LoadResult {
    /// Acknowledgements per second over the run.
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.acknowledged as f64 / secs
        } else {
            0.0
        }
    }
}

type AckFn = Arc<dyn Fn(&Ack) + Send + Sync>;

/// Drives a [`LoadConfig`] through a [`Client`].
///
/// ```no_run
/// # async fn example() {
/// use std::sync::Arc;
/// use std::sync::atomic::AtomicU64;
/// use std::time::Duration;
/// use loadgen::driver::{Driver, LoadConfig};
/// use loadgen::workload::Client;
///
/// let done = Arc::new(AtomicU64::new(0));
/// let config = LoadConfig { rate: Some(500), connections: 64, duration: Duration::from_secs(10) };
/// let result = Driver::new(Client::new("http://127.0.0.1:8080"), config)
///     .on_ack(|ack| println!("{} acknowledged", ack.order_id))
///     .progress(done.clone())
///     .run(|i| {
///         let request = contracts::api::PlaceOrderRequest {
///             account_id: "acc_...".into(),
///             items: vec![],
///         };
///         (request, format!("key-{i}"))
///     })
///     .await;
/// println!("p99 {} us", result.histogram.value_at_quantile(0.99));
/// # }
/// ```
#[derive(Clone)]
pub struct Driver {
    client: Client,
    config: LoadConfig,
    on_ack: Option<AckFn>,
    progress: Option<Arc<AtomicU64>>,
    request_timeout: Duration,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("base", &self.client.base())
            .field("config", &self.config)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl Driver {
    pub fn new(client: Client, config: LoadConfig) -> Self {
        Self {
            client,
            config,
            on_ack: None,
            progress: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// Called with every acknowledgement, on the connection's task, right after it arrived.
    /// Keep it cheap (count, sample, or `try_send` into a bounded channel): time spent here
    /// delays that connection's next request.
    pub fn on_ack(mut self, callback: impl Fn(&Ack) + Send + Sync + 'static) -> Self {
        self.on_ack = Some(Arc::new(callback));
        self
    }

    /// Incremented once per answered (or failed) request, for a progress bar.
    pub fn progress(mut self, done: Arc<AtomicU64>) -> Self {
        self.progress = Some(done);
        self
    }

    /// How long one request may take before it counts as failed
    /// ([`DEFAULT_REQUEST_TIMEOUT`] unless set).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    pub fn config(&self) -> &LoadConfig {
        &self.config
    }

    /// Runs the load. `requests(i)` gives request `i` and its idempotency key; it is called
    /// once per index, from several tasks, before the request is due.
    ///
    /// # Panics
    ///
    /// If `requests` or the acknowledgement callback panics.
    pub async fn run<R>(&self, requests: R) -> LoadResult
    where
        R: Fn(u64) -> (PlaceOrderRequest, String) + Send + Sync + 'static,
    {
        let connections = self.config.connections.max(1);
        let start = Instant::now();
        let shared = Arc::new(Shared {
            start,
            config: self.config.clone(),
            planned: self.config.planned(),
            next: AtomicU64::new(0),
            max_send_lag_us: AtomicU64::new(0),
            recorder: Mutex::new(Recorder::new(start)),
            client: self.client.clone(),
            requests: Box::new(requests),
            on_ack: self.on_ack.clone(),
            progress: self.progress.clone(),
            request_timeout: self.request_timeout,
        });
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..connections {
            workers.spawn(worker(shared.clone()));
        }
        while let Some(joined) = workers.join_next().await {
            match joined {
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                _ => {}
            }
        }
        let elapsed = start.elapsed();
        let max_send_lag = Duration::from_micros(shared.max_send_lag_us.load(Ordering::Relaxed));
        let recorder = std::mem::replace(
            &mut *shared
                .recorder
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
            Recorder::new(start),
        );
        recorder.finish(elapsed, max_send_lag)
    }
}

type RequestFn = Box<dyn Fn(u64) -> (PlaceOrderRequest, String) + Send + Sync>;

struct Shared {
    start: Instant,
    config: LoadConfig,
    planned: Option<u64>,
    next: AtomicU64,
    max_send_lag_us: AtomicU64,
    recorder: Mutex<Recorder>,
    client: Client,
    requests: RequestFn,
    on_ack: Option<AckFn>,
    progress: Option<Arc<AtomicU64>>,
    request_timeout: Duration,
}

/// The fields of an acknowledged order the driver reads (the body has more).
#[derive(Deserialize)]
struct AckBody {
    id: String,
    account_id: String,
    total_cents: i64,
    points: i64,
}

enum Outcome {
    Acknowledged(AckBody),
    Refused,
    Failed,
}

async fn worker(shared: Arc<Shared>) {
    let end = shared.start + shared.config.duration;
    loop {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        let (request, key) = match (shared.planned, shared.config.rate) {
            (Some(planned), Some(_)) if i >= planned => return,
            (None, _) if Instant::now() >= end => return,
            _ => (shared.requests)(i),
        };
        let from = match shared.config.rate {
            Some(rate) => {
                let intended = shared.start + LoadConfig::intended_offset(rate, i);
                let now = Instant::now();
                if intended > now {
                    tokio::time::sleep_until(intended.into()).await;
                    Instant::now().min(intended + TIMER_SLACK)
                } else {
                    let lag = (now - intended).as_micros().min(u128::from(u64::MAX)) as u64;
                    shared.max_send_lag_us.fetch_max(lag, Ordering::Relaxed);
                    intended
                }
            }
            None => Instant::now(),
        };
        let outcome = place(&shared, &request, &key).await;
        let done = Instant::now();
        let latency_us = (done - from).as_micros().min(u128::from(u64::MAX)) as u64;
        let ack = match &outcome {
            Outcome::Acknowledged(body) => Some(Ack {
                order_id: body.id.clone(),
                account_id: body.account_id.clone(),
                total_cents: body.total_cents,
                points: body.points,
                acknowledged_at: done,
                at_unix_ms: contracts::now_ms(),
            }),
            _ => None,
        };
        shared
            .recorder
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(&outcome, latency_us);
        if let (Some(ack), Some(on_ack)) = (&ack, &shared.on_ack) {
            on_ack(ack);
        }
        if let Some(progress) = &shared.progress {
            progress.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn place(shared: &Shared, request: &PlaceOrderRequest, key: &str) -> Outcome {
    let sent = shared
        .client
        .http()
        .post(format!("{}/orders", shared.client.base()))
        .header("idempotency-key", key)
        .json(request)
        .timeout(shared.request_timeout)
        .send()
        .await;
    let Ok(response) = sent else {
        return Outcome::Failed;
    };
    let status = response.status();
    // Read the whole body in every case, so that the connection can be used again.
    let Ok(body) = response.bytes().await else {
        return Outcome::Failed;
    };
    if status.is_success() {
        match serde_json::from_slice::<AckBody>(&body) {
            Ok(order) => Outcome::Acknowledged(order),
            Err(_) => Outcome::Failed,
        }
    } else if status.is_client_error() {
        Outcome::Refused
    } else {
        Outcome::Failed
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3).expect("valid histogram bounds")
}

/// Everything the connections record, behind one lock.
struct Recorder {
    start: Instant,
    acknowledged_us: Histogram<u64>,
    responses_us: Histogram<u64>,
    sent: u64,
    acknowledged: u64,
    refused: u64,
    failed: u64,
    /// The second in progress and what it has so far.
    second: u64,
    current: Second,
    current_us: Histogram<u64>,
    timeline: Vec<Second>,
}

impl Recorder {
    fn new(start: Instant) -> Self {
        Self {
            start,
            acknowledged_us: new_histogram(),
            responses_us: new_histogram(),
            sent: 0,
            acknowledged: 0,
            refused: 0,
            failed: 0,
            second: 0,
            current: Second::default(),
            current_us: new_histogram(),
            timeline: Vec::new(),
        }
    }

    /// Closes the seconds before `second`.
    fn advance_to(&mut self, second: u64) {
        while self.second < second {
            let mut closed = std::mem::take(&mut self.current);
            if !self.current_us.is_empty() {
                closed.p99_us = self.current_us.value_at_quantile(0.99);
                self.current_us.reset();
            }
            self.timeline.push(closed);
            self.second += 1;
        }
    }

    fn record(&mut self, outcome: &Outcome, latency_us: u64) {
        // Taken under the lock, so seconds only ever move forward.
        self.advance_to(self.start.elapsed().as_secs());
        self.sent += 1;
        self.responses_us.saturating_record(latency_us.max(1));
        match outcome {
            Outcome::Acknowledged(_) => {
                self.acknowledged += 1;
                self.current.acknowledged += 1;
                self.acknowledged_us.saturating_record(latency_us.max(1));
                self.current_us.saturating_record(latency_us.max(1));
            }
            Outcome::Refused => {
                self.refused += 1;
                self.current.refused += 1;
            }
            Outcome::Failed => {
                self.failed += 1;
                self.current.failed += 1;
            }
        }
    }

    fn finish(mut self, elapsed: Duration, max_send_lag: Duration) -> LoadResult {
        // Every second that `elapsed` touches, the last one partial.
        let seconds = elapsed.as_secs() + u64::from(elapsed.subsec_nanos() > 0);
        self.advance_to(seconds.max(self.second + 1));
        LoadResult {
            histogram: self.acknowledged_us,
            responses: self.responses_us,
            sent: self.sent,
            acknowledged: self.acknowledged,
            refused: self.refused,
            failed: self.failed,
            elapsed,
            timeline: self.timeline,
            max_send_lag,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planned_is_rate_times_duration_rounded() {
        let config = |rate, ms| LoadConfig {
            rate,
            connections: 1,
            duration: Duration::from_millis(ms),
        };
        assert_eq!(config(Some(200), 1_000).planned(), Some(200));
        assert_eq!(config(Some(3), 500).planned(), Some(2)); // 1.5 rounds up
        assert_eq!(config(Some(3), 400).planned(), Some(1)); // 1.2 rounds down
        assert_eq!(config(Some(0), 1_000).planned(), Some(0));
        assert_eq!(config(None, 1_000).planned(), None);
    }

    #[test]
    fn arrivals_are_evenly_spaced() {
        assert_eq!(LoadConfig::intended_offset(200, 0), Duration::ZERO);
        assert_eq!(
            LoadConfig::intended_offset(200, 1),
            Duration::from_millis(5)
        );
        assert_eq!(
            LoadConfig::intended_offset(3, 2),
            Duration::from_nanos(666_666_666)
        );
    }

    #[test]
    fn the_timeline_closes_seconds_in_order_and_fills_gaps() {
        let start = Instant::now();
        let mut recorder = Recorder::new(start);
        let ack = || {
            Outcome::Acknowledged(AckBody {
                id: "o".into(),
                account_id: "a".into(),
                total_cents: 1,
                points: 0,
            })
        };
        recorder.record(&ack(), 1_000);
        recorder.record(&ack(), 3_000);
        recorder.record(&Outcome::Refused, 10);
        recorder.advance_to(2);
        recorder.current.failed += 1; // as if recorded in second 2
        let result = recorder.finish(Duration::from_millis(3_500), Duration::ZERO);
        assert_eq!(result.timeline.len(), 4);
        assert_eq!(result.timeline[0].acknowledged, 2);
        assert_eq!(result.timeline[0].refused, 1);
        let p99 = result.timeline[0].p99_us;
        assert!((2_990..=3_010).contains(&p99), "{p99}");
        assert_eq!(result.timeline[1], Second::default());
        assert_eq!(result.timeline[2].failed, 1);
        assert_eq!(result.sent, 3);
        assert_eq!(result.histogram.len(), 2);
        assert_eq!(result.responses.len(), 3);
    }
}
