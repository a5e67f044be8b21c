//! The dashboard's own load: orders at the rate the page's slider sets, on the seeded
//! workload, through the gateway's public `POST /orders`.
//!
//! It is open loop, as `loadgen::driver` is: order `k` after a rate change is *intended* at
//! `k / rate` after the change, whatever happened before, and its latency counts from that
//! intended time, so a system that stalls is charged for every order queued behind the stall
//! (no coordinated omission). At most [`IN_FLIGHT_MAX`] orders are in flight; when all are
//! busy the next order waits for one, and the wait is charged to it. A rate change starts a
//! new schedule from now: moving the slider down forgives the orders still owed at the old
//! rate, so that the page answers the slider rather than an old debt.
//!
//! The driver in `loadgen` runs a fixed rate for a fixed time; a slider needs a rate that
//! changes while it runs, hence this loop. What it shares with the bench is the workload
//! (`Workload::timed`, the same mix of suspended, unfunded and unknown accounts), the typed
//! client and the acknowledgement record the visibility probe takes.
//!
//! Accounts are opened when the slider first leaves zero, [`ACCOUNTS`] of them plus the
//! workload's probe accounts, funded for [`EPOCH_ORDERS`] orders. The slider can stay up for
//! hours, so before those run out a fresh set is opened (an *epoch*), with the seed plus the
//! epoch's number: the same seed still gives the same orders.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use contracts::api::PlaceOrderRequest;
use contracts::limits::TOP_UP_CENTS_MAX;
use futures::{StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use loadgen::driver::{Ack, LoadConfig, TIMER_SLACK};
use loadgen::workload::{AccountPlan, Client, OpenedAccounts, Workload};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;

/// The slider's top. Above every mode's ceiling on the two-core development machine (queue
/// about 3,800 orders/s, cron about 4,500), so the slider can show a mode saturating, while
/// bounding what one page can ask a laptop to do.
pub const RATE_MAX_PER_S: u32 = 5_000;

/// Orders in flight at most. At [`RATE_MAX_PER_S`] with strong mode's p99 near its ceiling
/// (about 200 ms) some 1,000 would be in flight; half of that already saturates every mode
/// here, and more connections would only queue inside the server.
pub const IN_FLIGHT_MAX: usize = 512;

/// How long one order may take before it counts as failed: longer than the gateway's own
/// limit (five call timeouts, 10 s by default) would only wait for its `503`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(12);

/// Ordinary accounts per epoch: enough that one account's orders do not queue behind each
/// other in Payment, few enough to open in about a second.
pub const ACCOUNTS: usize = 100;

/// Orders an epoch's accounts are funded for: about three minutes at the slider's top, an
/// hour and a half at 200 orders/s. The top-up of an ordinary account stays within one
/// request's limit ([`TOP_UP_CENTS_MAX`]).
pub const EPOCH_ORDERS: u64 = 1_000_000;

/// The next epoch's accounts are opened once this share of the current one is used (in
/// tenths), so that they are ready when it ends.
const NEXT_EPOCH_AT_TENTHS: u64 = 9;

/// Accounts opened at once: opening is three calls per account, done in parallel so that
/// the first orders do not wait for a hundred sequential round trips.
const OPEN_CONCURRENCY: usize = 16;

/// After failing to open accounts (the system is down), wait this long before trying again.
const OPEN_RETRY: Duration = Duration::from_secs(2);

/// The recent acknowledged orders the page lists (to click for their timeline).
pub const RECENT_ORDERS_MAX: usize = 20;

/// The recorder's time slot: rates and latencies are kept per slot.
const SLOT: Duration = Duration::from_millis(250);

/// Slots in the window the page shows (2 s): short enough that the numbers follow the
/// slider within a snapshot or two, long enough for a p99 at a few hundred orders a second.
const WINDOW_SLOTS: u64 = 8;

/// Latencies above this are recorded as this: well past [`REQUEST_TIMEOUT`].
const LATENCY_MAX_US: u64 = 60_000_000;

type AckHook = Arc<dyn Fn(&Ack) + Send + Sync>;

/// The load generator. Cheap to share: every handle drives the same generator.
#[derive(Clone)]
pub struct Load {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Load")
            .field("base", &self.shared.client.base())
            .field("rate", &self.rate())
            .finish_non_exhaustive()
    }
}

