//! What a client sees while the load runs, after Bailis et al., "Probabilistically Bounded
//! Staleness for Practical Partial Quorums" (VLDB 2012).
//!
//! - **t-visibility**: the probability that a read issued `t` ms after an order's
//!   acknowledgement already reflects it. The probe samples at most
//!   [`ProbeConfig::samples_per_s`] acknowledgements a second, evenly spread, and for each
//!   reads every service's per-order endpoint at each delay of [`DELAYS_MS`] after the
//!   acknowledgement, until the service shows the order applied. Reads are monotonic, so
//!   once a service shows it, later delays count as visible without reading.
//! - **k-staleness**: how many acknowledged orders a read is behind. Every
//!   [`ProbeConfig::k_interval`] the probe reads the Stats totals of the probe accounts
//!   (accounts whose every order is confirmed) and records `k = acknowledged orders to them
//!   before the reads were sent − orders Stats counted for them`, never below zero.
//!
//! A read can only be issued when the runtime gets to it, and tokio's timer wakes a sleeper
//! on a millisecond tick, one to three milliseconds late: a read meant for delay `d` counts
//! for `d` if it starts within the slack `2 ms + d / 10` of it. One that starts later still
//! is credited to the first delay whose window covers when it did start, never to an
//! earlier one, so lateness can only make visibility look worse, not better; such reads are
//! counted in [`ProbeResult::late_reads`]. The curve's first points (0, 1, 2 ms) are
//! therefore good to about two milliseconds.
//!
//! Samples of orders that end cancelled (the order reads `cancelled` or its payment
//! `declined`) are left out of the curves, since Loyalty and Stats need never show them;
//! they are counted in [`ProbeResult::cancelled`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use crate::driver::Ack;
use crate::stats::visibility_curve_censored;
use crate::workload::Client;

/// The delays after an acknowledgement at which a sampled order is read, in milliseconds.
pub const DELAYS_MS: [u64; 13] = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

/// The services whose per-order reads the probe issues, in the order of
/// [`ProbeResult::curves`] (which ends with `"all"`: visible at every service).
pub const SERVICES: [&str; 4] = ["order", "payment", "loyalty", "stats"];

/// How long one probe read may take before it counts as an error.
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// How the probe samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeConfig {
    /// At most this many acknowledgements sampled per second, evenly spread (default 20;
    /// 0 samples none).
    pub samples_per_s: u32,
    /// The most per-order reads in flight at once (default 64).
    pub max_in_flight: usize,
    /// How often the probe accounts' totals are read for k-staleness (default 100 ms).
    pub k_interval: Duration,
    /// Ids of accounts every order to which is confirmed (well funded, never suspended);
    /// empty for no k-staleness.
    pub probe_accounts: Vec<String>,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            samples_per_s: 20,
            max_in_flight: 64,
            k_interval: Duration::from_millis(100),
            probe_accounts: Vec::new(),
        }
    }
}

/// What the probe saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProbeResult {
    /// [`DELAYS_MS`] as floats, for charts.
    pub delays_ms: Vec<f64>,
    /// Per service of [`SERVICES`], then `"all"`: the fraction of samples visible at each
    /// delay.
    pub curves: Vec<(String, Vec<f64>)>,
    /// Samples in the curves.
    pub samples: u64,
    /// Samples left out because their order ended cancelled.
    pub cancelled: u64,
    /// The raw k-staleness values, one per read of the probe accounts.
    pub k: Vec<u64>,
    /// Reads that failed (not 200 or 404, or no answer); the next delay reads again.
    pub read_errors: u64,
    /// Reads that started later than their delay's slack.
    pub late_reads: u64,
}

impl ProbeResult {
    /// The curve of one service (or `"all"`).
    pub fn curve(&self, service: &str) -> Option<&[f64]> {
        self.curves
            .iter()
            .find(|(name, _)| name == service)
            .map(|(_, curve)| curve.as_slice())
    }
}

