//! What the gateway's public reads say, as pure functions: no I/O and no clock, so each is
//! tested on answers whose meaning is known.
//!
//! - [`services_from_progress`]: each service's backlog (events its producers have written
//!   and it has not applied yet), two-phase-commit entries in doubt, and its consumers' state.
//! - [`HistogramWindow`]: the services' histograms are cumulative since they started; the
//!   page wants the last few seconds, so a window subtracts an older reading from the latest.
//! - [`counter_sum`] and [`CounterWindow`]: a counter's rate over the same window.
//! - [`StateClock`]: since when each service has been in the state it shows.
//!
//! # Consumer state
//!
//! `GET /progress` answers each service's `/internal/status`, whose `consumers` object has,
//! per feed, `state` (`running`, `standby`, `paused` or `stuck`), `stuck_since_ms` and
//! `last_error`. A service shows its worst consumer: stuck before paused before standby
//! before running. The reader also takes a `state` on the service's status itself, or a list
//! of consumers, so that a change of shape reads as a state rather than as nothing; with no
//! `state` anywhere a service is `running` (a service that consumes nothing, such as Account,
//! has nothing to stop).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use contracts::ServiceName;
use loadgen::stats::{PromHistogram, bucket_percentile};
use serde::Serialize;
use serde_json::Value;

/// A consumer's (or a service's) state, in order of how much it needs attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Running,
    /// Another instance of the service holds the feed; this one waits to take over.
    Standby,
    /// Paused by an operator.
    Paused,
    /// The batch in hand keeps failing and is being retried.
    Stuck,
    /// The service did not answer `GET /internal/status` (it is absent from `/progress`).
    Unreachable,
}

impl State {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "running" => Some(State::Running),
            "standby" => Some(State::Standby),
            "paused" => Some(State::Paused),
            "stuck" => Some(State::Stuck),
            _ => None,
        }
    }
}

/// One service as `/progress` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceProgress {
    pub name: &'static str,
    pub state: State,
    /// When the worst consumer got stuck, if it says.
    pub stuck_since_ms: Option<i64>,
    /// The error of the worst consumer, if it says. Kept by the service after it recovers,
    /// so a running service may still show the last thing that went wrong.
    pub last_error: Option<String>,
    /// Whether it consumes a feed here, so that pausing means something (Account never
    /// does; no service does in strong mode).
    pub consumes: bool,
    /// Events written by the feeds this service reads and not yet applied by it; `None` when
    /// a producer's head is unknown (that producer did not answer).
    pub backlog: Option<i64>,
    /// Per feed read: `(feed, events behind)`.
    pub backlog_by_feed: Vec<(String, Option<i64>)>,
    /// Two-phase-commit entries prepared here and not yet committed or aborted.
    pub in_doubt: i64,
}