struct Shared {
    client: Client,
    seed: u64,
    /// The slider's value. The generator task watches it; the page sets it.
    rate: watch::Sender<u32>,
    /// Whether the generator task was spawned (it is, on the first rate above zero).
    started: AtomicBool,
    phase: Mutex<Phase>,
    recorder: Mutex<Recorder>,
    recent: Mutex<VecDeque<RecentOrder>>,
    slots: Arc<Semaphore>,
    /// How late the last order was sent after its intended time, in microseconds.
    behind_us: AtomicU64,
    on_ack: AckHook,
    stop: CancellationToken,
}

/// What the generator is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "phase", content = "detail", rename_all = "snake_case")]
pub enum Phase {
    Idle,
    OpeningAccounts,
    Running,
    /// Opening accounts failed; it tries again.
    Failed(String),
}

/// One acknowledged order of the dashboard's load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecentOrder {
    pub id: String,
    pub account_id: String,
    /// As acknowledged: `confirmed` (strong) or `accepted`.
    pub status: String,
    pub total_cents: i64,
    /// When the answer arrived, by this machine's clock (ms since the Unix epoch).
    pub acknowledged_at_ms: i64,
    pub latency_ms: f64,
}

/// The load as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadView {
    pub rate_per_s: u32,
    #[serde(flatten)]
    pub phase: Phase,
    /// Over the last two seconds, by when the answers arrived.
    pub acked_per_s: f64,
    pub refused_per_s: f64,
    pub failed_per_s: f64,
    /// Acknowledgement latency over the same window, from each order's intended send time;
    /// `None` without acknowledgements in the window.
    pub ack_p50_ms: Option<f64>,
    pub ack_p99_ms: Option<f64>,
    pub in_flight: usize,
    /// How late the last order left after its intended time: above a few milliseconds, the
    /// system (or this machine) is not keeping up with the offered rate.
    pub behind_ms: f64,
    pub placed: u64,
    pub acked: u64,
    pub refused: u64,
    pub failed: u64,
    pub recent: Vec<RecentOrder>,
}

