//! Crash, restart and recovery of a whole system, driven through the public API.
//!
//! Covered here:
//! - **Lagging consumers survive crashes** (queue and cron): Payment, Loyalty and Stats are
//!   slowed down so they lag behind the Order service, 30 orders are acknowledged over four
//!   accounts (some must end cancelled: a suspended account, a wallet that runs dry), and the
//!   system is killed right after the last acknowledgement, restarted, killed again as soon as
//!   Payment has decided orders (the saga half done), and restarted again. Once quiet, every
//!   acknowledged order ended as a sequential replay of the inputs says it must, and every
//!   effect (capture, points, counts) was applied exactly once; an `Idempotency-Key` answered
//!   before the crashes still gets the same answer.
//! - **A participant slower than the call timeout** (strong; Stats, and Payment): the order is
//!   refused with a `503` and, once quiet (the in-doubt resolvers have asked the coordinator,
//!   which answers abort), nothing of it is left anywhere. With the slowness gone, the same
//!   account orders normally.
//! - **A poison event** (queue): a row that is not a valid event is written into the Order
//!   service's outbox behind the services' backs (a producer bug). Every consumer of that feed
//!   sets it aside in its dead-letter list after its retries, and the orders behind it still
//!   flow through. An operator reads its body, replays it (it fails again) and discards it
//!   with `converge dead-letters`, which needs the shared secret.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use contracts::api::{
    AccountTotals, Ledger, LedgerStatus, Order, OrderList, OrderStatus, Payment, PaymentList,
    PaymentStatus, Points, Progress, Refusal, Totals,
};
use contracts::internal::DeadLetter;
use contracts::{Mode, ServiceName};
use converge::system::SystemConfig;
use serde::de::DeserializeOwned;

// ---------------------------------------------------------------------------------------------
// Small helpers over the public API.

/// `GET path`, which must answer `200` with a `T`.
async fn read<T: DeserializeOwned>(system: &TestSystem, path: &str) -> T {
    system
        .client
        .get(path)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e:#}"))
}

async fn progress(system: &TestSystem) -> Progress {
    read(system, "/progress").await
}

/// How far `consumer` has got in `feed` (0 before its first event).
fn position(progress: &Progress, consumer: &str, feed: &str) -> i64 {
    progress
        .services
        .get(consumer)
        .and_then(|status| status.consumers.get(feed))
        .map_or(0, |c| c.position.seq)
}

