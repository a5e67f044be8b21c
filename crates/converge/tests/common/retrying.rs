//! Clients that retry every failed order under its `Idempotency-Key` until it gets a final
//! answer, as the answer contract tells them to, and what the system must show for them once
//! quiet. The tests that cause faults under load share them (`processes.rs`, `engines.rs`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use contracts::Mode;
use contracts::api::{Order, OrderStatus, PlaceOrderRequest};
use converge::workload::Client;
use tokio::time::Instant;

use super::order_request;

/// How long one key may take to get a final answer, retries included: longer than any outage
/// a test causes.
const KEY_DEADLINE: Duration = Duration::from_secs(60);

/// The final answer a key got.
#[derive(Debug)]
pub enum Final {
    /// A 2xx, with the order.
    Acknowledged(Order),
    /// A 4xx other than 409 ("in progress"): refused for good.
    Refused(u16),
}

/// Sends `request` under `key` until it gets a final answer. No answer, a 5xx, or a 409 for a
/// key still being placed: the contract says try again with the same key. Panics if the key
/// has none within [`KEY_DEADLINE`]: a key stuck for good is what the tests look for.
pub async fn place_until_final(client: &Client, request: &PlaceOrderRequest, key: &str) -> Final {
    place_counting_retries(client, request, key, &AtomicUsize::new(0)).await
}

