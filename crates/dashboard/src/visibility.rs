//! The live t-visibility curve: of the dashboard's recent orders, the share already visible
//! at each service `t` ms after the acknowledgement, for `t` in `loadgen::probe::DELAYS_MS`
//! (0, 1, 2, 5, 10, … 5000).
//!
//! It reuses the bench's probe (`loadgen::probe`) rather than a copy of it: the probe's
//! timing rules (a read counts for its delay only if it started within that delay's slack,
//! late reads are credited to a later delay, never an earlier one) are the subtle part. The
//! probe answers once, when finished, so the dashboard runs one probe per [`CYCLE`]: the
//! acknowledgements of each cycle go to that cycle's probe, which is then stopped and
//! finished in the background (its samples end at most 5 s later, the last delay), and its
//! result joins the window. The curve shown is the window's results merged, each weighted by
//! its samples.
//!
//! Merging by weight is exact where every sample says something at a delay; where a late
//! first read left a sample unknown at the earliest delays (see
//! `loadgen::stats::visibility_at`), each cycle's fraction is over its own known samples,
//! and the weight is the cycle's samples: close, and only at those earliest delays.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use loadgen::driver::Ack;
use loadgen::probe::{DELAYS_MS, Probe, ProbeConfig, ProbeObserver, ProbeResult, SERVICES};
use loadgen::workload::Client;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// How long one probe takes acknowledgements before the next takes over: a new point on the
/// page every second, as the snapshots come.
pub const CYCLE: Duration = Duration::from_secs(1);

/// Results older than this leave the curve: "recent orders" means the last half minute, so
/// that raising a delay shows within a few seconds and takes over the curve within 30.
pub const WINDOW: Duration = Duration::from_secs(30);

/// Acknowledgements sampled per second, as the bench's probe does by default: a curve worth
/// reading within seconds, for at most 20 × 4 services × 13 delays reads a second.
pub const SAMPLES_PER_S: u32 = 20;

/// Per-order reads in flight at most, as the bench's probe.
const READS_IN_FLIGHT_MAX: usize = 64;

/// Results kept at most: [`WINDOW`] / [`CYCLE`] and some room for cycles finishing late.
const RESULTS_MAX: usize = 64;

/// The curve as the page draws it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VisibilityView {
    pub delays_ms: Vec<u64>,
    /// Per service of `loadgen::probe::SERVICES`, then `all` (visible everywhere): the
    /// fraction visible at each delay.
    pub curves: Vec<Curve>,
    /// Samples in the curves.
    pub samples: u64,
    /// Samples left out because their order was cancelled (Loyalty and Stats need never
    /// show those).
    pub cancelled: u64,
    pub window_s: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Curve {
    pub service: String,
    pub visible: Vec<f64>,
}

/// The probe of the current cycle and the results of the recent ones.
pub struct Visibility {
    client: Client,
    stop: CancellationToken,
    current: Mutex<Option<Cycle>>,
    /// The hot path's handle: every acknowledgement goes through this lock, kept apart from
    /// the cycle's so that rotating never holds an order's task up for long.
    observer: Mutex<Option<ProbeObserver>>,
    results: Arc<Mutex<VecDeque<(Instant, ProbeResult)>>>,
}

impl std::fmt::Debug for Visibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Visibility").finish_non_exhaustive()
    }
}