/// One sampled order's outcome: per service, the first delay index it was visible at.
#[derive(Debug, Clone, Copy)]
struct SampleOutcome {
    first_visible: [Option<usize>; 4],
    /// Per service, the index the first read was credited to: a late first read that already
    /// shows the order leaves the earlier indexes unknown.
    first_read: [Option<usize>; 4],
    cancelled: bool,
}

struct Shared {
    client: Client,
    config: ProbeConfig,
    stopped: AtomicBool,
    /// Acknowledgements to probe accounts seen so far.
    probe_acks: AtomicU64,
    /// When the next sample may be taken, and where sampled acknowledgements go; `None` once
    /// stopped.
    sampler: Mutex<Sampler>,
    reads: Semaphore,
    read_errors: AtomicU64,
    late_reads: AtomicU64,
}

struct Sampler {
    next: Option<Instant>,
    interval: Duration,
    to_sample: Option<mpsc::UnboundedSender<Ack>>,
}

/// The running probe: feed it acknowledgements through an [`ProbeObserver`], then
/// [`Probe::finish`] it when the load has ended.
pub struct Probe {
    shared: Arc<Shared>,
    stop_k: watch::Sender<bool>,
    sampling: JoinHandle<Vec<SampleOutcome>>,
    k_polling: JoinHandle<Vec<u64>>,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// A cheap handle that takes acknowledgements for the probe; clone it into the driver's
/// acknowledgement callback.
#[derive(Clone)]
pub struct ProbeObserver {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ProbeObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeObserver").finish_non_exhaustive()
    }
}

impl ProbeObserver {
    /// Takes one acknowledgement: counts it if it is for a probe account, and samples it if
    /// a sample is due. Cheap and never blocks (a short lock, no I/O); does nothing once the
    /// probe is stopping.
    pub fn observe(&self, ack: &Ack) {
        let shared = &self.shared;
        if shared.stopped.load(Ordering::Acquire) {
            return;
        }
        if shared.config.probe_accounts.contains(&ack.account_id) {
            shared.probe_acks.fetch_add(1, Ordering::AcqRel);
        }
        let mut sampler = shared
            .sampler
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(to_sample) = &sampler.to_sample else {
            return;
        };
        let at = ack.acknowledged_at;
        let due = match sampler.next {
            None => true,
            Some(next) => at >= next,
        };
        if !due {
            return;
        }
        if to_sample.send(ack.clone()).is_err() {
            return;
        }
        // Slots `interval` apart; after a quiet spell, start again from this sample.
        let interval = sampler.interval;
        sampler.next = Some(match sampler.next {
            Some(next) if next + interval > at => next + interval,
            _ => at + interval,
        });
    }
}

impl Probe {
    /// Starts the probe: k-staleness reads begin at once; t-visibility samples are taken
    /// from the acknowledgements fed to [`Probe::observer`]. Must be called inside a tokio
    /// runtime.
    pub fn start(client: Client, config: ProbeConfig) -> Self {
        let (to_sample, sampled) = mpsc::unbounded_channel();
        let interval = if config.samples_per_s == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs(1) / config.samples_per_s
        };
        let shared = Arc::new(Shared {
            client,
            reads: Semaphore::new(config.max_in_flight.max(1)),
            stopped: AtomicBool::new(false),
            probe_acks: AtomicU64::new(0),
            sampler: Mutex::new(Sampler {
                next: None,
                interval,
                to_sample: (config.samples_per_s > 0).then_some(to_sample),
            }),
            read_errors: AtomicU64::new(0),
            late_reads: AtomicU64::new(0),
            config,
        });
        let (stop_k, stopped_k) = watch::channel(false);
        let sampling = tokio::spawn(run_samples(shared.clone(), sampled));
        let k_polling = tokio::spawn(poll_k(shared.clone(), stopped_k));
        Self {
            shared,
            stop_k,
            sampling,
            k_polling,
        }
    }

    pub fn observer(&self) -> ProbeObserver {
        ProbeObserver {
            shared: self.shared.clone(),
        }
    }

    /// Stops taking samples and k readings, at once; the samples already taken go on until
    /// [`Probe::finish`]. Call it when the load ends: k read while the system catches up
    /// after the load would only add zeros that no client under load sees.
    pub fn stop(&self) {
        self.shared.stopped.store(true, Ordering::Release);
        // Dropping the sender ends the sampling loop once every sample is done.
        drop(
            self.shared
                .sampler
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .to_sample
                .take(),
        );
        let _ = self.stop_k.send(true);
    }

    /// Stops the probe (see [`Probe::stop`]) if it was not already, finishes the samples
    /// already taken (at most the last delay, 5 s, after their acknowledgement) and returns
    /// what was seen.
    ///
    /// # Panics
    ///
    /// If a probe task panicked.
    pub async fn finish(self) -> ProbeResult {
        self.stop();
        let outcomes = join(self.sampling).await;
        let k = join(self.k_polling).await;
        summarize(
            &outcomes,
            k,
            self.shared.read_errors.load(Ordering::Relaxed),
            self.shared.late_reads.load(Ordering::Relaxed),
        )
    }
}