/// Every service of [`ServiceName::ALL`], in that order, from a `/progress` body.
pub fn services_from_progress(progress: &Value) -> Vec<ServiceProgress> {
    let services = progress.get("services").and_then(Value::as_object);
    let head_of = |feed: &str| -> Option<i64> {
        let head = services?.get(feed)?.get("outbox_head")?;
        // A producer without an outbox (strong mode) has nothing to be behind on.
        if head.is_null() {
            return Some(0);
        }
        head.get("seq")?.as_i64()
    };
    ServiceName::ALL
        .iter()
        .map(|service| {
            let name = service.as_str();
            let Some(status) = services.and_then(|s| s.get(name)) else {
                return ServiceProgress {
                    name,
                    state: State::Unreachable,
                    stuck_since_ms: None,
                    last_error: None,
                    consumes: false,
                    backlog: None,
                    backlog_by_feed: Vec::new(),
                    in_doubt: 0,
                };
            };
            let backlog_by_feed: Vec<(String, Option<i64>)> = status
                .get("consumers")
                .and_then(Value::as_object)
                .map(|consumers| {
                    consumers
                        .iter()
                        .map(|(feed, consumer)| {
                            let at = consumer.get("position").and_then(|p| p.get("seq"));
                            let behind = match (head_of(feed), at.and_then(Value::as_i64)) {
                                (Some(head), Some(at)) => Some((head - at).max(0)),
                                _ => None,
                            };
                            (feed.clone(), behind)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let backlog = backlog_by_feed
                .iter()
                .try_fold(0i64, |sum, (_, behind)| Some(sum + (*behind)?));
            let (state, stuck_since_ms, last_error) = worst_consumer(status);
            ServiceProgress {
                name,
                state,
                stuck_since_ms,
                last_error,
                consumes: !backlog_by_feed.is_empty(),
                backlog,
                backlog_by_feed,
                in_doubt: status.get("in_doubt").and_then(Value::as_i64).unwrap_or(0),
            }
        })
        .collect()
}

/// The worst state among a status's own fields and its consumers' (see the module docs).
fn worst_consumer(status: &Value) -> (State, Option<i64>, Option<String>) {
    let mut candidates: Vec<&Value> = vec![status];
    match status.get("consumers") {
        Some(Value::Object(by_feed)) => candidates.extend(by_feed.values()),
        Some(Value::Array(list)) => candidates.extend(list),
        _ => {}
    }
    let mut worst = (State::Running, None, None);
    for candidate in candidates {
        let Some(state) = candidate
            .get("state")
            .and_then(Value::as_str)
            .and_then(State::parse)
        else {
            continue;
        };
        if state > worst.0 {
            worst = (
                state,
                candidate.get("stuck_since_ms").and_then(Value::as_i64),
                candidate
                    .get("last_error")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            );
        }
    }
    worst
}

/// Where a state's start time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SinceSource {
    /// The service said (`stuck_since_ms`).
    Service,
    /// The dashboard saw the state change between two of its readings: the start is known
    /// to within a snapshot interval, and only since the dashboard started watching.
    Observed,
}

/// Since when each service has been in its state. Services report since when they are
/// stuck, not since when they are paused or running; the clock fills that in from the
/// readings it is shown, keeping the start of a state for as long as the state lasts.
#[derive(Debug, Clone, Default)]
pub struct StateClock {
    /// Per service name: the state and when it started.
    started: Vec<(&'static str, State, i64, SinceSource)>,
}

impl StateClock {
    /// Takes `service`'s state as read at `now_ms` (and since when the service says it is
    /// stuck); answers since when it has been in that state, and who says so.
    pub fn observe(
        &mut self,
        service: &'static str,
        state: State,
        reported_since_ms: Option<i64>,
        now_ms: i64,
    ) -> (i64, SinceSource) {
        let (since, source) = match reported_since_ms {
            Some(since) => (since, SinceSource::Service),
            None => match self.started.iter().find(|(name, ..)| *name == service) {
                Some(&(_, previous, since, source)) if previous == state => (since, source),
                _ => (now_ms, SinceSource::Observed),
            },
        };
        self.started.retain(|(name, ..)| *name != service);
        self.started.push((service, state, since, source));
        (since, source)
    }
}

/// Readings of one cumulative histogram, kept for a window: the difference between the
/// newest and the oldest reading within [`HistogramWindow::span`] is what the window saw.
#[derive(Debug, Clone)]
pub struct HistogramWindow {
    span: Duration,
    readings: VecDeque<(Instant, PromHistogram)>,
}

/// What a window of a histogram saw.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowSummary {
    /// Observations in the window.
    pub count: u64,
    /// Observations per second over the window.
    pub per_s: f64,
    /// `None` when the window saw no observation.
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

impl HistogramWindow {
    pub fn new(span: Duration) -> Self {
        Self {
            span,
            readings: VecDeque::new(),
        }
    }

    pub fn span(&self) -> Duration {
        self.span
    }

    /// Adds a reading taken at `at`, and forgets readings no longer needed: the window keeps
    /// the newest reading at least `span` old as its base, and everything after it.
    pub fn push(&mut self, at: Instant, reading: PromHistogram) {
        self.readings.push_back((at, reading));
        while self.readings.len() > 2
            && at.saturating_duration_since(self.readings[1].0) >= self.span
        {
            self.readings.pop_front();
        }
    }

    /// What happened between the oldest kept reading and the newest. A counter that went
    /// down means the service restarted: then the newest reading alone is the window. `None`
    /// until there are two readings.
    pub fn summary(&self) -> Option<WindowSummary> {
        let (first_at, first) = self.readings.front()?;
        let (last_at, last) = self.readings.back()?;
        if self.readings.len() < 2 {
            return None;
        }
        let elapsed = last_at.saturating_duration_since(*first_at).as_secs_f64();
        let diff = subtract(last, first).unwrap_or_else(|| last.clone());
        let count = diff.buckets.last().map_or(0, |&(_, n)| n);
        let quantile = |q| {
            let v = bucket_percentile(&diff.buckets, q);
            v.is_finite().then_some(v)
        };
        Some(WindowSummary {
            count,
            per_s: if elapsed > 0.0 {
                count as f64 / elapsed
            } else {
                0.0
            },
            p50: quantile(0.50),
            p99: quantile(0.99),
        })
    }
}

/// `newer − older`, bucket by bucket; `None` if any count went down or the buckets differ
/// (a restart, or a change of buckets).
fn subtract(newer: &PromHistogram, older: &PromHistogram) -> Option<PromHistogram> {
    if newer.buckets.len() != older.buckets.len() {
        return None;
    }
    let mut buckets = Vec::with_capacity(newer.buckets.len());
    for (&(le, n), &(le_older, o)) in newer.buckets.iter().zip(&older.buckets) {
        if le != le_older {
            return None;
        }
        buckets.push((le, n.checked_sub(o)?));
    }
    Some(PromHistogram {
        buckets,
        sum: newer.sum - older.sum,
        count: newer.count.checked_sub(older.count)?,
    })
}

/// The sum of every sample of `metric` whose labels include all of `labels` and pass
/// `keep` (given each sample's labels). Samples with other names, comments and malformed
/// lines are skipped. `None` when no sample matched.
pub fn counter_sum(
    text: &str,
    metric: &str,
    labels: &[(&str, &str)],
    keep: impl Fn(&[(String, String)]) -> bool,
) -> Option<f64> {
    let mut total = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(metric) else {
            continue;
        };
        let (sample_labels, value) = match rest.strip_prefix('{') {
            Some(inner) => {
                let Some(close) = inner.find('}') else {
                    continue;
                };
                (parse_labels(&inner[..close]), &inner[close + 1..])
            }
            // Another metric whose name starts with this one's (`x_total` vs `x_total_y`).
            None if !rest.starts_with(' ') => continue,
            None => (Vec::new(), rest),
        };
        let Some(value) = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        let wanted = labels.iter().all(|(k, v)| {
            sample_labels
                .iter()
                .any(|(key, value)| key == k && value == v)
        });
        if wanted && keep(&sample_labels) {
            *total.get_or_insert(0.0) += value;
        }
    }
    total
}

/// `a="x",b="y"` into pairs. Label values here are service names, feeds and status codes,
/// so an escaped quote inside a value is not expected; a pair that does not parse is skipped.
fn parse_labels(s: &str) -> Vec<(String, String)> {
    s.split(',')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
            Some((key.trim().to_owned(), value.to_owned()))
        })
        .collect()
}

/// Readings of one counter kept for a window, as [`HistogramWindow`] does for histograms.
#[derive(Debug, Clone)]
pub struct CounterWindow {
    span: Duration,
    readings: VecDeque<(Instant, f64)>,
}

impl CounterWindow {
    pub fn new(span: Duration) -> Self {
        Self {
            span,
            readings: VecDeque::new(),
        }
    }

    pub fn push(&mut self, at: Instant, value: f64) {
        self.readings.push_back((at, value));
        while self.readings.len() > 2
            && at.saturating_duration_since(self.readings[1].0) >= self.span
        {
            self.readings.pop_front();
        }
    }

    /// The counter's increase per second over the window; `None` until two readings, or
    /// right after a restart (the counter went down).
    pub fn per_s(&self) -> Option<f64> {
        let (first_at, first) = self.readings.front()?;
        let (last_at, last) = self.readings.back()?;
        let elapsed = last_at.saturating_duration_since(*first_at).as_secs_f64();
        (elapsed > 0.0 && last >= first).then(|| (last - first) / elapsed)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn by_name<'a>(services: &'a [ServiceProgress], name: &str) -> &'a ServiceProgress {
        services.iter().find(|s| s.name == name).unwrap()
    }

    #[test]
    fn backlog_is_each_producers_head_minus_the_consumers_position() {
        let progress = json!({"quiet": false, "services": {
            "account": {"outbox_head": null, "consumers": {}, "in_doubt": 0},
            "order": {"outbox_head": {"tx": 0, "seq": 120}, "consumers": {"payment": {"position": {"tx": 0, "seq": 90}}}, "in_doubt": 0},
            "payment": {"outbox_head": {"tx": 0, "seq": 95}, "consumers": {"order": {"position": {"tx": 0, "seq": 118}}}, "in_doubt": 0},
            "loyalty": {"outbox_head": null, "consumers": {"order": {"position": {"tx": 0, "seq": 120}}}, "in_doubt": 0},
            "stats": {"outbox_head": null, "consumers": {"order": {"position": {"tx": 0, "seq": 20}}}, "in_doubt": 3}
        }});
        let services = services_from_progress(&progress);
        let names: Vec<_> = services.iter().map(|s| s.name).collect();
        assert_eq!(names, ["account", "order", "payment", "loyalty", "stats"]);
        assert_eq!(by_name(&services, "account").backlog, Some(0));
        assert_eq!(by_name(&services, "order").backlog, Some(5));
        assert_eq!(by_name(&services, "payment").backlog, Some(2));
        assert_eq!(by_name(&services, "loyalty").backlog, Some(0));
        let stats = by_name(&services, "stats");
        assert_eq!(stats.backlog, Some(100));
        assert_eq!(stats.in_doubt, 3);
        assert_eq!(stats.state, State::Running);
    }

    #[test]
    fn a_missing_producer_makes_the_backlog_unknown_and_a_missing_service_unreachable() {
        let progress = json!({"quiet": false, "services": {
            "stats": {"outbox_head": null, "consumers": {"order": {"position": {"tx": 0, "seq": 20}}}, "in_doubt": 0}
        }});
        let services = services_from_progress(&progress);
        assert_eq!(by_name(&services, "stats").backlog, None);
        assert_eq!(by_name(&services, "order").state, State::Unreachable);
    }

    #[test]
    fn the_worst_consumer_gives_the_services_state_and_error() {
        let progress = json!({"services": {
            "order": {"consumers": {}, "in_doubt": 0, "state": "paused"},
            "payment": {"consumers": {}, "in_doubt": 0, "consumers": {
                "order": {"state": "running"},
                "account": {"state": "stuck", "stuck_since_ms": 1700, "last_error": "poison"}
            }},
            "stats": {"consumers": {}, "in_doubt": 0, "consumers": [
                {"feed": "order", "state": "paused"}
            ]},
            "loyalty": {"consumers": {}, "in_doubt": 0, "state": "something new"}
        }});
        let services = services_from_progress(&progress);
        assert_eq!(by_name(&services, "order").state, State::Paused);
        let payment = by_name(&services, "payment");
        assert_eq!(payment.state, State::Stuck);
        assert_eq!(payment.stuck_since_ms, Some(1700));
        assert_eq!(payment.last_error.as_deref(), Some("poison"));
        assert_eq!(by_name(&services, "stats").state, State::Paused);
        // Unknown words read as running rather than alarming anyone.
        assert_eq!(by_name(&services, "loyalty").state, State::Running);
    }

    #[test]
    fn a_service_consumes_when_it_reports_a_feed_and_standby_ranks_below_paused() {
        let progress = json!({"services": {
            "account": {"outbox_head": null, "consumers": {}, "in_doubt": 0},
            "loyalty": {"outbox_head": null, "in_doubt": 0, "consumers": {
                "order": {"position": {"tx": 0, "seq": 1}, "state": "standby"}
            }},
            "stats": {"outbox_head": null, "in_doubt": 0, "consumers": {
                "order": {"position": {"tx": 0, "seq": 1}, "state": "paused"},
                "other": {"position": {"tx": 0, "seq": 1}, "state": "standby"}
            }}
        }});
        let services = services_from_progress(&progress);
        assert!(!by_name(&services, "account").consumes);
        assert!(by_name(&services, "loyalty").consumes);
        assert_eq!(by_name(&services, "loyalty").state, State::Standby);
        assert_eq!(by_name(&services, "stats").state, State::Paused);
        // Unreachable: nothing known, nothing to pause.
        assert!(!by_name(&services, "order").consumes);
    }

    #[test]
    fn the_clock_keeps_a_states_start_until_it_changes() {
        let mut clock = StateClock::default();
        let seen = SinceSource::Observed;
        assert_eq!(
            clock.observe("stats", State::Running, None, 100),
            (100, seen)
        );
        assert_eq!(
            clock.observe("stats", State::Running, None, 600),
            (100, seen)
        );
        assert_eq!(
            clock.observe("stats", State::Paused, None, 1_100),
            (1_100, seen)
        );
        assert_eq!(
            clock.observe("loyalty", State::Running, None, 1_100),
            (1_100, seen)
        );
        assert_eq!(
            clock.observe("stats", State::Paused, None, 1_600),
            (1_100, seen)
        );
        // A stuck service says since when; the service's word wins.
        let said = SinceSource::Service;
        assert_eq!(
            clock.observe("stats", State::Stuck, Some(900), 2_100),
            (900, said)
        );
        assert_eq!(
            clock.observe("stats", State::Stuck, Some(900), 2_600),
            (900, said)
        );
        assert_eq!(
            clock.observe("stats", State::Running, None, 3_100),
            (3_100, seen)
        );
        assert_eq!(
            clock.observe("loyalty", State::Running, None, 3_100),
            (1_100, seen)
        );
    }

    fn histogram(buckets: &[(f64, u64)]) -> PromHistogram {
        PromHistogram {
            buckets: buckets.to_vec(),
            sum: 0.0,
            count: buckets.last().map_or(0, |b| b.1),
        }
    }

    #[test]
    fn a_window_sees_only_what_happened_within_it() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut window = HistogramWindow::new(s(5));
        // Before the window: 100 fast observations.
        window.push(
            t0,
            histogram(&[(1.0, 100), (100.0, 100), (f64::INFINITY, 100)]),
        );
        assert_eq!(window.summary(), None);
        window.push(
            t0 + s(5),
            histogram(&[(1.0, 100), (100.0, 100), (f64::INFINITY, 100)]),
        );
        // In the window: 10 slow ones.
        window.push(
            t0 + s(10),
            histogram(&[(1.0, 100), (100.0, 110), (f64::INFINITY, 110)]),
        );
        let summary = window.summary().unwrap();
        assert_eq!(summary.count, 10);
        assert!((summary.per_s - 2.0).abs() < 1e-9, "{}", summary.per_s);
        let p50 = summary.p50.unwrap();
        assert!((1.0..=100.0).contains(&p50), "{p50}");
        assert!(summary.p99.unwrap() > 90.0);
    }

    #[test]
    fn a_restarted_service_counts_from_its_newest_reading() {
        let t0 = Instant::now();
        let mut window = HistogramWindow::new(Duration::from_secs(5));
        window.push(t0, histogram(&[(1.0, 50), (f64::INFINITY, 50)]));
        window.push(
            t0 + Duration::from_secs(1),
            histogram(&[(1.0, 3), (f64::INFINITY, 3)]),
        );
        assert_eq!(window.summary().unwrap().count, 3);
    }

    #[test]
    fn an_empty_window_has_no_percentiles() {
        let t0 = Instant::now();
        let mut window = HistogramWindow::new(Duration::from_secs(5));
        let same = histogram(&[(1.0, 7), (f64::INFINITY, 7)]);
        window.push(t0, same.clone());
        window.push(t0 + Duration::from_secs(1), same);
        let summary = window.summary().unwrap();
        assert_eq!((summary.count, summary.p50, summary.p99), (0, None, None));
    }

    #[test]
    fn counters_are_summed_over_matching_samples() {
        let text = "# TYPE converge_orders_total counter\n\
            converge_orders_total{outcome=\"202\",service=\"order\"} 40\n\
            converge_orders_total{outcome=\"402\",service=\"order\"} 2\n\
            converge_orders_total{outcome=\"201\",service=\"order\"} 8\n\
            converge_orders_total_extra{service=\"order\"} 1000\n\
            converge_orders_total{outcome=\"202\",service=\"other\"} 1000\n";
        let acked = counter_sum(
            text,
            "converge_orders_total",
            &[("service", "order")],
            |l| l.iter().any(|(k, v)| k == "outcome" && v.starts_with('2')),
        );
        assert_eq!(acked, Some(48.0));
        let all = counter_sum(
            text,
            "converge_orders_total",
            &[("service", "order")],
            |_| true,
        );
        assert_eq!(all, Some(50.0));
        assert_eq!(counter_sum(text, "missing", &[], |_| true), None);
        assert_eq!(counter_sum("plain 3\n", "plain", &[], |_| true), Some(3.0));
    }

    #[test]
    fn a_counter_window_gives_a_rate_and_nothing_after_a_restart() {
        let t0 = Instant::now();
        let mut window = CounterWindow::new(Duration::from_secs(5));
        window.push(t0, 100.0);
        assert_eq!(window.per_s(), None);
        window.push(t0 + Duration::from_secs(2), 300.0);
        assert_eq!(window.per_s(), Some(100.0));
        window.push(t0 + Duration::from_secs(3), 10.0);
        assert_eq!(window.per_s(), None);
    }
}