struct Cycle {
    probe: Probe,
    started: Instant,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Visibility {
    pub fn new(client: Client, stop: CancellationToken) -> Self {
        Self {
            client,
            stop,
            current: Mutex::new(None),
            observer: Mutex::new(None),
            results: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    /// Takes one acknowledgement of the dashboard's load. Cheap; nothing happens unless a
    /// cycle is running (see [`Visibility::rotate_if_due`]).
    pub fn observe(&self, ack: &Ack) {
        if let Some(observer) = lock(&self.observer).as_ref() {
            observer.observe(ack);
        }
    }

    /// Ends the current cycle if it is [`CYCLE`] old (or `load_active` is false) and starts
    /// the next if `load_active`. Called on every snapshot; must run inside a tokio runtime.
    pub fn rotate_if_due(&self, now: Instant, load_active: bool) {
        let mut current = lock(&self.current);
        let due = match &*current {
            Some(cycle) => !load_active || now.saturating_duration_since(cycle.started) >= CYCLE,
            None => load_active,
        };
        if !due || self.stop.is_cancelled() {
            return;
        }
        let next = load_active.then(|| {
            let probe = Probe::start(
                self.client.clone(),
                ProbeConfig {
                    samples_per_s: SAMPLES_PER_S,
                    max_in_flight: READS_IN_FLIGHT_MAX,
                    // No k-staleness here: it needs every acknowledgement to the probe
                    // accounts counted from the start, which cycles do not keep.
                    probe_accounts: Vec::new(),
                    ..ProbeConfig::default()
                },
            );
            Cycle {
                probe,
                started: now,
            }
        });
        *lock(&self.observer) = next.as_ref().map(|cycle| cycle.probe.observer());
        if let Some(ended) = std::mem::replace(&mut *current, next) {
            ended.probe.stop();
            let results = self.results.clone();
            let stop = self.stop.clone();
            tokio::spawn(async move {
                let result = tokio::select! {
                    result = ended.probe.finish() => result,
                    // Dropping the probe leaves its read tasks to end by themselves.
                    () = stop.cancelled() => return,
                };
                if result.samples + result.cancelled == 0 {
                    return;
                }
                let mut results = lock(&results);
                if results.len() == RESULTS_MAX {
                    results.pop_front();
                }
                results.push_back((Instant::now(), result));
            });
        }
    }

    /// The curve of the results of the last [`WINDOW`].
    pub fn view(&self, now: Instant) -> VisibilityView {
        let mut results = lock(&self.results);
        while results
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > WINDOW)
        {
            results.pop_front();
        }
        merge(results.iter().map(|(_, result)| result))
    }
}

/// The curves of several probe results, each weighted by its samples (see the module docs).
pub fn merge<'a>(results: impl IntoIterator<Item = &'a ProbeResult>) -> VisibilityView {
    let names: Vec<&str> = SERVICES.iter().copied().chain(["all"]).collect();
    let mut sums = vec![vec![0.0; DELAYS_MS.len()]; names.len()];
    let (mut samples, mut cancelled) = (0u64, 0u64);
    for result in results {
        samples += result.samples;
        cancelled += result.cancelled;
        for (name, sum) in names.iter().zip(&mut sums) {
            if let Some(curve) = result.curve(name) {
                for (s, v) in sum.iter_mut().zip(curve) {
                    *s += v * result.samples as f64;
                }
            }
        }
    }
    VisibilityView {
        delays_ms: DELAYS_MS.to_vec(),
        curves: names
            .iter()
            .zip(sums)
            .map(|(name, sum)| Curve {
                service: (*name).to_owned(),
                visible: sum
                    .into_iter()
                    .map(|s| if samples > 0 { s / samples as f64 } else { 0.0 })
                    .collect(),
            })
            .collect(),
        samples,
        cancelled,
        window_s: WINDOW.as_secs(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(samples: u64, stats: f64) -> ProbeResult {
        let flat = |v: f64| vec![v; DELAYS_MS.len()];
        ProbeResult {
            delays_ms: DELAYS_MS.iter().map(|&d| d as f64).collect(),
            curves: vec![
                ("order".into(), flat(1.0)),
                ("payment".into(), flat(1.0)),
                ("loyalty".into(), flat(1.0)),
                ("stats".into(), flat(stats)),
                ("all".into(), flat(stats)),
            ],
            samples,
            cancelled: 1,
            ..ProbeResult::default()
        }
    }

    #[test]
    fn results_merge_weighted_by_their_samples() {
        let view = merge([&result(30, 1.0), &result(10, 0.0)]);
        assert_eq!(view.samples, 40);
        assert_eq!(view.cancelled, 2);
        let names: Vec<&str> = view.curves.iter().map(|c| c.service.as_str()).collect();
        assert_eq!(names, ["order", "payment", "loyalty", "stats", "all"]);
        assert_eq!(view.curves[0].visible[0], 1.0);
        assert_eq!(view.curves[3].visible[5], 0.75);
        assert_eq!(view.delays_ms.len(), view.curves[3].visible.len());
    }

    #[test]
    fn no_results_is_an_empty_curve_not_a_division_by_zero() {
        let view = merge([]);
        assert_eq!(view.samples, 0);
        assert!(
            view.curves
                .iter()
                .all(|c| c.visible.iter().all(|&v| v == 0.0))
        );
    }
}