impl Load {
    /// A generator for the system at `client`; `on_ack` sees every acknowledgement (keep it
    /// cheap: it runs on the order's task). Nothing runs until the rate leaves zero; every
    /// task ends when `stop` is cancelled.
    pub fn new(
        client: Client,
        seed: u64,
        on_ack: impl Fn(&Ack) + Send + Sync + 'static,
        stop: CancellationToken,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                client,
                seed,
                rate: watch::Sender::new(0),
                started: AtomicBool::new(false),
                phase: Mutex::new(Phase::Idle),
                recorder: Mutex::new(Recorder::new(Instant::now())),
                recent: Mutex::new(VecDeque::with_capacity(RECENT_ORDERS_MAX)),
                slots: Arc::new(Semaphore::new(IN_FLIGHT_MAX)),
                behind_us: AtomicU64::new(0),
                on_ack: Arc::new(on_ack),
                stop,
            }),
        }
    }

    /// Sets the offered rate, clamped to [`RATE_MAX_PER_S`]; the first rate above zero
    /// starts the generator (it must be called inside a tokio runtime).
    pub fn set_rate(&self, rate_per_s: u32) -> u32 {
        let rate = rate_per_s.min(RATE_MAX_PER_S);
        self.shared.rate.send_replace(rate);
        if rate > 0 && !self.shared.started.swap(true, Ordering::AcqRel) {
            tokio::spawn(generate(self.shared.clone()));
        }
        rate
    }

    pub fn rate(&self) -> u32 {
        *self.shared.rate.borrow()
    }

    /// Whether load is offered or answers are still awaited.
    pub fn is_active(&self) -> bool {
        self.rate() > 0 || self.in_flight() > 0
    }

    fn in_flight(&self) -> usize {
        IN_FLIGHT_MAX - self.shared.slots.available_permits()
    }

    pub fn view(&self) -> LoadView {
        let shared = &self.shared;
        let window = lock(&shared.recorder).window(Instant::now());
        LoadView {
            rate_per_s: self.rate(),
            phase: lock(&shared.phase).clone(),
            acked_per_s: window.acked_per_s,
            refused_per_s: window.refused_per_s,
            failed_per_s: window.failed_per_s,
            ack_p50_ms: window.p50_ms,
            ack_p99_ms: window.p99_ms,
            in_flight: self.in_flight(),
            behind_ms: shared.behind_us.load(Ordering::Relaxed) as f64 / 1_000.0,
            placed: window.totals.placed,
            acked: window.totals.acked,
            refused: window.totals.refused,
            failed: window.totals.failed,
            recent: lock(&shared.recent).iter().rev().cloned().collect(),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One epoch's accounts.
struct Epoch {
    workload: Workload,
    opened: OpenedAccounts,
}

/// Opens an epoch's accounts (ordinary and probe), [`OPEN_CONCURRENCY`] at a time.
async fn open_epoch(client: &Client, seed: u64) -> anyhow::Result<Epoch> {
    async fn open_one(client: &Client, plan: &AccountPlan) -> anyhow::Result<String> {
        let account = client.create_account(&plan.name).await?;
        let mut left = plan.top_up_cents;
        while left > 0 {
            let amount = left.min(TOP_UP_CENTS_MAX);
            client.top_up(&account.id, amount).await?;
            left -= amount;
        }
        if plan.suspended {
            client.suspend(&account.id).await?;
        }
        Ok(account.id)
    }
    let workload = Workload::timed(seed, ACCOUNTS, EPOCH_ORDERS);
    let open_all = |plans: Vec<AccountPlan>| async move {
        futures::stream::iter(plans)
            .map(|plan| async move { open_one(client, &plan).await })
            .buffered(OPEN_CONCURRENCY)
            .try_collect::<Vec<String>>()
            .await
    };
    let accounts = open_all(workload.accounts.clone()).await?;
    let probes = open_all(workload.probe_accounts.clone()).await?;
    Ok(Epoch {
        workload,
        opened: OpenedAccounts { accounts, probes },
    })
}

/// The generator task: waits for a rate, opens accounts, offers orders on schedule.
async fn generate(shared: Arc<Shared>) {
    let mut rate_rx = shared.rate.subscribe();
    let mut epochs = Epochs::new(shared.client.clone(), shared.seed);
    loop {
        // Wait for a rate above zero.
        let rate = loop {
            let rate = *rate_rx.borrow_and_update();
            if rate > 0 {
                break rate;
            }
            *lock(&shared.phase) = Phase::Idle;
            tokio::select! {
                changed = rate_rx.changed() => if changed.is_err() { return },
                () = shared.stop.cancelled() => return,
            }
        };
        if epochs.current.is_none() {
            *lock(&shared.phase) = Phase::OpeningAccounts;
            let opened = tokio::select! {
                opened = open_epoch(&shared.client, epochs.seed_of(0)) => opened,
                () = shared.stop.cancelled() => return,
            };
            match opened {
                Ok(epoch) => epochs.current = Some(Arc::new(epoch)),
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "dashboard: cannot open the load's accounts");
                    *lock(&shared.phase) =
                        Phase::Failed(format!("cannot open accounts: {error:#}"));
                    tokio::select! {
                        () = tokio::time::sleep(OPEN_RETRY) => {}
                        () = shared.stop.cancelled() => return,
                    }
                    continue;
                }
            }
        }
        *lock(&shared.phase) = Phase::Running;
        if !offer(&shared, &mut rate_rx, &mut epochs, rate).await {
            return;
        }
    }
}