async fn join<T>(handle: JoinHandle<T>) -> T {
    match handle.await {
        Ok(value) => value,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => panic!("a probe task was cancelled: {error}"),
    }
}

fn summarize(
    outcomes: &[SampleOutcome],
    k: Vec<u64>,
    read_errors: u64,
    late_reads: u64,
) -> ProbeResult {
    let kept: Vec<&SampleOutcome> = outcomes.iter().filter(|o| !o.cancelled).collect();
    // Per sample and service: (first visible index, first read index); see
    // `stats::visibility_at` for why a late first read leaves earlier delays unknown.
    let pairs = |o: &SampleOutcome, s: usize| (o.first_visible[s], o.first_read[s]);
    let mut curves: Vec<(String, Vec<f64>)> = SERVICES
        .iter()
        .enumerate()
        .map(|(s, name)| {
            let samples: Vec<Vec<_>> = kept.iter().map(|o| vec![pairs(o, s)]).collect();
            (
                (*name).to_owned(),
                visibility_curve_censored(&samples, DELAYS_MS.len()),
            )
        })
        .collect();
    let everywhere: Vec<Vec<_>> = kept
        .iter()
        .map(|o| (0..SERVICES.len()).map(|s| pairs(o, s)).collect())
        .collect();
    curves.push((
        "all".to_owned(),
        visibility_curve_censored(&everywhere, DELAYS_MS.len()),
    ));
    ProbeResult {
        delays_ms: DELAYS_MS.iter().map(|&d| d as f64).collect(),
        curves,
        samples: kept.len() as u64,
        cancelled: (outcomes.len() - kept.len()) as u64,
        k,
        read_errors,
        late_reads,
    }
}

/// Runs every sampled acknowledgement to completion; ends when the sender is dropped and
/// every sample is done.
async fn run_samples(
    shared: Arc<Shared>,
    mut sampled: mpsc::UnboundedReceiver<Ack>,
) -> Vec<SampleOutcome> {
    let mut running = tokio::task::JoinSet::new();
    let mut outcomes = Vec::new();
    let mut open = true;
    while open || !running.is_empty() {
        tokio::select! {
            ack = sampled.recv(), if open => match ack {
                Some(ack) => {
                    running.spawn(sample(shared.clone(), ack));
                }
                None => open = false,
            },
            Some(done) = running.join_next(), if !running.is_empty() => match done {
                Ok(outcome) => outcomes.push(outcome),
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                Err(_) => {}
            },
        }
    }
    outcomes
}

/// The slack a read meant for delay index `d` may start late by and still count for `d`.
fn slack(d: usize) -> Duration {
    Duration::from_millis(2) + Duration::from_millis(DELAYS_MS[d]) / 10
}

/// The first delay index `≥ from` whose window (delay plus slack) covers a read that started
/// `offset` after the acknowledgement; `None` past the last.
fn credited_index(from: usize, offset: Duration) -> Option<usize> {
    (from..DELAYS_MS.len()).find(|&d| Duration::from_millis(DELAYS_MS[d]) + slack(d) >= offset)
}

