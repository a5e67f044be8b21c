//! The three consistency modes, end to end, on the same small scenario.
//!
//! - `refusals_and_figures`: four accounts (three active with different balances, one
//!   suspended) and an account id that does not exist, a dozen orders of which some must be
//!   refused for each reason. The expected outcome of every order is computed from the
//!   scenario by a tiny model of the rules (unknown account, then suspended, then funds).
//!   - strong: each refusal gets its status (404/403/402) and a JSON error, and leaves every
//!     service's reads exactly as they were; each `201` is `confirmed`, its effects are
//!     visible at once, and the invariants hold right after it.
//!   - queue/cron: every order is `202 accepted`; reads taken before the system is quiet are
//!     checked only for what is guaranteed (the order exists, its status only moves forward,
//!     the wallet stays between its start and its end); once quiet, each order is confirmed
//!     or cancelled with the right reason and the invariants hold.
//!   - every mode, at the end: the figures a user relies on (wallet, loyalty points, stats per
//!     account and in total, the account's order list) equal what the scenario implies.
//! - `funds_race`: money for exactly two orders, six placed at once: exactly two confirmed,
//!   the wallet never negative, the invariants hold.

mod common;

use std::collections::BTreeSet;

use common::*;
use contracts::Mode;
use contracts::api::{
    Account, AccountStatus, AccountTotals, Ledger, LedgerStatus, Order, OrderList, OrderStatus,
    Payment, PaymentStatus, Points, Refusal, Totals, Wallet,
};
use futures::future::join_all;
use reqwest::Method;
use serde_json::Value;

/// An order line as the tests write it: `(sku, quantity, unit_price_cents)`.
type Line = (&'static str, i64, i64);

/// A customer of the scenario.
struct Customer {
    top_up_cents: i64,
    suspended: bool,
}

/// Who an order is placed for.
#[derive(Clone, Copy)]
enum For {
    Customer(usize),
    /// An account id of the right shape that no account has.
    Nobody,
}

struct PlannedOrder {
    of: For,
    items: &'static [Line],
}

const CUSTOMERS: [Customer; 4] = [
    Customer {
        top_up_cents: 20_000,
        suspended: false,
    },
    Customer {
        top_up_cents: 5_000,
        suspended: false,
    },
    Customer {
        top_up_cents: 12_345,
        suspended: false,
    },
    Customer {
        top_up_cents: 8_000,
        suspended: true,
    },
];

/// The orders, in the order they are placed. Every order that runs out of funds asks for
/// more than its account was ever given, and each account's other orders fit its top-up
/// together, so the outcome does not depend on the order in which Payment sees them.
const ORDERS: [PlannedOrder; 13] = [
    PlannedOrder {
        of: For::Customer(0),
        items: &[("ramen", 2, 1_450)],
    },
    PlannedOrder {
        of: For::Customer(0),
        items: &[("margherita", 1, 1_150), ("lemonade", 2, 350)],
    },
    PlannedOrder {
        of: For::Customer(1),
        items: &[("pad-thai", 1, 1_275)],
    },
    PlannedOrder {
        of: For::Customer(1),
        items: &[("banquet", 1, 6_000)],
    },
    PlannedOrder {
        of: For::Customer(2),
        items: &[("tiramisu", 3, 620)],
    },
    PlannedOrder {
        of: For::Customer(3),
        items: &[("falafel-wrap", 1, 890)],
    },
    PlannedOrder {
        of: For::Nobody,
        items: &[("lemonade", 1, 350)],
    },
    PlannedOrder {
        of: For::Customer(0),
        items: &[("caesar-salad", 1, 999)],
    },
    PlannedOrder {
        of: For::Customer(2),
        items: &[("catering", 1, 12_346)],
    },
    PlannedOrder {
        of: For::Customer(1),
        items: &[("pepperoni", 2, 1_390)],
    },
    PlannedOrder {
        of: For::Customer(3),
        items: &[("lemonade", 1, 100)],
    },
    PlannedOrder {
        of: For::Customer(2),
        items: &[("espresso", 1, 199)],
    },
    PlannedOrder {
        of: For::Customer(0),
        items: &[("party-tray", 1, 14_000), ("napkins", 1, 1)],
    },
];

fn total_of(items: &[Line]) -> i64 {
    items
        .iter()
        .map(|(_, quantity, price)| quantity * price)
        .sum()
}

/// What the rules say happens to each order, placed one after the other: refused for an
/// unknown account, then for a suspended one, then for a total above what is left.
fn expected_outcomes() -> Vec<Option<Refusal>> {
    let mut left: Vec<i64> = CUSTOMERS.iter().map(|c| c.top_up_cents).collect();
    ORDERS
        .iter()
        .map(|order| match order.of {
            For::Nobody => Some(Refusal::UnknownAccount),
            For::Customer(i) if CUSTOMERS[i].suspended => Some(Refusal::AccountSuspended),
            For::Customer(i) if total_of(order.items) > left[i] => Some(Refusal::InsufficientFunds),
            For::Customer(i) => {
                left[i] -= total_of(order.items);
                None
            }
        })
        .collect()
}

/// Keeps the scenario honest: every kind of refusal occurs, enough orders succeed, and each
/// refusal for funds is one whatever the order Payment sees them in.
fn check_scenario(outcomes: &[Option<Refusal>]) {
    for refusal in [
        Refusal::UnknownAccount,
        Refusal::AccountSuspended,
        Refusal::InsufficientFunds,
    ] {
        assert!(
            outcomes.contains(&Some(refusal)),
            "the scenario has no order refused for {refusal:?}"
        );
    }
    assert!(outcomes.iter().filter(|o| o.is_none()).count() >= 6);
    for (order, outcome) in ORDERS.iter().zip(outcomes) {
        if let (For::Customer(i), Some(Refusal::InsufficientFunds)) = (order.of, outcome) {
            assert!(total_of(order.items) > CUSTOMERS[i].top_up_cents);
        }
    }
}

async fn get_json(system: &TestSystem, path: &str) -> (u16, Value) {
    system.raw(Method::GET, path, None, "").await
}

async fn get_ok<T: serde::de::DeserializeOwned>(system: &TestSystem, path: &str) -> T {
    let (status, body) = get_json(system, path).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_value(body).unwrap_or_else(|e| panic!("GET {path}: unexpected body: {e}"))
}

async fn post_order(system: &TestSystem, account_id: &str, items: &[Line]) -> (u16, Value) {
    let body = serde_json::to_vec(&order_request(account_id, items)).expect("serializes");
    system
        .raw(Method::POST, "/orders", Some("application/json"), body)
        .await
}

fn error_message(body: &Value) -> &str {
    body.get("error")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| panic!("expected a JSON {{\"error\"}} body, got {body}"))
}

