//! The loop behind the event stream: every [`SNAPSHOT_INTERVAL`] it reads the gateway's
//! `/progress`, `/metrics` and `/dead-letters` (and, when it has the services' addresses,
//! each service's processing delay), folds them with the dashboard's own load and
//! visibility probe into a [`Snapshot`], and publishes it to every open page at once (one
//! serialized JSON shared by all, however many pages watch).
//!
//! Snapshots keep their pace when the system is slow to answer: each read runs on its own
//! task, a tick waits for it at most [`READ_BUDGET`], and a read still running then is left
//! to finish for the next tick while this one shows the last answer it had. So a stalled
//! service shows as a stale or failed read on the page, never as a frozen page.
//!
//! It runs only while someone watches or the load runs: it starts with the first page (or
//! the first move of the slider) and ends once neither is left, so a system that nobody
//! watches (a test, a bench run) pays nothing for it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use contracts::internal::DeadLetter;
use loadgen::workload::Client;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::Inner;
use crate::readings::StateClock;
use crate::snapshot::{self, Controls, Limits, Readings, SNAPSHOT_INTERVAL, Snapshot, Windows};

/// How long a tick waits for its reads before publishing with what it has. Below
/// [`SNAPSHOT_INTERVAL`], so that a slow read never stretches the gap between snapshots.
pub const READ_BUDGET: Duration = Duration::from_millis(400);

/// How long one read may run (across ticks) before it counts as failed. The gateway itself
/// waits up to five call timeouts (10 s by default) for a service; a read that long is
/// reported as failing rather than waited for.
const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// One kind of read: the task in flight, and the last answer.
struct Reader<T> {
    in_flight: Option<JoinHandle<Result<T, String>>>,
    latest: Option<T>,
    /// Why the last read failed; cleared by the next answer.
    error: Option<String>,
    /// Set when an answer arrived since the last [`Reader::take_fresh`] (only the metrics'
    /// windows need to know: a reading must be pushed into them once).
    fresh: bool,
}

impl<T: Send + 'static> Reader<T> {
    fn new() -> Self {
        Self {
            in_flight: None,
            latest: None,
            error: None,
            fresh: false,
        }
    }

    /// Starts a read unless one is still running.
    fn start(
        &mut self,
        read: impl std::future::Future<Output = Result<T, String>> + Send + 'static,
    ) {
        if self.in_flight.is_none() {
            self.in_flight = Some(tokio::spawn(read));
        }
    }

    /// Waits for the read in flight until `deadline`, and keeps its answer if it came.
    async fn settle(&mut self, deadline: tokio::time::Instant) {
        let Some(handle) = self.in_flight.as_mut() else {
            return;
        };
        let Ok(joined) = tokio::time::timeout_at(deadline, handle).await else {
            return;
        };
        self.in_flight = None;
        match joined {
            Ok(Ok(value)) => {
                self.latest = Some(value);
                self.error = None;
                self.fresh = true;
            }
            Ok(Err(error)) => self.error = Some(error),
            Err(error) => self.error = Some(format!("the read task failed: {error}")),
        }
    }

    fn take_fresh(&mut self) -> bool {
        std::mem::take(&mut self.fresh)
    }
}

impl<T> Drop for Reader<T> {
    fn drop(&mut self) {
        if let Some(handle) = self.in_flight.take() {
            handle.abort();
        }
    }
}

async fn get_text(client: Client, path: &'static str) -> Result<String, String> {
    let response = client
        .http()
        .get(format!("{}{path}", client.base()))
        .timeout(READ_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("{path}: {e}"))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| format!("{path}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{path} answered {status}: {text}"));
    }
    Ok(text)
}

async fn get_json<T: DeserializeOwned>(client: Client, path: &'static str) -> Result<T, String> {
    let text = get_text(client, path).await?;
    serde_json::from_str(&text).map_err(|e| format!("{path}: unreadable answer: {e}"))
}

/// Starts the sampler unless it runs.
pub(crate) fn ensure_running(inner: &Arc<Inner>) {
    if !inner.sampler_running.swap(true, Ordering::AcqRel) {
        tokio::spawn(run(inner.clone()));
    }
}

/// Whether anyone needs snapshots: a page watching, or the load running.
fn wanted(inner: &Inner) -> bool {
    inner.snapshots.receiver_count() > 0 || inner.load.is_active()
}