/// [`place_until_final`], adding to `retries` each attempt that had to be made again.
async fn place_counting_retries(
    client: &Client,
    request: &PlaceOrderRequest,
    key: &str,
    retries: &AtomicUsize,
) -> Final {
    let deadline = Instant::now() + KEY_DEADLINE;
    let mut last = None;
    loop {
        let placed = tokio::time::timeout_at(deadline, client.place_order(request, Some(key)))
            .await
            .unwrap_or_else(|_| panic!("key {key}: no answer within {KEY_DEADLINE:?}"));
        match placed.status.map(|s| s.as_u16()) {
            Some(200..=299) => {
                return Final::Acknowledged(
                    placed.order.expect("an acknowledged order has a body"),
                );
            }
            Some(status @ 400..=499) if status != 409 => return Final::Refused(status),
            status => last = status.or(last),
        }
        assert!(
            Instant::now() < deadline,
            "key {key} got no final answer within {KEY_DEADLINE:?} (last status {last:?})"
        );
        retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What clients that retry under their keys ended with.
#[derive(Debug, Default)]
pub struct Outcomes {
    /// Key → the order it got (2xx).
    pub acknowledged: BTreeMap<String, Order>,
    /// Key → the request it was sent with.
    pub requests: BTreeMap<String, PlaceOrderRequest>,
    /// Keys refused with a 4xx (final).
    pub refused: BTreeMap<String, u16>,
}

impl Outcomes {
    pub fn record(&mut self, key: String, request: PlaceOrderRequest, answer: Final) {
        match answer {
            Final::Acknowledged(order) => {
                self.acknowledged.insert(key.clone(), order);
            }
            Final::Refused(status) => {
                self.refused.insert(key.clone(), status);
            }
        }
        self.requests.insert(key, request);
    }

    /// Keys with a final answer.
    pub fn answered(&self) -> usize {
        self.acknowledged.len() + self.refused.len()
    }
}

/// Clients placing orders over some accounts, each order retried under its key until final.
pub struct Load {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<AtomicUsize>,
    retries: Arc<AtomicUsize>,
    workers: tokio::task::JoinHandle<Outcomes>,
}

impl Load {
    /// `concurrency` clients place orders over `accounts` (a few cents each, one to three
    /// items) until `limit` orders are placed, or until [`Load::stop`] without one.
    pub fn start(
        client: &Client,
        accounts: &[String],
        concurrency: usize,
        limit: Option<usize>,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(AtomicUsize::new(0));
        let retries = Arc::new(AtomicUsize::new(0));
        let outcomes = Arc::new(Mutex::new(Outcomes::default()));
        let next = Arc::new(AtomicUsize::new(0));
        let workers = (0..concurrency).map(|_| {
            let (client, accounts) = (client.clone(), accounts.to_vec());
            let (stop, acknowledged, retries) =
                (stop.clone(), acknowledged.clone(), retries.clone());
            let (outcomes, next) = (outcomes.clone(), next.clone());
            async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if stop.load(Ordering::Relaxed) || limit.is_some_and(|limit| i >= limit) {
                        return;
                    }
                    let account = &accounts[i % accounts.len()];
                    let key = format!("load-{i}-{}", uuid::Uuid::new_v4().simple());
                    let request = order_request(account, &[("ramen", 1 + (i % 3) as i64, 1_450)]);
                    let answer = place_counting_retries(&client, &request, &key, &retries).await;
                    if matches!(answer, Final::Acknowledged(_)) {
                        acknowledged.fetch_add(1, Ordering::Relaxed);
                    }
                    outcomes
                        .lock()
                        .expect("never poisoned")
                        .record(key, request, answer);
                }
            }
        });
        let workers = futures::future::join_all(workers);
        let workers = tokio::spawn(async move {
            workers.await;
            Arc::try_unwrap(outcomes)
                .expect("every worker is done")
                .into_inner()
                .expect("never poisoned")
        });
        Self {
            stop,
            acknowledged,
            retries,
            workers,
        }
    }

    /// Orders acknowledged so far.
    pub fn acknowledged(&self) -> usize {
        self.acknowledged.load(Ordering::Relaxed)
    }

    /// Attempts so far that got no final answer and were made again.
    pub fn retries(&self) -> usize {
        self.retries.load(Ordering::Relaxed)
    }

    /// Waits until `count` orders in all are acknowledged; panics, saying `what` was expected,
    /// if they are not within a minute.
    pub async fn wait_acknowledged(&self, count: usize, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.acknowledged() < count {
            assert!(
                !self.workers.is_finished(),
                "{what}: the load ended at {} acknowledged orders",
                self.acknowledged()
            );
            assert!(
                Instant::now() < deadline,
                "{what}: {} of {count} orders acknowledged after a minute",
                self.acknowledged()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until every order of a load with a limit has its final answer.
    pub async fn finish(self) -> Outcomes {
        match self.workers.await {
            Ok(outcomes) => outcomes,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }

    /// Places no new order, and waits until those under way have their final answer.
    pub async fn stop(self) -> Outcomes {
        self.stop.store(true, Ordering::Relaxed);
        self.finish().await
    }
}

/// `count` accounts with `balance_cents` each; their ids.
pub async fn accounts(client: &Client, count: usize, balance_cents: i64) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..count {
        let account = client
            .create_account(&format!("customer {i}"))
            .await
            .unwrap();
        client.top_up(&account.id, balance_cents).await.unwrap();
        ids.push(account.id);
    }
    ids
}

/// The checker is clean once the system is quiet, every acknowledged order ended as its mode
/// says, and every key, asked again, answers its one order. Returns the checker's report.
pub async fn assert_outcomes(client: &Client, mode: Mode, outcomes: &Outcomes) -> checker::Report {
    let report = checker::check(
        client.http(),
        client.base(),
        &checker::CheckOptions {
            acknowledged: outcomes
                .acknowledged
                .values()
                .map(|o| (o.id.clone(), o.account_id.clone()))
                .collect(),
            wait_quiet: Some(Duration::from_secs(60)),
            ..Default::default()
        },
    )
    .await
    .expect("the system can be read");
    assert!(
        report.is_settled(),
        "after the load:\n{}\n{}",
        report
            .violations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
        report
            .in_flight
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    for (key, order) in &outcomes.acknowledged {
        let stored: Order = client.get(&format!("/orders/{}", order.id)).await.unwrap();
        match mode {
            Mode::Strong => assert_eq!(stored.status, OrderStatus::Confirmed, "{key}"),
            _ => assert_ne!(stored.status, OrderStatus::Accepted, "{key} is settled"),
        }
        // Asked again, the key answers the same order: one order per key.
        let again = client.place_order(&outcomes.requests[key], Some(key)).await;
        let again = again.order.expect("a retry gets the order back");
        assert_eq!(again.id, order.id, "key {key} answers one order");
    }
    report
}