/// Everything a user can read about one account and about the whole system.
async fn snapshot(system: &TestSystem, account_id: &str) -> Vec<(String, u16, Value)> {
    let paths = [
        format!("/accounts/{account_id}/orders"),
        format!("/wallets/{account_id}"),
        format!("/wallets/{account_id}/payments"),
        format!("/loyalty/{account_id}"),
        format!("/loyalty/{account_id}/ledger"),
        format!("/stats/accounts/{account_id}"),
        "/stats".to_owned(),
    ];
    let mut views = Vec::new();
    for path in paths {
        let (status, body) = get_json(system, &path).await;
        views.push((path, status, body));
    }
    views
}

/// The confirmed orders among `orders`, for one account.
fn confirmed_of<'a>(orders: &'a [Order], account_id: &str) -> Vec<&'a Order> {
    orders
        .iter()
        .filter(|o| o.account_id == account_id && o.status == OrderStatus::Confirmed)
        .collect()
}

/// The figures of one account, given its top-up and the orders that must count.
async fn assert_account_figures(
    system: &TestSystem,
    account_id: &str,
    top_up_cents: i64,
    confirmed: &[&Order],
) {
    let spent: i64 = confirmed.iter().map(|o| o.total_cents).sum();
    let points: i64 = confirmed.iter().map(|o| o.total_cents / 100).sum();
    let wallet = system.wallet(account_id).await;
    assert_eq!(
        wallet.balance_cents,
        top_up_cents - spent,
        "wallet of {account_id}: top-up {top_up_cents} minus {spent} spent"
    );
    assert_eq!(wallet.held_cents, 0, "nothing stays held: {wallet:?}");
    assert_eq!(wallet.top_ups_cents, top_up_cents);

    let loyalty: Points = get_ok(system, &format!("/loyalty/{account_id}")).await;
    assert_eq!(loyalty.points, points, "loyalty points of {account_id}");
    let ledger: Ledger = get_ok(system, &format!("/loyalty/{account_id}/ledger")).await;
    let credited: BTreeSet<&str> = ledger
        .entries
        .iter()
        .filter(|e| e.status == LedgerStatus::Credited)
        .map(|e| e.order_id.as_str())
        .collect();
    let expected: BTreeSet<&str> = confirmed.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(
        credited, expected,
        "loyalty credits exactly the confirmed orders"
    );

    let stats: AccountTotals = get_ok(system, &format!("/stats/accounts/{account_id}")).await;
    assert_eq!(stats.orders, confirmed.len() as i64, "stats orders");
    assert_eq!(stats.revenue_cents, spent, "stats revenue");

    for order in confirmed {
        let payment: Payment = get_ok(system, &format!("/payments/{}", order.id)).await;
        assert_eq!(payment.status, PaymentStatus::Captured, "{payment:?}");
        assert_eq!(payment.amount_cents, order.total_cents);
    }
}