/// Offers orders at `rate` from now until the rate changes (`true`) or the dashboard stops
/// (`false`).
async fn offer(
    shared: &Arc<Shared>,
    rate_rx: &mut watch::Receiver<u32>,
    epochs: &mut Epochs,
    rate: u32,
) -> bool {
    let start = Instant::now();
    for k in 0u64.. {
        let intended = start + LoadConfig::intended_offset(u64::from(rate), k);
        let idle = intended > Instant::now();
        if idle {
            tokio::select! {
                () = tokio::time::sleep_until(intended.into()) => {}
                changed = rate_rx.changed() => return changed.is_ok(),
                () = shared.stop.cancelled() => return false,
            }
        }
        let (permit, waited) = match shared.slots.clone().try_acquire_owned() {
            Ok(permit) => (permit, false),
            Err(_) => {
                let permit = tokio::select! {
                    permit = shared.slots.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => return false,
                    },
                    changed = rate_rx.changed() => return changed.is_ok(),
                    () = shared.stop.cancelled() => return false,
                };
                (permit, true)
            }
        };
        let now = Instant::now();
        // A loop that slept until the intended time is woken by the millisecond timer up to
        // `TIMER_SLACK` late; that lateness is the generator's, not the system's, and is not
        // charged (as in `loadgen::driver`). A loop that was behind, or waited for a free
        // slot, is charged from the intended time.
        let from = if idle && !waited {
            now.min(intended + TIMER_SLACK)
        } else {
            intended
        };
        shared.behind_us.store(
            now.saturating_duration_since(intended).as_micros() as u64,
            Ordering::Relaxed,
        );
        let (request, key) = epochs.next_order();
        let shared = shared.clone();
        tokio::spawn(async move {
            let outcome = place(&shared.client, &request, &key).await;
            let done = Instant::now();
            drop(permit);
            record(&shared, outcome, done, done.saturating_duration_since(from));
        });
    }
    true
}

/// The epochs of accounts: the one in use, and the next one while it is being opened.
struct Epochs {
    client: Client,
    seed: u64,
    number: u64,
    current: Option<Arc<Epoch>>,
    /// Orders taken from the current epoch.
    used: u64,
    next: Option<tokio::task::JoinHandle<anyhow::Result<Epoch>>>,
    /// After the next epoch failed to open, not before this: a system that is down would
    /// otherwise be asked on every order.
    retry_at: Option<Instant>,
}

impl Epochs {
    fn new(client: Client, seed: u64) -> Self {
        Self {
            client,
            seed,
            number: 0,
            current: None,
            used: 0,
            next: None,
            retry_at: None,
        }
    }

    fn seed_of(&self, number: u64) -> u64 {
        self.seed.wrapping_add(number)
    }

    /// The next order's request and idempotency key; opens the next epoch in the
    /// background when the current one is nearly used up, and moves to it once it is used
    /// up and the next is ready. Until then the current epoch goes on (its accounts' wallets
    /// run dry, so more orders are refused or cancelled).
    fn next_order(&mut self) -> (PlaceOrderRequest, String) {
        let may_open = self.retry_at.is_none_or(|at| Instant::now() >= at);
        if self.used >= EPOCH_ORDERS * NEXT_EPOCH_AT_TENTHS / 10 && self.next.is_none() && may_open
        {
            self.retry_at = None;
            let client = self.client.clone();
            let seed = self.seed_of(self.number + 1);
            self.next = Some(tokio::spawn(async move { open_epoch(&client, seed).await }));
        }
        if self.used >= EPOCH_ORDERS && self.next.as_ref().is_some_and(|n| n.is_finished()) {
            let next = self.next.take().expect("checked above");
            // A finished task's output is ready: this does not wait.
            match futures::FutureExt::now_or_never(next) {
                Some(Ok(Ok(epoch))) => {
                    self.current = Some(Arc::new(epoch));
                    self.number += 1;
                    self.used = 0;
                }
                Some(Ok(Err(error))) => {
                    tracing::warn!(error = %format!("{error:#}"), "dashboard: cannot open the next epoch's accounts; trying again");
                    self.retry_at = Some(Instant::now() + OPEN_RETRY);
                }
                _ => self.retry_at = Some(Instant::now() + OPEN_RETRY),
            }
        }
        let epoch = self
            .current
            .as_ref()
            .expect("the generator opens an epoch before offering orders");
        let order = epoch.workload.order_at(self.used);
        self.used += 1;
        (epoch.opened.request(&order), order.idempotency_key)
    }
}