/// Reads one sampled order at each delay until every service shows it.
async fn sample(shared: Arc<Shared>, ack: Ack) -> SampleOutcome {
    let mut outcome = SampleOutcome {
        first_visible: [None; 4],
        first_read: [None; 4],
        cancelled: false,
    };
    let mut d = 0;
    while d < DELAYS_MS.len() && outcome.first_visible.iter().any(Option::is_none) {
        let due = ack.acknowledged_at + Duration::from_millis(DELAYS_MS[d]);
        // Not even a zero sleep when already due: the timer would add up to a millisecond.
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        let pending: Vec<usize> = (0..SERVICES.len())
            .filter(|&s| outcome.first_visible[s].is_none())
            .collect();
        let reads = pending.iter().map(|&s| read(&shared, s, &ack));
        let results = futures::future::join_all(reads).await;
        for (&s, result) in pending.iter().zip(results) {
            let Some(read) = result else {
                continue;
            };
            let credited = credited_index(d, read.offset);
            if credited != Some(d) {
                shared.late_reads.fetch_add(1, Ordering::Relaxed);
            }
            outcome.cancelled |= read.cancelled;
            if outcome.first_read[s].is_none() {
                outcome.first_read[s] = credited;
            }
            if read.applied {
                // `None` when it started after the last window: "never" in the curves, and
                // the loop ends below since every later window has passed too.
                outcome.first_visible[s] = credited;
            }
        }
        if outcome.cancelled {
            // Left out of the curves: nothing more to learn.
            break;
        }
        // Skip the delays whose window has already passed: a read now would be credited to
        // a later one anyway.
        let now = ack.acknowledged_at.elapsed();
        d = credited_index(d + 1, now).unwrap_or(DELAYS_MS.len());
    }
    outcome
}

/// One read's answer.
struct Read {
    applied: bool,
    cancelled: bool,
    /// When the read was sent, after the acknowledgement.
    offset: Duration,
}

#[derive(Deserialize)]
struct StatusOnly {
    status: String,
}

/// Reads whether service `s` has applied the order; `None` when the read failed.
async fn read(shared: &Shared, s: usize, ack: &Ack) -> Option<Read> {
    let base = shared.client.base();
    let url = match SERVICES[s] {
        "order" => format!("{base}/orders/{}", ack.order_id),
        "payment" => format!("{base}/payments/{}", ack.order_id),
        "loyalty" => format!("{base}/loyalty/{}/ledger/{}", ack.account_id, ack.order_id),
        _ => format!("{base}/stats/orders/{}", ack.order_id),
    };
    let _permit = shared.reads.acquire().await.ok()?;
    let offset = ack.acknowledged_at.elapsed();
    let answer = async {
        let response = shared
            .client
            .http()
            .get(&url)
            .timeout(READ_TIMEOUT)
            .send()
            .await
            .ok()?;
        let status = response.status();
        let body = response.bytes().await.ok()?;
        Some((status, body))
    }
    .await;
    let read = match answer {
        Some((StatusCode::NOT_FOUND, _)) if SERVICES[s] != "order" => Some(Read {
            applied: false,
            cancelled: false,
            offset,
        }),
        Some((StatusCode::OK, body)) => {
            let status = serde_json::from_slice::<StatusOnly>(&body)
                .ok()
                .map(|b| b.status);
            match (SERVICES[s], status.as_deref()) {
                ("order", Some(status)) => Some(Read {
                    applied: status != "accepted",
                    cancelled: status == "cancelled",
                    offset,
                }),
                ("order", None) => None,
                ("payment", status) => Some(Read {
                    applied: true,
                    cancelled: status == Some("declined"),
                    offset,
                }),
                _ => Some(Read {
                    applied: true,
                    cancelled: false,
                    offset,
                }),
            }
        }
        _ => None,
    };
    if read.is_none() {
        shared.read_errors.fetch_add(1, Ordering::Relaxed);
    }
    read
}