fn assert_order_body(order: &Order, account_id: &str, items: &[Line], status: OrderStatus) {
    assert_eq!(order.status, status, "{order:?}");
    assert_eq!(order.account_id, account_id);
    assert_eq!(order.total_cents, total_of(items), "{order:?}");
    assert_eq!(order.points, total_of(items) / 100, "{order:?}");
    assert_eq!(order.items.len(), items.len());
}

each_mode!(refusals_and_figures, |mode| async move {
    let system = spawn(mode).await;
    let outcomes = expected_outcomes();
    check_scenario(&outcomes);

    let mut accounts: Vec<Account> = Vec::new();
    for customer in &CUSTOMERS {
        let account = system.account_with(customer.top_up_cents).await;
        if customer.suspended {
            let suspended = system.client.suspend(&account.id).await.expect("suspended");
            assert_eq!(suspended.status, AccountStatus::Suspended);
        }
        accounts.push(account);
    }
    let nobody = format!("acc_{}", uuid::Uuid::new_v4().simple());
    let account_id = |of: For| match of {
        For::Customer(i) => accounts[i].id.clone(),
        For::Nobody => nobody.clone(),
    };

    // Orders as acknowledged, with the index of their plan.
    let mut placed: Vec<(usize, Order)> = Vec::new();
    let mut acknowledged: Vec<(String, String)> = Vec::new();
    for (i, (plan, outcome)) in ORDERS.iter().zip(&outcomes).enumerate() {
        let account_id = account_id(plan.of);
        let before = snapshot(&system, &account_id).await;
        let (status, body) = post_order(&system, &account_id, plan.items).await;
        match (mode, outcome) {
            (Mode::Strong, Some(refusal)) => {
                assert_eq!(
                    status,
                    refusal.status_code(),
                    "order {i} must be refused for {refusal:?}: {body}"
                );
                let error = error_message(&body);
                assert!(
                    error.contains(refusal.message()),
                    "order {i}: {error:?} should say {:?}",
                    refusal.message()
                );
                assert_eq!(
                    snapshot(&system, &account_id).await,
                    before,
                    "refused order {i} ({refusal:?}) changed what users read"
                );
            }
            (Mode::Strong, None) => {
                assert_eq!(status, 201, "order {i} must be confirmed: {body}");
                let order: Order = serde_json::from_value(body).expect("an order");
                assert_order_body(&order, &account_id, plan.items, OrderStatus::Confirmed);
                acknowledged.push((order.id.clone(), account_id.clone()));
                placed.push((i, order));
                // Once the 201 is out, every service's reads reflect the order.
                system.assert_invariants(&acknowledged).await;
                let orders: Vec<Order> = placed.iter().map(|(_, o)| o.clone()).collect();
                let For::Customer(c) = plan.of else {
                    unreachable!("only a customer's order can be confirmed")
                };
                assert_account_figures(
                    &system,
                    &account_id,
                    CUSTOMERS[c].top_up_cents,
                    &confirmed_of(&orders, &account_id),
                )
                .await;
            }
            (Mode::Queue | Mode::Cron, _) => {
                assert_eq!(status, 202, "order {i} must be accepted: {body}");
                let order: Order = serde_json::from_value(body).expect("an order");
                assert_order_body(&order, &account_id, plan.items, OrderStatus::Accepted);
                // The order exists as soon as it is acknowledged; it may already be settled,
                // but only to the outcome it must end with.
                let read = system.order(&order.id).await;
                let settled = if outcome.is_some() {
                    OrderStatus::Cancelled
                } else {
                    OrderStatus::Confirmed
                };
                assert!(
                    [OrderStatus::Accepted, settled].contains(&read.status),
                    "order {i} read back as {read:?}"
                );
                acknowledged.push((order.id.clone(), account_id.clone()));
                placed.push((i, order));
            }
        }
    }

    if mode != Mode::Strong {
        assert_lagging_reads_are_bounded(&system, &accounts, &outcomes).await;
    }
    system.wait_quiet().await;
    system.assert_invariants(&acknowledged).await;

    // Every acknowledged order, read back once quiet.
    let mut settled: Vec<Order> = Vec::new();
    for (i, order) in &placed {
        let read = system.order(&order.id).await;
        match outcomes[*i] {
            None => {
                assert_eq!(read.status, OrderStatus::Confirmed, "order {i}: {read:?}");
                assert_eq!(read.reason, None);
            }
            Some(refusal) => {
                assert_eq!(read.status, OrderStatus::Cancelled, "order {i}: {read:?}");
                assert_eq!(read.reason, Some(refusal), "order {i}: {read:?}");
                let (status, body) = get_json(&system, &format!("/payments/{}", read.id)).await;
                assert!(
                    status == 404 || body["status"] != "captured",
                    "cancelled order {i} has a captured payment: {body}"
                );
            }
        }
        assert!(read.settled_at_ms.is_some(), "order {i}: {read:?}");
        settled.push(read);
    }
    let confirmed_count = outcomes.iter().filter(|o| o.is_none()).count();
    assert_eq!(
        settled
            .iter()
            .filter(|o| o.status == OrderStatus::Confirmed)
            .count(),
        confirmed_count
    );

    for (customer, account) in CUSTOMERS.iter().zip(&accounts) {
        let read: Account = get_ok(&system, &format!("/accounts/{}", account.id)).await;
        let status = if customer.suspended {
            AccountStatus::Suspended
        } else {
            AccountStatus::Active
        };
        assert_eq!(read.status, status);
        assert_account_figures(
            &system,
            &account.id,
            customer.top_up_cents,
            &confirmed_of(&settled, &account.id),
        )
        .await;
        // The account's orders: in strong mode only those placed, in the eventual modes
        // every acknowledged one, cancelled ones included.
        let listed: OrderList = get_ok(&system, &format!("/accounts/{}/orders", account.id)).await;
        let listed: BTreeSet<String> = listed.orders.into_iter().map(|o| o.id).collect();
        let expected: BTreeSet<String> = settled
            .iter()
            .filter(|o| o.account_id == account.id)
            .map(|o| o.id.clone())
            .collect();
        assert_eq!(listed, expected, "orders listed for {}", account.id);
    }

    // The account that does not exist: no wallet, no points, nothing counted.
    let (status, body) = get_json(&system, &format!("/wallets/{nobody}")).await;
    assert_eq!(status, 404, "{body}");
    let points: Points = get_ok(&system, &format!("/loyalty/{nobody}")).await;
    assert_eq!(points.points, 0);
    let stats: AccountTotals = get_ok(&system, &format!("/stats/accounts/{nobody}")).await;
    assert_eq!((stats.orders, stats.revenue_cents), (0, 0));

    let totals: Totals = get_ok(&system, "/stats").await;
    let revenue: i64 = ORDERS
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| outcome.is_none())
        .map(|(order, _)| total_of(order.items))
        .sum();
    assert_eq!(totals.orders, confirmed_count as i64, "GET /stats orders");
    assert_eq!(totals.revenue_cents, revenue, "GET /stats revenue");
    system.stop().await;
});