/// The fields of an acknowledged order the dashboard keeps (the body has more).
#[derive(Deserialize)]
struct AckBody {
    id: String,
    account_id: String,
    status: String,
    total_cents: i64,
    points: i64,
}

enum Outcome {
    Acknowledged(AckBody),
    Refused,
    Failed,
}

async fn place(client: &Client, request: &PlaceOrderRequest, key: &str) -> Outcome {
    let sent = client
        .http()
        .post(format!("{}/orders", client.base()))
        .header("idempotency-key", key)
        .json(request)
        .timeout(REQUEST_TIMEOUT)
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

fn record(shared: &Shared, outcome: Outcome, done: Instant, latency: Duration) {
    let latency_us = latency.as_micros().min(u128::from(LATENCY_MAX_US)) as u64;
    lock(&shared.recorder).record(done, &outcome, latency_us);
    if let Outcome::Acknowledged(body) = outcome {
        let at_unix_ms = contracts::now_ms();
        let ack = Ack {
            order_id: body.id,
            account_id: body.account_id,
            total_cents: body.total_cents,
            points: body.points,
            acknowledged_at: done,
            at_unix_ms,
        };
        (shared.on_ack)(&ack);
        let mut recent = lock(&shared.recent);
        if recent.len() == RECENT_ORDERS_MAX {
            recent.pop_front();
        }
        recent.push_back(RecentOrder {
            id: ack.order_id,
            account_id: ack.account_id,
            status: body.status,
            total_cents: ack.total_cents,
            acknowledged_at_ms: at_unix_ms,
            latency_ms: latency_us as f64 / 1_000.0,
        });
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Totals {
    placed: u64,
    acked: u64,
    refused: u64,
    failed: u64,
}

/// Answers per [`SLOT`], for the last [`WINDOW_SLOTS`] slots and the one in progress.
struct Recorder {
    start: Instant,
    /// `(slot number, counts, latencies of its acknowledgements)`, oldest first.
    slots: VecDeque<(u64, Totals, Histogram<u64>)>,
    totals: Totals,
}

/// What the recorder's window saw.
#[derive(Debug, Clone, Copy, PartialEq)]
struct WindowView {
    acked_per_s: f64,
    refused_per_s: f64,
    failed_per_s: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    totals: Totals,
}

impl Recorder {
    fn new(start: Instant) -> Self {
        Self {
            start,
            slots: VecDeque::new(),
            totals: Totals::default(),
        }
    }

    fn slot_of(&self, at: Instant) -> u64 {
        (at.saturating_duration_since(self.start).as_nanos() / SLOT.as_nanos()) as u64
    }

    fn record(&mut self, at: Instant, outcome: &Outcome, latency_us: u64) {
        let slot = self.slot_of(at);
        // Answers arrive nearly in order; one that lands in an already closed slot counts
        // in the newest, which moves a count by a quarter second at most.
        if self.slots.back().is_none_or(|(s, _, _)| *s < slot) {
            let histogram =
                Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("valid histogram bounds");
            self.slots.push_back((slot, Totals::default(), histogram));
        }
        while self
            .slots
            .front()
            .is_some_and(|(s, _, _)| *s + WINDOW_SLOTS < slot)
        {
            self.slots.pop_front();
        }
        let (_, counts, histogram) = self.slots.back_mut().expect("pushed above");
        for totals in [&mut *counts, &mut self.totals] {
            totals.placed += 1;
            match outcome {
                Outcome::Acknowledged(_) => totals.acked += 1,
                Outcome::Refused => totals.refused += 1,
                Outcome::Failed => totals.failed += 1,
            }
        }
        if matches!(outcome, Outcome::Acknowledged(_)) {
            histogram.saturating_record(latency_us.max(1));
        }
    }

    /// The last [`WINDOW_SLOTS`] complete slots before `now`.
    fn window(&self, now: Instant) -> WindowView {
        let current = self.slot_of(now);
        let first = current.saturating_sub(WINDOW_SLOTS);
        let mut counts = Totals::default();
        let mut latencies: Option<Histogram<u64>> = None;
        for (slot, slot_counts, histogram) in &self.slots {
            if *slot < first || *slot >= current {
                continue;
            }
            counts.acked += slot_counts.acked;
            counts.refused += slot_counts.refused;
            counts.failed += slot_counts.failed;
            match &mut latencies {
                Some(merged) => merged.add(histogram).expect("same bounds"),
                None => latencies = Some(histogram.clone()),
            }
        }
        // Before a whole window has passed, divide by the time there was.
        let slots = (current - first).max(1);
        let seconds = (slots as f64) * SLOT.as_secs_f64();
        let quantile = |q: f64| {
            latencies
                .as_ref()
                .filter(|h| !h.is_empty())
                .map(|h| h.value_at_quantile(q) as f64 / 1_000.0)
        };
        WindowView {
            acked_per_s: counts.acked as f64 / seconds,
            refused_per_s: counts.refused as f64 / seconds,
            failed_per_s: counts.failed as f64 / seconds,
            p50_ms: quantile(0.50),
            p99_ms: quantile(0.99),
            totals: self.totals,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack() -> Outcome {
        Outcome::Acknowledged(AckBody {
            id: "o".into(),
            account_id: "a".into(),
            status: "accepted".into(),
            total_cents: 1,
            points: 0,
        })
    }

    #[test]
    fn the_window_counts_complete_slots_only() {
        let t0 = Instant::now();
        let mut recorder = Recorder::new(t0);
        let at = |ms| t0 + Duration::from_millis(ms);
        // Slot 0: 2 acks (1 ms, 9 ms), slot 1: 1 refusal, slot 2 (in progress): 1 ack.
        recorder.record(at(10), &ack(), 1_000);
        recorder.record(at(20), &ack(), 9_000);
        recorder.record(at(300), &Outcome::Refused, 5);
        recorder.record(at(600), &ack(), 100_000);
        let view = recorder.window(at(610));
        // Two complete slots: half a second.
        assert_eq!(view.acked_per_s, 4.0);
        assert_eq!(view.refused_per_s, 2.0);
        assert_eq!(view.failed_per_s, 0.0);
        let p99 = view.p99_ms.unwrap();
        assert!((8.9..=9.1).contains(&p99), "{p99}");
        assert_eq!(view.totals.placed, 4);
        assert_eq!(view.totals.acked, 3);
    }

    #[test]
    fn old_slots_leave_the_window() {
        let t0 = Instant::now();
        let mut recorder = Recorder::new(t0);
        recorder.record(t0, &ack(), 1_000);
        let later = t0 + SLOT * 20;
        recorder.record(later, &Outcome::Failed, 1);
        let view = recorder.window(later + SLOT);
        assert_eq!(view.acked_per_s, 0.0);
        assert_eq!(view.p50_ms, None);
        assert_eq!(view.failed_per_s, 0.5);
        assert!(recorder.slots.len() <= WINDOW_SLOTS as usize + 1);
        // Totals are since the start.
        assert_eq!(view.totals.acked, 1);
    }

    #[test]
    fn an_epoch_funds_its_accounts_in_one_top_up_each() {
        let workload = Workload::timed(7, ACCOUNTS, EPOCH_ORDERS);
        assert!(
            workload
                .accounts
                .iter()
                .all(|a| a.top_up_cents <= TOP_UP_CENTS_MAX)
        );
    }
}