/// Each service's processing delay; a service that did not answer is `None`, and the first
/// such failure is the read's error (the others are most likely the same cause).
async fn read_delays(admin: crate::ServiceAdmin) -> Result<Vec<Option<u64>>, String> {
    let answers = admin.delays().await;
    if answers.iter().all(Result::is_err) {
        return Err(answers
            .into_iter()
            .find_map(Result::err)
            .unwrap_or_default());
    }
    Ok(answers.into_iter().map(Result::ok).collect())
}

/// What the loop carries from one tick to the next.
struct Sampling {
    progress: Reader<Value>,
    metrics: Reader<String>,
    letters: Reader<BTreeMap<String, Vec<DeadLetter>>>,
    delays: Reader<Vec<Option<u64>>>,
    windows: Windows,
    clock: StateClock,
}

async fn run(inner: Arc<Inner>) {
    let mut sampling = Sampling {
        progress: Reader::new(),
        metrics: Reader::new(),
        letters: Reader::new(),
        delays: Reader::new(),
        windows: Windows::default(),
        clock: StateClock::default(),
    };
    let mut ticks = tokio::time::interval(SNAPSHOT_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = inner.stop.cancelled() => break,
        }
        if !wanted(&inner) {
            // Stop, unless a page or the slider arrived between the check and the flag: the
            // one that arrived saw the flag still set and did not start another.
            inner.sampler_running.store(false, Ordering::Release);
            if wanted(&inner) && !inner.sampler_running.swap(true, Ordering::AcqRel) {
                continue;
            }
            // The next page must not be shown this snapshot as live: by the time it comes
            // the system may have changed (a control used through the API, a restart). It
            // waits for the next sampler's first snapshot instead, one interval at most.
            inner.snapshots.send_replace(None);
            break;
        }
        let s = &mut sampling;
        let client = &inner.client;
        s.progress.start(get_json(client.clone(), "/progress"));
        s.metrics.start(get_text(client.clone(), "/metrics"));
        s.letters.start(get_json(client.clone(), "/dead-letters"));
        if let Some(admin) = &inner.config.services {
            s.delays.start(read_delays(admin.clone()));
        }
        let deadline = tokio::time::Instant::now() + READ_BUDGET;
        tokio::join!(
            s.progress.settle(deadline),
            s.metrics.settle(deadline),
            s.letters.settle(deadline),
            s.delays.settle(deadline)
        );
        let now = Instant::now();
        if let (true, Some(text)) = (s.metrics.take_fresh(), &s.metrics.latest) {
            s.windows.push_metrics(now, text);
        }
        inner.visibility.rotate_if_due(now, inner.load.rate() > 0);
        let snapshot = build(&inner, s, now);
        match serde_json::to_string(&snapshot) {
            Ok(json) => {
                inner.snapshots.send_replace(Some(Arc::from(json)));
            }
            Err(error) => tracing::error!(%error, "dashboard: cannot serialize a snapshot"),
        }
    }
    // Readers abort their reads in flight as they drop.
}

fn build(inner: &Inner, s: &mut Sampling, now: Instant) -> Snapshot {
    let (progress, letters) = (&s.progress, &s.letters);
    let errors: Vec<String> = [
        &progress.error,
        &s.metrics.error,
        &letters.error,
        &s.delays.error,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    let no_letters = BTreeMap::new();
    let by_service = letters.latest.as_ref().unwrap_or(&no_letters);
    let at_ms = contracts::now_ms();
    let readings = Readings {
        progress: progress.latest.as_ref(),
        metrics: s.metrics.latest.as_deref(),
        dead_letters: by_service,
        // A failed read shows no delay rather than the last one: it may have changed since.
        delays_ms: s
            .delays
            .error
            .is_none()
            .then_some(s.delays.latest.as_deref())
            .flatten(),
        at_ms,
    };
    Snapshot {
        label: inner.config.label.clone(),
        gateway_url: inner.config.gateway_url.clone(),
        at_ms,
        reachable: progress.error.is_none() && progress.latest.is_some(),
        errors,
        quiet: progress
            .latest
            .as_ref()
            .and_then(|p| p.get("quiet"))
            .and_then(Value::as_bool),
        load: inner.load.view(),
        orders: s.windows.orders(),
        services: snapshot::services(&readings, &s.windows, &mut s.clock),
        visibility: inner.visibility.view(now),
        dead_letters: snapshot::dead_letters(by_service),
        controls: Controls::new(inner.config.services.as_ref()),
        limits: Limits::default(),
    }
}