/// Before the system is quiet, reads may lag: only what holds at every moment is checked.
/// The Order service answers for its own orders at once; a wallet only loses what its
/// confirmed orders cost (no order here is cancelled after a capture), so it stays between
/// its top-up and its final balance and never goes below zero.
async fn assert_lagging_reads_are_bounded(
    system: &TestSystem,
    accounts: &[Account],
    outcomes: &[Option<Refusal>],
) {
    for (c, (customer, account)) in CUSTOMERS.iter().zip(accounts).enumerate() {
        let final_balance = customer.top_up_cents
            - ORDERS
                .iter()
                .zip(outcomes)
                .filter(|(order, outcome)| {
                    matches!(order.of, For::Customer(i) if i == c) && outcome.is_none()
                })
                .map(|(order, _)| total_of(order.items))
                .sum::<i64>();
        let wallet: Wallet = system.wallet(&account.id).await;
        assert!(
            (final_balance..=customer.top_up_cents).contains(&wallet.balance_cents),
            "a lagging wallet must lie between {final_balance} and {}: {wallet:?}",
            customer.top_up_cents
        );
        assert!(final_balance >= 0);
        let placed = ORDERS
            .iter()
            .filter(|o| matches!(o.of, For::Customer(i) if i == c))
            .count();
        let listed: OrderList = get_ok(system, &format!("/accounts/{}/orders", account.id)).await;
        assert_eq!(
            listed.orders.len(),
            placed,
            "every acknowledged order is listed at once"
        );
    }
}