/// Polls `/progress` until `done` holds, for at most `timeout`.
async fn progress_until(
    system: &TestSystem,
    timeout: Duration,
    what: &str,
    done: impl Fn(&Progress) -> bool,
) -> Progress {
    let deadline = Instant::now() + timeout;
    loop {
        let progress = progress(system).await;
        if done(&progress) {
            return progress;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not reached within {timeout:?}; last progress: {}",
            serde_json::to_string(&progress.services).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `POST /orders` with an optional `Idempotency-Key`: the status and the JSON body, whatever
/// they are.
async fn post_order(
    system: &TestSystem,
    account_id: &str,
    items: &[(&str, i64, i64)],
    key: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut request = system
        .client
        .http()
        .post(format!("{}/orders", system.client.base()))
        .json(&order_request(account_id, items));
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("status {status}: body is not JSON: {text:?}"));
    (status, body)
}

fn total_of(items: &[(&str, i64, i64)]) -> i64 {
    items
        .iter()
        .map(|(_, quantity, price)| quantity * price)
        .sum()
}

/// One point per whole currency unit.
fn points_of(total_cents: i64) -> i64 {
    total_cents / 100
}

fn fast_config(mode: Mode) -> (SystemConfig, tempfile::TempDir) {
    common::config(mode)
}

// ---------------------------------------------------------------------------------------------
// The books: what the services must show for a set of orders whose outcome is known.

/// An account as a test opened it.
struct Customer {
    id: String,
    top_up_cents: i64,
}

/// An acknowledged order and how it must end.
struct Expected {
    id: String,
    customer: usize,
    total_cents: i64,
    /// `None`: confirmed.
    refusal: Option<Refusal>,
}

/// Checks every figure the orders imply, service by service, then runs the checker.
async fn assert_books(system: &TestSystem, customers: &[Customer], orders: &[Expected]) {
    for order in orders {
        let got: Order = read(system, &format!("/orders/{}", order.id)).await;
        let (status, payment_status) = match order.refusal {
            None => (OrderStatus::Confirmed, PaymentStatus::Captured),
            Some(_) => (OrderStatus::Cancelled, PaymentStatus::Declined),
        };
        assert_eq!(
            (got.status, got.reason, got.total_cents, got.points),
            (
                status,
                order.refusal,
                order.total_cents,
                points_of(order.total_cents)
            ),
            "order {} (status, reason, total, points)",
            order.id
        );
        let payment: Payment = read(system, &format!("/payments/{}", order.id)).await;
        assert_eq!(
            (payment.status, payment.amount_cents, payment.reason),
            (payment_status, order.total_cents, order.refusal),
            "payment of order {}",
            order.id
        );
    }

    let (mut all_orders, mut all_revenue) = (0, 0);
    for (index, customer) in customers.iter().enumerate() {
        let own: Vec<&Expected> = orders.iter().filter(|o| o.customer == index).collect();
        let confirmed: Vec<&&Expected> = own.iter().filter(|o| o.refusal.is_none()).collect();
        let spent: i64 = confirmed.iter().map(|o| o.total_cents).sum();
        let points: i64 = confirmed.iter().map(|o| points_of(o.total_cents)).sum();
        let id = &customer.id;

        let listed: OrderList = read(system, &format!("/accounts/{id}/orders")).await;
        let listed: Vec<String> = listed.orders.into_iter().map(|o| o.id).collect();
        let mut placed: Vec<String> = own.iter().map(|o| o.id.clone()).collect();
        placed.sort();
        assert_eq!(
            listed, placed,
            "orders of account {id}: none lost, none extra"
        );

        let wallet = system.wallet(id).await;
        assert_eq!(
            (
                wallet.balance_cents,
                wallet.held_cents,
                wallet.top_ups_cents
            ),
            (customer.top_up_cents - spent, 0, customer.top_up_cents),
            "wallet of account {id} (balance, held, top-ups)"
        );
        let payments: PaymentList = read(system, &format!("/wallets/{id}/payments")).await;
        assert_eq!(
            payments.payments.len(),
            own.len(),
            "one payment per order of account {id}"
        );

        let got: Points = read(system, &format!("/loyalty/{id}")).await;
        assert_eq!(got.points, points, "points of account {id}");
        let ledger: Ledger = read(system, &format!("/loyalty/{id}/ledger")).await;
        let entries: BTreeMap<String, (LedgerStatus, i64)> = ledger
            .entries
            .iter()
            .map(|e| (e.order_id.clone(), (e.status, e.points)))
            .collect();
        assert_eq!(
            entries.len(),
            ledger.entries.len(),
            "one ledger entry per order of account {id}: {:?}",
            ledger.entries
        );
        assert_eq!(
            entries.keys().cloned().collect::<Vec<_>>(),
            placed,
            "ledger of account {id}: an entry for each order"
        );
        for order in &own {
            let (status, entry_points) = entries[&order.id];
            if order.refusal.is_none() {
                assert_eq!(
                    (status, entry_points),
                    (LedgerStatus::Credited, points_of(order.total_cents)),
                    "ledger entry of confirmed order {}",
                    order.id
                );
            } else {
                assert_eq!(
                    status,
                    LedgerStatus::Reversed,
                    "ledger entry of cancelled order {}",
                    order.id
                );
            }
        }

        let totals: AccountTotals = read(system, &format!("/stats/accounts/{id}")).await;
        assert_eq!(
            (totals.orders, totals.revenue_cents),
            (confirmed.len() as i64, spent),
            "stats of account {id} (orders, revenue)"
        );
        all_orders += confirmed.len() as i64;
        all_revenue += spent;
    }
    let totals: Totals = read(system, "/stats").await;
    assert_eq!(
        (totals.orders, totals.revenue_cents),
        (all_orders, all_revenue),
        "overall stats (orders, revenue)"
    );

    let acknowledged: Vec<(String, String)> = orders
        .iter()
        .map(|o| (o.id.clone(), customers[o.customer].id.clone()))
        .collect();
    system.assert_invariants(&acknowledged).await;
}

// ---------------------------------------------------------------------------------------------
// 1. Lagging consumers, crashed twice.

/// The accounts: `(top-up, suspended)`. The second one's wallet runs dry part-way through; the
/// third is suspended, so all its orders are cancelled.
const CUSTOMERS: [(i64, bool); 4] = [
    (60_000, false),
    (9_000, false),
    (40_000, true),
    (45_000, false),
];
const ORDERS: usize = 30;

/// Order `i`: which customer places it, and its items.
fn order_plan(i: usize) -> (usize, Vec<(&'static str, i64, i64)>) {
    let customer = match i % 6 {
        0 | 3 => 0,
        1 | 4 => 1,
        2 => 3,
        _ => 2,
    };
    // Ramen for everyone; lemonade with every third order, a tiramisu with every fifth.
    let mut items = vec![("ramen", 1 + (i % 2) as i64, 1_450)];
    if matches!(i % 3, 0) {
        items.push(("lemonade", 2, 350));
    }
    if matches!(i % 5, 0) {
        items.push(("tiramisu", 1, 620));
    }
    (customer, items)
}

/// What Payment must decide for each order, replaying them in acknowledgement order: refused
/// if the account is suspended, else captured while the wallet covers the total.
fn replay(plans: &[(usize, i64)]) -> Vec<Option<Refusal>> {
    let mut balances: Vec<i64> = CUSTOMERS.iter().map(|(top_up, _)| *top_up).collect();
    plans
        .iter()
        .map(|&(customer, total)| {
            if CUSTOMERS[customer].1 {
                Some(Refusal::AccountSuspended)
            } else if balances[customer] >= total {
                balances[customer] -= total;
                None
            } else {
                Some(Refusal::InsufficientFunds)
            }
        })
        .collect()
}

async fn lagging_consumers_survive_two_crashes(mode: Mode) {
    let started = Instant::now();
    let (mut config, dir) = fast_config(mode);
    config.delays.payment = Duration::from_millis(300);
    config.delays.loyalty = Duration::from_millis(250);
    config.delays.stats = Duration::from_millis(400);
    let mut system = spawn_with(config, Some(dir)).await;

    let mut customers = Vec::new();
    for (top_up_cents, suspended) in CUSTOMERS {
        let account = system.account_with(top_up_cents).await;
        if suspended {
            system.client.suspend(&account.id).await.expect("suspended");
        }
        customers.push(Customer {
            id: account.id,
            top_up_cents,
        });
    }

    // One at a time, so that the acknowledgement order (Payment's order) is known.
    let mut placed = Vec::new();
    for i in 0..ORDERS {
        let (customer, items) = order_plan(i);
        let key = format!("recovery-{i}");
        let (status, body) = post_order(&system, &customers[customer].id, &items, Some(&key)).await;
        assert_eq!(status, 202, "order {i} acknowledged: {body}");
        let order: Order = serde_json::from_value(body).expect("an order");
        assert_eq!(order.status, OrderStatus::Accepted);
        placed.push((order, customer, total_of(&items), key));
    }
    let outcomes = replay(
        &placed
            .iter()
            .map(|(_, customer, total, _)| (*customer, *total))
            .collect::<Vec<_>>(),
    );
    // The inputs must exercise every ending, or the test proves less than it claims.
    for wanted in [
        None,
        Some(Refusal::InsufficientFunds),
        Some(Refusal::AccountSuspended),
    ] {
        assert!(
            outcomes.contains(&wanted),
            "the plan has no {wanted:?} order"
        );
    }

    // Killed right after the last acknowledgement, while the consumers lag.
    let before = progress(&system).await;
    assert!(
        !before.quiet,
        "the system was already quiet at the first crash; nothing was left to recover: {}",
        serde_json::to_string(&before.services).unwrap()
    );
    system.crash_and_restart().await;

    // Killed again in the middle of the saga: as soon as Payment has decided orders since the
    // restart, while the cancellations it causes are still to be compensated.
    let decided_before = position(&before, "payment", "order");
    let midway = progress_until(
        &system,
        Duration::from_secs(10),
        "Payment deciding orders after the first restart",
        |p| position(p, "payment", "order") > decided_before,
    )
    .await;
    assert!(
        !midway.quiet,
        "the system was already quiet at the second crash: {}",
        serde_json::to_string(&midway.services).unwrap()
    );
    system.crash_and_restart().await;
    system.wait_quiet().await;

    let expected: Vec<Expected> = placed
        .iter()
        .zip(&outcomes)
        .map(|((order, customer, total, _), refusal)| Expected {
            id: order.id.clone(),
            customer: *customer,
            total_cents: *total,
            refusal: *refusal,
        })
        .collect();
    assert_books(&system, &customers, &expected).await;

    // A key answered before the crashes still gets its first answer, and places nothing.
    let (order, customer, _, key) = placed.last().expect("orders were placed");
    let (_, items) = order_plan(ORDERS - 1);
    let (status, body) = post_order(&system, &customers[*customer].id, &items, Some(key)).await;
    assert_eq!(status, 202, "retry of {key}: {body}");
    assert_eq!(
        body["id"],
        order.id.as_str(),
        "retry of {key} answers the first order"
    );
    system.wait_quiet().await;
    assert_books(&system, &customers, &expected).await;

    eprintln!(
        "{mode}: two crashes and recovery in {:?}",
        started.elapsed()
    );
    system.stop().await;
}

mod lagging_consumers_survive_two_crashes {
    use super::*;

    each_pair!(queue, || lagging_consumers_survive_two_crashes(Mode::Queue));
    each_pair!(cron, || lagging_consumers_survive_two_crashes(Mode::Cron));
}

// ---------------------------------------------------------------------------------------------
// 2. Strong mode: a participant slower than the call timeout.

const RAMEN: [(&str, i64, i64); 1] = [("ramen", 2, 1_450)];

/// Nothing of any order shows anywhere for this account: the wallet is as topped up.
async fn assert_untouched(system: &TestSystem, account_id: &str, top_up_cents: i64) {
    let listed: OrderList = read(system, &format!("/accounts/{account_id}/orders")).await;
    assert!(listed.orders.is_empty(), "orders: {:?}", listed.orders);
    let wallet = system.wallet(account_id).await;
    assert_eq!(
        (
            wallet.balance_cents,
            wallet.held_cents,
            wallet.top_ups_cents
        ),
        (top_up_cents, 0, top_up_cents),
        "wallet (balance, held, top-ups)"
    );
    let payments: PaymentList = read(system, &format!("/wallets/{account_id}/payments")).await;
    assert!(
        payments.payments.is_empty(),
        "payments: {:?}",
        payments.payments
    );
    let points: Points = read(system, &format!("/loyalty/{account_id}")).await;
    assert_eq!(points.points, 0, "points");
    let ledger: Ledger = read(system, &format!("/loyalty/{account_id}/ledger")).await;
    assert!(ledger.entries.is_empty(), "ledger: {:?}", ledger.entries);
    let totals: AccountTotals = read(system, &format!("/stats/accounts/{account_id}")).await;
    assert_eq!(
        (totals.orders, totals.revenue_cents),
        (0, 0),
        "account stats"
    );
}

/// Like `wait_quiet`, with a shorter deadline and a failure that names the services
/// `/progress` could not hear from.
async fn wait_quiet_within(system: &TestSystem, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let progress = progress(system).await;
        if progress.quiet {
            return;
        }
        if Instant::now() >= deadline {
            let silent: Vec<&str> = ["account", "order", "payment", "loyalty", "stats"]
                .into_iter()
                .filter(|service| !progress.services.contains_key(*service))
                .collect();
            panic!(
                "not quiet within {timeout:?}; /progress got no status from {silent:?}; \
                 statuses: {}",
                serde_json::to_string(&progress.services).unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Strong mode with `slow` taking twice the call timeout: the order is refused, and once the
/// participants have resolved what they prepared, nothing of it is left. Then, on the same
/// data without the slowness, the account orders normally.
async fn a_participant_slower_than_the_timeout_places_nothing(slow: ServiceName) {
    let (mut config, dir) = fast_config(Mode::Strong);
    config.call_timeout = Duration::from_millis(300);
    config.in_doubt_after = Duration::from_millis(500);
    let delay = Duration::from_millis(600);
    match slow {
        ServiceName::Stats => config.delays.stats = delay,
        ServiceName::Payment => config.delays.payment = delay,
        other => unreachable!("not a case of this test: {other}"),
    }
    let mut system = spawn_with(config, Some(dir)).await;
    let top_up = 10_000;
    let account = system.account_with(top_up).await;

    let (status, body) = post_order(&system, &account.id, &RAMEN, None).await;
    assert_eq!(
        status, 503,
        "a participant that does not answer in time: {body}"
    );
    let error = body["error"].as_str().unwrap_or_default();
    assert!(!error.is_empty(), "a JSON error: {body}");

    // The participants that prepared before the coordinator gave up hold the order in doubt
    // until their resolvers ask the coordinator, which answers abort (presumed abort).
    wait_quiet_within(&system, Duration::from_secs(10)).await;
    assert_untouched(&system, &account.id, top_up).await;
    let totals: Totals = read(&system, "/stats").await;
    assert_eq!(
        (totals.orders, totals.revenue_cents),
        (0, 0),
        "overall stats"
    );
    system.assert_invariants(&[]).await;

    // The same data, without the slowness: the account orders normally.
    system.config.delays = Default::default();
    system.config.call_timeout = Duration::from_millis(2_000);
    system.crash_and_restart().await;
    let (status, body) = post_order(&system, &account.id, &RAMEN, None).await;
    assert_eq!(status, 201, "{body}");
    let order: Order = serde_json::from_value(body).expect("an order");
    assert_eq!(order.status, OrderStatus::Confirmed);
    let total = total_of(&RAMEN);
    let wallet = system.wallet(&account.id).await;
    assert_eq!(
        (wallet.balance_cents, wallet.held_cents),
        (top_up - total, 0)
    );
    let points: Points = read(&system, &format!("/loyalty/{}", account.id)).await;
    assert_eq!(points.points, points_of(total));
    let totals: Totals = read(&system, "/stats").await;
    assert_eq!((totals.orders, totals.revenue_cents), (1, total));
    system.assert_invariants(&[(order.id, account.id)]).await;
    system.stop().await;
}

mod strong_a_participant_slower_than_the_timeout_places_nothing {
    use super::*;

    each_pair!(stats, || {
        a_participant_slower_than_the_timeout_places_nothing(ServiceName::Stats)
    });

    each_pair!(payment, || {
        a_participant_slower_than_the_timeout_places_nothing(ServiceName::Payment)
    });
}

// ---------------------------------------------------------------------------------------------
// 3. Queue mode: a poison event in the Order service's outbox.

const POISON: &str = r#"{"type":"Nonsense"}"#;

/// Writes a row that is not a valid event straight into the Order service's outbox, as a
/// producer bug would; returns its position and id. The running service does not notice: its
/// outbox head moves only with its own next write.
async fn insert_poison(system: &TestSystem) -> (i64, String) {
    // A second handle on the Order service's own database, as a buggy producer would have.
    let db = storage::Db::open(&system.config.location, "order", &[], Mode::Queue)
        .await
        .expect("the Order service's database opens");
    let event_id = format!("evt_poison_{}", uuid::Uuid::new_v4().simple());
    let id = event_id.clone();
    let seq: i64 = db
        .write(move |tx| {
            tx.query_one(
                "INSERT INTO outbox (event_id, recorded_at_ms, body) VALUES ($1, $2, $3) RETURNING seq",
                &[&id, &contracts::now_ms(), &POISON],
            )
        })
        .await
        .expect("the poison row is written");
    (seq, event_id)
}

/// Runs `converge dead-letters ARGS --url URL` with `secret` (none: no secret at all);
/// whether it succeeded, its stdout and its stderr.
async fn dead_letters_cli(
    url: String,
    secret: Option<String>,
    args: Vec<String>,
) -> (bool, String, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_converge"));
    command
        .arg("dead-letters")
        .args(args)
        .arg(format!("--url={url}"))
        .env_remove("CONVERGE_SECRET");
    if let Some(secret) = secret {
        command.env("CONVERGE_SECRET", secret);
    }
    let output = command.output().await.expect("converge runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

each_pair!(
    queue_a_poison_event_is_set_aside_and_the_rest_flows,
    || async {
        let system = spawn(Mode::Queue).await;
        let rich_top_up = 20_000;
        let poor_top_up = 1_000;
        let rich = system.account_with(rich_top_up).await;
        let poor = system.account_with(poor_top_up).await;
        let customers = [
            Customer {
                id: rich.id.clone(),
                top_up_cents: rich_top_up,
            },
            Customer {
                id: poor.id.clone(),
                top_up_cents: poor_top_up,
            },
        ];
        let place = |customer: usize| {
            let system = &system;
            let account_id = customers[customer].id.clone();
            async move {
                let (status, body) = post_order(system, &account_id, &RAMEN, None).await;
                assert_eq!(status, 202, "{body}");
                serde_json::from_value::<Order>(body).expect("an order").id
            }
        };

        let first = place(0).await;
        system.wait_quiet().await;
        let (poison_seq, poison_id) = insert_poison(&system).await;
        // Behind the poison: one order to confirm, one to cancel (the wallet is short).
        let second = place(0).await;
        let third = place(1).await;
        system.wait_quiet().await;

        let dead: BTreeMap<String, Vec<DeadLetter>> = read(&system, "/dead-letters").await;
        let consumers: BTreeSet<&str> = ["payment", "loyalty", "stats"].into();
        for (service, letters) in &dead {
            if !consumers.contains(service.as_str()) {
                assert!(
                    letters.is_empty(),
                    "{service} has dead letters: {letters:?}"
                );
                continue;
            }
            assert_eq!(letters.len(), 1, "{service}'s dead letters: {letters:?}");
            let letter = &letters[0];
            assert_eq!(
                (
                    letter.feed.as_str(),
                    letter.cursor.seq,
                    letter.event_id.as_str()
                ),
                ("order", poison_seq, poison_id.as_str()),
                "{service}'s dead letter"
            );
            assert_eq!(letter.body, None, "the public listing shows no event body");
            assert!(!letter.error.is_empty(), "{service}: no error message");
            assert!(
                letter.attempts > 1,
                "{service} set it aside without retrying: {letter:?}"
            );
        }
        let reported: BTreeSet<&str> = dead.keys().map(String::as_str).collect();
        assert!(
            consumers.is_subset(&reported),
            "every consumer of the order feed reports: {reported:?}"
        );

        let total = total_of(&RAMEN);
        let expected = [
            (first, 0, None),
            (second, 0, None),
            (third, 1, Some(Refusal::InsufficientFunds)),
        ]
        .map(|(id, customer, refusal)| Expected {
            id,
            customer,
            total_cents: total,
            refusal,
        });
        assert_books(&system, &customers, &expected).await;

        // Operators see the body and act on it with `converge dead-letters`, on the service's
        // own address and with the shared secret; without it, nothing is shown.
        let stats_url = system
            .system
            .as_ref()
            .expect("running")
            .peers
            .url(ServiceName::Stats)
            .to_owned();
        let secret = system.config.secret.as_str();
        let cli = |args: &[&str], secret: Option<&str>| {
            dead_letters_cli(
                stats_url.clone(),
                secret.map(str::to_owned),
                args.iter().map(|arg| (*arg).to_owned()).collect(),
            )
        };
        let (ok, _, stderr) = cli(&["list"], Some("not-the-secret-but-long-enough")).await;
        assert!(!ok && stderr.contains("401"), "a wrong secret: {stderr}");
        let (ok, stdout, stderr) = cli(&["list"], Some(secret)).await;
        assert!(ok && stdout.contains(&poison_id), "{stdout}{stderr}");
        let letters = |json: String| -> Vec<DeadLetter> {
            serde_json::from_str::<contracts::internal::DeadLetterList>(&json)
                .expect("list --json prints the list")
                .dead_letters
        };
        let (ok, stdout, _) = cli(&["list", "--json"], Some(secret)).await;
        assert!(ok);
        let letter = letters(stdout).remove(0);
        assert_eq!(letter.body, Some(serde_json::json!({"type": "Nonsense"})));
        let id = letter.id.to_string();
        let (ok, _, stderr) = cli(&["replay", &id], Some(secret)).await;
        assert!(
            !ok && stderr.contains("failed again"),
            "a poison event fails again when replayed: {stderr}"
        );
        let (_, stdout, _) = cli(&["list", "--json"], Some(secret)).await;
        let after = letters(stdout);
        assert_eq!(after.len(), 1, "still set aside");
        assert!(
            after[0].attempts > letter.attempts,
            "the replay counts as a try"
        );
        let (ok, _, stderr) = cli(&["discard", &id], Some(secret)).await;
        assert!(ok, "{stderr}");
        let (ok, _, stderr) = cli(&["discard", &id], Some(secret)).await;
        assert!(!ok && stderr.contains("404"), "discarded once: {stderr}");
        let (ok, stdout, _) = cli(&["list"], Some(secret)).await;
        assert!(ok && stdout.contains("no dead letters"), "{stdout}");
        assert_books(&system, &customers, &expected).await;
        system.stop().await;
    }
);
