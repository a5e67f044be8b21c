//! Strong mode: the coordinator dies at either side of its decision, and the system restarts.
//!
//! The Order service has two crash points (`fail` failpoints, compiled in for tests only):
//! - `order::before-decision`: every participant voted yes (Payment holds the funds, Loyalty
//!   and Stats hold pending entries) but no decision is logged. After the restart the
//!   participants' in-doubt resolvers ask the coordinator, which knows nothing of the
//!   transaction and answers abort (presumed abort): the order exists nowhere, the funds are
//!   released. The client's retry with the same `Idempotency-Key` places the order.
//! - `order::after-decision`: `commit` is logged with the order, but no participant was told.
//!   After the restart the coordinator's recovery finishes the commit everywhere, exactly once,
//!   and the client's retry with the same key gets the first order back (`201`, same id).
//!
//! Failpoints are process-global, so these tests live in their own binary and take turns:
//! each holds a `fail::FailScenario` (a global lock) for its whole length.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use contracts::Mode;
use contracts::api::{
    AccountTotals, Ledger, LedgerStatus, Order, OrderList, OrderStatus, Payment, PaymentList,
    PaymentStatus, Points, Progress, Totals,
};
use converge::system::SystemConfig;
use serde::de::DeserializeOwned;

const BEFORE_DECISION: &str = "order::before-decision";
const AFTER_DECISION: &str = "order::after-decision";

const TOP_UP: i64 = 10_000;
const ITEMS: [(&str, i64, i64); 2] = [("ramen", 2, 1_450), ("lemonade", 1, 350)];
const TOTAL: i64 = 2 * 1_450 + 350;
const POINTS: i64 = TOTAL / 100;

// ---------------------------------------------------------------------------------------------
// Helpers.

async fn read<T: DeserializeOwned>(system: &TestSystem, path: &str) -> T {
    system
        .client
        .get(path)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e:#}"))
}

/// `POST /orders` with an `Idempotency-Key`: the status and the JSON body, whatever they are.
async fn post_order(system: &TestSystem, account_id: &str, key: &str) -> (u16, serde_json::Value) {
    let response = system
        .client
        .http()
        .post(format!("{}/orders", system.client.base()))
        .header("idempotency-key", key)
        .json(&order_request(account_id, &ITEMS))
        .send()
        .await
        .expect("the gateway answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("status {status}: body is not JSON: {text:?}"));
    (status, body)
}

/// What each service holds in doubt, by service name.
async fn in_doubt(system: &TestSystem) -> BTreeMap<String, i64> {
    let progress: Progress = read(system, "/progress").await;
    progress
        .services
        .into_iter()
        .map(|(service, status)| (service, status.in_doubt))
        .collect()
}

fn doubts(order: i64, participants: i64) -> BTreeMap<String, i64> {
    [
        ("account", 0),
        ("order", order),
        ("payment", participants),
        ("loyalty", participants),
        ("stats", participants),
    ]
    .into_iter()
    .map(|(service, n)| (service.to_owned(), n))
    .collect()
}

async fn orders_of(system: &TestSystem, account_id: &str) -> Vec<Order> {
    read::<OrderList>(system, &format!("/accounts/{account_id}/orders"))
        .await
        .orders
}

/// A strong-mode system whose participants ask about an undecided entry after 400 ms.
async fn strong_system() -> TestSystem {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut config = SystemConfig::new(Mode::Strong, dir.path().to_owned());
    config.in_doubt_after = Duration::from_millis(400);
    config.call_timeout = Duration::from_millis(2_000);
    spawn_with(config, Some(dir)).await
}

/// A system that crashed at `point` while placing one order with `key`, and restarted.
struct Crashed {
    system: TestSystem,
    account_id: String,
    /// The order the decision was logged with (after the decision only).
    decided: Option<String>,
}

/// Places an order with `key` that dies at `point`, checks what the participants hold at that
/// moment, and crashes and restarts the system before any recovery could run.
async fn crash_at(point: &str, key: &str) -> Crashed {
    let mut system = strong_system().await;
    let account_id = system.account_with(TOP_UP).await.id;

    fail::cfg(point, "return").expect("a valid failpoint action");
    let (status, body) = post_order(&system, &account_id, key).await;
    fail::remove(point);
    assert!(
        (500..600).contains(&status),
        "the request dies at {point}: {status} {body}"
    );
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "a JSON error: {body}"
    );

    // Every participant prepared: the funds are held, nothing is counted yet. Read at once,
    // well within `in_doubt_after`, so no resolver has run.
    let wallet = system.wallet(&account_id).await;
    assert_eq!(
        (wallet.balance_cents, wallet.held_cents),
        (TOP_UP, TOTAL),
        "prepared at Payment: (balance, held)"
    );
    let points: Points = read(&system, &format!("/loyalty/{account_id}")).await;
    assert_eq!(points.points, 0, "a pending entry is not counted");
    let orders = orders_of(&system, &account_id).await;
    let decided = if point == AFTER_DECISION {
        // The decision is logged with the order; the coordinator owes the commit.
        assert_eq!(
            in_doubt(&system).await,
            doubts(1, 1),
            "in doubt at the crash"
        );
        assert_eq!(orders.len(), 1, "the order is logged with its decision");
        assert_eq!(
            (orders[0].status, orders[0].total_cents),
            (OrderStatus::Confirmed, TOTAL)
        );
        Some(orders[0].id.clone())
    } else {
        assert_eq!(
            in_doubt(&system).await,
            doubts(0, 1),
            "in doubt at the crash"
        );
        assert!(orders.is_empty(), "no decision, no order: {orders:?}");
        None
    };

    system.crash_and_restart().await;
    Crashed {
        system,
        account_id,
        decided,
    }
}