each_mode!(funds_race, |mode| async move {
    const ATTEMPTS: usize = 6;
    const AFFORDABLE: usize = 2;
    let items: &[Line] = &[("pad-thai", 2, 1_275), ("lemonade", 1, 350)];
    let total = total_of(items);
    let system = spawn(mode).await;
    let account = system.account_with(AFFORDABLE as i64 * total).await;

    // Wallet reads race the orders: none may ever show a negative balance.
    let (answers, wallets) = tokio::join!(
        join_all((0..ATTEMPTS).map(|_| system.place(&account.id, items, None))),
        join_all((0..ATTEMPTS).map(|_| system.wallet(&account.id))),
    );
    for wallet in &wallets {
        assert!(
            wallet.balance_cents >= 0 && wallet.balance_cents - wallet.held_cents >= 0,
            "a wallet read during the race: {wallet:?}"
        );
    }

    let statuses: Vec<u16> = answers
        .iter()
        .map(|a| a.status.expect("an answer").as_u16())
        .collect();
    let acknowledged: Vec<Order> = answers.iter().filter_map(|a| a.order.clone()).collect();
    match mode {
        Mode::Strong => {
            let mut expected = vec![201; AFFORDABLE];
            expected.extend(vec![402; ATTEMPTS - AFFORDABLE]);
            let mut sorted = statuses.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, expected, "exactly two confirmed, the rest 402");
            assert_eq!(acknowledged.len(), AFFORDABLE);
        }
        Mode::Queue | Mode::Cron => {
            assert_eq!(statuses, vec![202; ATTEMPTS]);
            assert_eq!(acknowledged.len(), ATTEMPTS);
        }
    }

    system.wait_quiet().await;
    let mut settled = Vec::new();
    for order in &acknowledged {
        settled.push(system.order(&order.id).await);
    }
    let confirmed = confirmed_of(&settled, &account.id);
    assert_eq!(confirmed.len(), AFFORDABLE, "{settled:?}");
    for order in settled
        .iter()
        .filter(|o| o.status != OrderStatus::Confirmed)
    {
        assert_eq!(order.status, OrderStatus::Cancelled, "{order:?}");
        assert_eq!(order.reason, Some(Refusal::InsufficientFunds), "{order:?}");
    }
    let wallet = system.wallet(&account.id).await;
    assert_eq!(wallet.balance_cents, 0, "{wallet:?}");
    assert_account_figures(&system, &account.id, AFFORDABLE as i64 * total, &confirmed).await;
    let acknowledged: Vec<(String, String)> = acknowledged
        .iter()
        .map(|o| (o.id.clone(), o.account_id.clone()))
        .collect();
    system.assert_invariants(&acknowledged).await;
    system.stop().await;
});