/// Reads the probe accounts' Stats totals every interval until told to stop.
async fn poll_k(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) -> Vec<u64> {
    let mut ks = Vec::new();
    if shared.config.probe_accounts.is_empty() {
        return ks;
    }
    let mut ticks = tokio::time::interval(shared.config.k_interval.max(Duration::from_millis(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|stopped| *stopped) => return ks,
        }
        if *stop.borrow() {
            return ks;
        }
        let acked = shared.probe_acks.load(Ordering::Acquire);
        let reads = shared
            .config
            .probe_accounts
            .iter()
            .map(|id| count_orders(&shared.client, id));
        let counts = futures::future::join_all(reads).await;
        match counts.into_iter().sum::<Option<u64>>() {
            Some(counted) => ks.push(acked.saturating_sub(counted)),
            None => {
                shared.read_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[derive(Deserialize)]
struct OrdersOnly {
    orders: i64,
}

/// The orders Stats counts for an account; `None` when the read failed.
async fn count_orders(client: &Client, account_id: &str) -> Option<u64> {
    let response = client
        .http()
        .get(format!("{}/stats/accounts/{account_id}", client.base()))
        .timeout(READ_TIMEOUT)
        .send()
        .await
        .ok()?;
    if response.status() != StatusCode::OK {
        return None;
    }
    let totals: OrdersOnly = response.json().await.ok()?;
    Some(totals.orders.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_on_time_is_credited_to_its_delay() {
        assert_eq!(credited_index(0, Duration::from_micros(300)), Some(0));
        assert_eq!(credited_index(1, Duration::from_micros(2_900)), Some(1));
        // 100 ms: slack 2 + 10 ms.
        assert_eq!(credited_index(7, Duration::from_millis(112)), Some(7));
        assert_eq!(credited_index(7, Duration::from_micros(112_001)), Some(8));
    }

    #[test]
    fn a_late_read_is_credited_to_a_later_delay_never_an_earlier_one() {
        // Meant for 0 ms, started at 4 ms: the 2 ms window (2 + 2.2) covers it.
        assert_eq!(credited_index(0, Duration::from_millis(4)), Some(2));
        // Meant for 10 ms, started at 40 ms: 20 ms (+4) does not cover it, 50 ms does.
        assert_eq!(credited_index(4, Duration::from_millis(40)), Some(6));
        // From index 6 on, even an early start stays at 6.
        assert_eq!(credited_index(6, Duration::ZERO), Some(6));
        // After the last window: never.
        assert_eq!(credited_index(12, Duration::from_secs(6)), None);
    }

    #[test]
    fn cancelled_samples_are_left_out_and_all_needs_every_service() {
        let outcomes = [
            SampleOutcome {
                first_visible: [Some(0), Some(1), Some(3), Some(5)],
                first_read: [Some(0); 4],
                cancelled: false,
            },
            SampleOutcome {
                first_visible: [Some(0), Some(0), None, Some(2)],
                first_read: [Some(0); 4],
                cancelled: false,
            },
            SampleOutcome {
                first_visible: [Some(0), Some(0), None, None],
                first_read: [Some(0); 4],
                cancelled: true,
            },
        ];
        let result = summarize(&outcomes, vec![1, 2], 3, 4);
        assert_eq!(result.samples, 2);
        assert_eq!(result.cancelled, 1);
        assert_eq!(result.k, vec![1, 2]);
        assert_eq!((result.read_errors, result.late_reads), (3, 4));
        assert_eq!(result.delays_ms.len(), DELAYS_MS.len());
        let names: Vec<&str> = result.curves.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["order", "payment", "loyalty", "stats", "all"]);
        assert_eq!(result.curve("order").unwrap()[0], 1.0);
        assert_eq!(&result.curve("payment").unwrap()[..2], &[0.5, 1.0]);
        assert_eq!(result.curve("loyalty").unwrap()[12], 0.5);
        let all = result.curve("all").unwrap();
        assert_eq!(all[4], 0.0);
        assert_eq!(all[5], 0.5);
        assert_eq!(all[12], 0.5);
    }
}