/// Exactly one order for the account, `order_id`, confirmed and applied once everywhere.
async fn assert_applied_once(system: &TestSystem, account_id: &str, order_id: &str) {
    let orders = orders_of(system, account_id).await;
    let summary: Vec<_> = orders
        .iter()
        .map(|o| (o.id.as_str(), o.status, o.total_cents))
        .collect();
    assert_eq!(
        summary,
        [(order_id, OrderStatus::Confirmed, TOTAL)],
        "the account's orders"
    );

    let payment: Payment = read(system, &format!("/payments/{order_id}")).await;
    assert_eq!(
        (payment.status, payment.amount_cents),
        (PaymentStatus::Captured, TOTAL)
    );
    let payments: PaymentList = read(system, &format!("/wallets/{account_id}/payments")).await;
    assert_eq!(payments.payments.len(), 1, "{:?}", payments.payments);
    let wallet = system.wallet(account_id).await;
    assert_eq!(
        (wallet.balance_cents, wallet.held_cents),
        (TOP_UP - TOTAL, 0),
        "wallet (balance, held)"
    );

    let points: Points = read(system, &format!("/loyalty/{account_id}")).await;
    assert_eq!(points.points, POINTS);
    let ledger: Ledger = read(system, &format!("/loyalty/{account_id}/ledger")).await;
    let entries: Vec<_> = ledger
        .entries
        .iter()
        .map(|e| (e.order_id.as_str(), e.status, e.points))
        .collect();
    assert_eq!(entries, [(order_id, LedgerStatus::Credited, POINTS)]);

    let totals: AccountTotals = read(system, &format!("/stats/accounts/{account_id}")).await;
    assert_eq!((totals.orders, totals.revenue_cents), (1, TOTAL));
    let totals: Totals = read(system, "/stats").await;
    assert_eq!((totals.orders, totals.revenue_cents), (1, TOTAL));

    system
        .assert_invariants(&[(order_id.to_owned(), account_id.to_owned())])
        .await;
}

// ---------------------------------------------------------------------------------------------
// Crash before the decision.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_the_decision_aborts_everywhere() {
    let _scenario = fail::FailScenario::setup();
    let Crashed {
        system, account_id, ..
    } = crash_at(BEFORE_DECISION, "before-decision-1").await;

    // The resolvers ask the restarted coordinator, which has no decision: abort.
    system.wait_quiet().await;
    assert_eq!(in_doubt(&system).await, doubts(0, 0));
    assert!(orders_of(&system, &account_id).await.is_empty());
    let wallet = system.wallet(&account_id).await;
    assert_eq!(
        (wallet.balance_cents, wallet.held_cents),
        (TOP_UP, 0),
        "the held funds are released"
    );
    let payments: PaymentList = read(&system, &format!("/wallets/{account_id}/payments")).await;
    assert!(payments.payments.is_empty(), "{:?}", payments.payments);
    let points: Points = read(&system, &format!("/loyalty/{account_id}")).await;
    assert_eq!(points.points, 0);
    let ledger: Ledger = read(&system, &format!("/loyalty/{account_id}/ledger")).await;
    assert!(ledger.entries.is_empty(), "{:?}", ledger.entries);
    let totals: Totals = read(&system, "/stats").await;
    assert_eq!((totals.orders, totals.revenue_cents), (0, 0));
    system.assert_invariants(&[]).await;
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_crash_before_the_decision_places_the_order() {
    let _scenario = fail::FailScenario::setup();
    let key = "before-decision-2";
    let Crashed {
        system, account_id, ..
    } = crash_at(BEFORE_DECISION, key).await;

    // Right after the restart, with the first attempt still in doubt at the participants.
    let (status, body) = post_order(&system, &account_id, key).await;
    assert_eq!(
        status, 201,
        "the key was forgotten, so the retry places it: {body}"
    );
    let order: Order = serde_json::from_value(body).expect("an order");
    assert_eq!(order.status, OrderStatus::Confirmed);

    system.wait_quiet().await;
    assert_applied_once(&system, &account_id, &order.id).await;
    system.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Crash after the decision.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_decision_commits_everywhere() {
    let _scenario = fail::FailScenario::setup();
    let Crashed {
        system,
        account_id,
        decided,
    } = crash_at(AFTER_DECISION, "after-decision-1").await;
    let order_id = decided.expect("a logged decision");

    // The restarted coordinator resends the logged commit.
    system.wait_quiet().await;
    assert_eq!(in_doubt(&system).await, doubts(0, 0));
    assert_applied_once(&system, &account_id, &order_id).await;
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_crash_after_the_decision_answers_the_first_order() {
    let _scenario = fail::FailScenario::setup();
    let key = "after-decision-2";
    let Crashed {
        system,
        account_id,
        decided,
    } = crash_at(AFTER_DECISION, key).await;
    let order_id = decided.expect("a logged decision");

    let (status, body) = post_order(&system, &account_id, key).await;
    assert_eq!(
        (status, body["id"].as_str(), body["status"].as_str()),
        (201, Some(order_id.as_str()), Some("confirmed")),
        "the retry gets the first answer: {body}"
    );

    system.wait_quiet().await;
    assert_applied_once(&system, &account_id, &order_id).await;
    system.stop().await;
}
