//! The drill's load: seeded orders at a constant rate (open loop: an order is sent when it is
//! due, whatever the system is doing), each retried under its `Idempotency-Key` until it gets
//! a final answer, as the strong-mode answer contract tells clients to.
//!
//! `loadgen::driver` measures latency and sends each order once; the drill needs what a
//! retrying client sees and when: every attempt's answer on one clock, to count availability
//! inside a fault window and to draw acknowledgements per second. So it keeps its own small
//! loop over `loadgen`'s workload and client.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use loadgen::workload::{Client, OpenedAccounts, Workload};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// One try of one order: no answer or a server error gets another.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest pause between two tries of one order.
const BACKOFF_MAX: Duration = Duration::from_millis(500);

/// How long a client keeps trying one order before it gives up (and the drill says so).
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);

/// Orders in flight at most; past this, due orders wait (and their wait shows).
const IN_FLIGHT_MAX: usize = 512;

/// What one attempt got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Answer {
    /// 2xx with the order.
    Acked,
    /// A final 4xx (a refusal the same request would get again).
    Refused,
    /// A 5xx, a 409 for a key still being placed, or no answer: tried again.
    Failed,
}

/// One attempt's answer and when it arrived, in ms since the drill's clock started.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Event {
    pub at_ms: u64,
    pub answer: Answer,
}

/// Everything the clients saw, shared by their tasks.
#[derive(Debug, Default)]
pub struct Record {
    pub events: Vec<Event>,
    /// Every acknowledged order, as `(order_id, account_id)`, for the checker.
    pub acknowledged: Vec<(String, String)>,
    /// Orders still without a final answer when their client gave up.
    pub abandoned: u64,
}

/// The seeded workload, opened, and the clock every event is timed on.
pub struct Orders {
    pub client: Client,
    pub workload: Workload,
    pub opened: OpenedAccounts,
    pub clock: Instant,
    /// The index of the next order of the workload.
    next: AtomicU64,
    record: Mutex<Record>,
}

impl Orders {
    pub fn new(client: Client, workload: Workload, opened: OpenedAccounts) -> Self {
        Self {
            client,
            workload,
            opened,
            clock: Instant::now(),
            next: AtomicU64::new(0),
            record: Mutex::new(Record::default()),
        }
    }

    /// Milliseconds on the drill's clock.
    pub fn now_ms(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }

    /// What was seen so far, under its lock.
    pub fn record(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn note(&self, answer: Answer) {
        let at_ms = self.now_ms();
        self.record().events.push(Event { at_ms, answer });
    }
}

/// A load running until [`Load::stop`].
pub struct Load {
    stop: CancellationToken,
    sender: tokio::task::JoinHandle<JoinSet<()>>,
}

impl Load {
    /// Starts sending `rate` orders a second.
    pub fn start(orders: Arc<Orders>, rate: u64) -> Self {
        let stop = CancellationToken::new();
        let sender = tokio::spawn(send(orders, rate.max(1), stop.clone()));
        Self { stop, sender }
    }

    /// Sends no new order, and waits until every order sent has its final answer (or its
    /// client gave up).
    pub async fn stop(self) {
        self.stop.cancel();
        if let Ok(mut clients) = self.sender.await {
            while clients.join_next().await.is_some() {}
        }
    }
}

async fn send(orders: Arc<Orders>, rate: u64, stop: CancellationToken) -> JoinSet<()> {
    let start = tokio::time::Instant::now();
    let slots = Arc::new(Semaphore::new(IN_FLIGHT_MAX));
    let mut clients = JoinSet::new();
    for sent in 0u64.. {
        let due = start + loadgen::driver::LoadConfig::intended_offset(rate, sent);
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep_until(due) => {}
        }
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let orders = orders.clone();
        clients.spawn(async move {
            place_until_final(&orders).await;
            drop(slot);
        });
        // Reap the finished, so the set stays as small as what is in flight.
        while clients.try_join_next().is_some() {}
    }
    clients
}

/// Places the next order of the workload, trying again under its key until a final answer.
async fn place_until_final(orders: &Orders) {
    let i = orders.next.fetch_add(1, Ordering::Relaxed);
    let planned = orders.workload.order_at(i);
    let request = orders.opened.request(&planned);
    let key = planned.idempotency_key;
    let give_up = Instant::now() + GIVE_UP_AFTER;
    let mut backoff = Duration::from_millis(50);
    loop {
        let placed = tokio::time::timeout(
            ATTEMPT_TIMEOUT,
            orders.client.place_order(&request, Some(&key)),
        )
        .await;
        let status = placed.as_ref().ok().and_then(|p| p.status);
        match status.map(|s| s.as_u16()) {
            Some(200..=299) => match placed.ok().and_then(|p| p.order) {
                Some(order) => {
                    orders.note(Answer::Acked);
                    let mut record = orders.record();
                    record.acknowledged.push((order.id, order.account_id));
                    return;
                }
                None => orders.note(Answer::Failed),
            },
            Some(status @ 400..=499) if status != 409 => {
                orders.note(Answer::Refused);
                return;
            }
            _ => orders.note(Answer::Failed),
        }
        if Instant::now() >= give_up {
            orders.record().abandoned += 1;
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Counts of answers between two moments of the drill's clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Availability {
    pub acked: u64,
    pub refused: u64,
    pub failed: u64,
}

impl Availability {
    pub fn between(events: &[Event], from_ms: u64, to_ms: u64) -> Self {
        let mut counts = Self::default();
        for event in events
            .iter()
            .filter(|e| (from_ms..to_ms).contains(&e.at_ms))
        {
            match event.answer {
                Answer::Acked => counts.acked += 1,
                Answer::Refused => counts.refused += 1,
                Answer::Failed => counts.failed += 1,
            }
        }
        counts
    }
}

/// Answers per whole second of the drill's clock: `(acked, failed)` per second.
pub fn per_second(events: &[Event]) -> Vec<(u64, u64)> {
    let seconds = events
        .iter()
        .map(|e| e.at_ms / 1_000 + 1)
        .max()
        .unwrap_or(0);
    let mut out = vec![(0, 0); seconds as usize];
    for event in events {
        let slot = &mut out[(event.at_ms / 1_000) as usize];
        match event.answer {
            Answer::Acked => slot.0 += 1,
            Answer::Failed => slot.1 += 1,
            Answer::Refused => {}
        }
    }
    out
}
