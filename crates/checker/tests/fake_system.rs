//! `check` and `wait_quiet` end to end against a fake gateway that serves canned answers: the
//! reads, the `/progress` readings and the judging together, without the real services.
//!
//! The fake answers each path from a table (a 404 for any other) and `/progress` from a
//! queue, one answer per read, the last one repeated, so a test scripts how the system moves
//! while it is checked.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use checker::{CheckError, CheckOptions, Invariant, Report, check, wait_quiet};
use serde_json::{Value, json};

#[derive(Default)]
struct Fake {
    routes: Mutex<HashMap<String, Value>>,
    progress: Mutex<VecDeque<Value>>,
}

async fn answer(State(fake): State<Arc<Fake>>, uri: Uri) -> Response {
    let path = uri.path();
    if path == "/progress" {
        let mut queue = fake.progress.lock().unwrap();
        let next = if queue.len() > 1 {
            queue.pop_front()
        } else {
            queue.front().cloned()
        };
        return Json(next.expect("a /progress answer")).into_response();
    }
    match fake.routes.lock().unwrap().get(path) {
        Some(body) => Json(body.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))).into_response(),
    }
}

/// Serves `fake` on a free port; returns its base URL.
async fn serve(fake: Arc<Fake>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(answer).with_state(fake);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// `/progress` of queue mode with Order's feed at `head`, Stats at `stats_at` of it.
fn progress(head: i64, stats_at: i64) -> Value {
    let at = |seq: i64| json!({"position": {"tx": 0, "seq": seq}, "state": "running"});
    let consumer = |seq: i64| json!({"consumers": {"order": at(seq)}, "in_doubt": 0});
    json!({
        "quiet": stats_at == head,
        "services": {
            "account": {"consumers": {}, "in_doubt": 0},
            "order": {"outbox_head": {"tx": 0, "seq": head}, "consumers": {"payment": at(2)}, "in_doubt": 0},
            "payment": {"outbox_head": {"tx": 0, "seq": 2}, "consumers": {"order": at(head)}, "in_doubt": 0},
            "loyalty": consumer(head),
            "stats": consumer(stats_at),
        }
    })
}

fn order(id: &str, status: &str, total_cents: i64) -> Value {
    json!({"id": id, "account_id": "acc_1", "status": status, "total_cents": total_cents,
           "points": total_cents / 100, "items": []})
}

fn fact(id: &str, status: &str, total_cents: i64) -> Value {
    json!({"order_id": id, "account_id": "acc_1", "total_cents": total_cents, "status": status})
}

/// One account, settled: ord_1 confirmed (1250 cents), ord_2 cancelled on a declined payment.
fn settled_system() -> Fake {
    let routes = [
        (
            "/accounts",
            json!({"accounts": [{"id": "acc_1", "name": "a", "status": "active"}]}),
        ),
        ("/stats", json!({"orders": 1, "revenue_cents": 1250})),
        (
            "/stats/accounts/acc_1",
            json!({"account_id": "acc_1", "orders": 1, "revenue_cents": 1250}),
        ),
        ("/stats/orders/ord_1", fact("ord_1", "counted", 1250)),
        ("/stats/orders/ord_2", fact("ord_2", "reversed", 500)),
        (
            "/loyalty/acc_1",
            json!({"account_id": "acc_1", "points": 12}),
        ),
        (
            "/loyalty/acc_1/ledger",
            json!({"account_id": "acc_1", "entries": [
                {"order_id": "ord_1", "points": 12, "status": "credited"},
                {"order_id": "ord_2", "points": 5, "status": "reversed"}]}),
        ),
        (
            "/wallets/acc_1",
            json!({"account_id": "acc_1", "balance_cents": 8750, "held_cents": 0,
                   "top_ups_cents": 10000}),
        ),
        (
            "/wallets/acc_1/payments",
            json!({"payments": [
                {"order_id": "ord_1", "account_id": "acc_1", "amount_cents": 1250,
                 "status": "captured"},
                {"order_id": "ord_2", "account_id": "acc_1", "amount_cents": 500,
                 "status": "declined"}]}),
        ),
        (
            "/accounts/acc_1/orders",
            json!({"orders": [order("ord_1", "confirmed", 1250), order("ord_2", "cancelled", 500)]}),
        ),
        ("/orders/ord_1", order("ord_1", "confirmed", 1250)),
    ];
    Fake {
        routes: Mutex::new(routes.into_iter().map(|(p, v)| (p.to_owned(), v)).collect()),
        progress: Mutex::new([progress(10, 10)].into()),
    }
}

/// `settled_system` with ord_3 (300 cents) just placed: counted at Stats, nothing else yet,
/// and Stats still one event behind.
fn busy_system() -> Fake {
    let fake = settled_system();
    {
        let mut routes = fake.routes.lock().unwrap();
        routes.insert(
            "/accounts/acc_1/orders".to_owned(),
            json!({"orders": [order("ord_1", "confirmed", 1250), order("ord_2", "cancelled", 500),
                              order("ord_3", "accepted", 300)]}),
        );
        routes.insert(
            "/stats/orders/ord_3".to_owned(),
            fact("ord_3", "counted", 300),
        );
        routes.insert(
            "/stats/accounts/acc_1".to_owned(),
            json!({"account_id": "acc_1", "orders": 2, "revenue_cents": 1550}),
        );
        routes.insert(
            "/stats".to_owned(),
            json!({"orders": 2, "revenue_cents": 1550}),
        );
    }
    *fake.progress.lock().unwrap() = [progress(11, 10)].into();
    fake
}

fn set(fake: &Fake, path: &str, body: Value) {
    fake.routes.lock().unwrap().insert(path.to_owned(), body);
}

async fn run(fake: Fake, options: &CheckOptions) -> Report {
    let base = serve(Arc::new(fake)).await;
    check(&reqwest::Client::new(), &base, options)
        .await
        .expect("the fake system can be read")
}

fn lines(report: &Report) -> Vec<String> {
    let violations = report.violations.iter().map(ToString::to_string);
    violations
        .chain(report.in_flight.iter().map(ToString::to_string))
        .collect()
}

#[tokio::test]
async fn a_settled_consistent_system_is_clean_quiet_and_settled() {
    let report = run(settled_system(), &CheckOptions::default()).await;
    assert!(report.is_settled(), "{:#?}", lines(&report));
    assert!(report.quiet);
    assert_eq!((report.accounts, report.orders), (1, 2));
    assert_eq!(
        report.to_string(),
        "checked 1 account and 2 orders: every invariant holds"
    );
}

#[tokio::test]
async fn a_confirmed_order_stats_does_not_know_is_a_violation_naming_it() {
    let fake = settled_system();
    fake.routes.lock().unwrap().remove("/stats/orders/ord_1");
    set(
        &fake,
        "/stats/accounts/acc_1",
        json!({"account_id": "acc_1", "orders": 0, "revenue_cents": 0}),
    );
    set(&fake, "/stats", json!({"orders": 0, "revenue_cents": 0}));
    let report = run(fake, &CheckOptions::default()).await;
    assert_eq!(
        lines(&report),
        [
            "stats: account acc_1: order ord_1: confirmed order of 1250 cents is not counted at \
          Stats (no fact)"
        ]
    );
}

#[tokio::test]
async fn checked_at_once_while_busy_the_new_order_is_in_flight_not_a_violation() {
    let options = CheckOptions {
        expect_settled: false,
        ..CheckOptions::default()
    };
    let report = run(busy_system(), &options).await;
    assert!(report.is_clean(), "{:#?}", lines(&report));
    assert!(!report.quiet);
    assert_eq!(
        lines(&report),
        ["in flight: account acc_1: order ord_3: still accepted, not yet confirmed or cancelled"]
    );
    assert_eq!(
        report.to_string(),
        "checked 1 account and 3 orders: every invariant holds; 1 still in flight"
    );
}

#[tokio::test]
async fn expecting_settled_while_busy_reports_the_lag_and_says_the_system_was_not_quiet() {
    let report = run(busy_system(), &CheckOptions::default()).await;
    assert_eq!(report.violations.len(), 1, "{:#?}", lines(&report));
    assert_eq!(report.violations[0].invariant, Invariant::NoOrderLost);
    assert_eq!(report.violations[0].order_id.as_deref(), Some("ord_3"));
    assert!(
        report
            .to_string()
            .ends_with("(the system was not quiet while checked)")
    );
}

#[tokio::test]
async fn a_system_that_moved_while_checked_is_not_quiet_even_if_quiet_at_both_ends() {
    // Quiet before and after, but Order's feed went from 10 to 11 in between.
    let fake = settled_system();
    *fake.progress.lock().unwrap() = [progress(10, 10), progress(11, 11)].into();
    let report = run(fake, &CheckOptions::default()).await;
    assert!(!report.quiet);
    assert!(report.is_clean(), "{:#?}", lines(&report));
}

#[tokio::test]
async fn a_hold_left_in_a_quiet_system_is_a_leaked_prepare() {
    let fake = settled_system();
    set(
        &fake,
        "/wallets/acc_1",
        json!({"account_id": "acc_1", "balance_cents": 8750, "held_cents": 300,
               "top_ups_cents": 10000}),
    );
    let report = run(fake, &CheckOptions::default()).await;
    assert_eq!(
        lines(&report),
        [
            "payment: account acc_1: holds 300 cents for a two-phase commit not committed or \
          aborted (a leaked prepare if the system is quiet)"
        ]
    );
}

#[tokio::test]
async fn top_ups_are_checked_against_the_callers_including_an_account_not_listed() {
    let fake = settled_system();
    set(
        &fake,
        "/wallets/acc_9",
        json!({"account_id": "acc_9", "balance_cents": 50, "held_cents": 0,
               "top_ups_cents": 50}),
    );
    let options = CheckOptions {
        top_ups: vec![
            ("acc_1".to_owned(), 4000),
            ("acc_9".to_owned(), 70),
            ("acc_1".to_owned(), 6000),
        ],
        ..CheckOptions::default()
    };
    let report = run(fake, &options).await;
    assert_eq!(report.accounts, 2);
    assert_eq!(
        lines(&report),
        [
            "payment: account acc_9: top-ups are 50 cents, the top-ups acknowledged to the caller \
          add up to 70"
        ]
    );
}

#[tokio::test]
async fn an_acknowledged_order_that_is_gone_is_lost() {
    let options = CheckOptions {
        acknowledged: vec![
            ("ord_1".to_owned(), "acc_1".to_owned()),
            ("ord_gone".to_owned(), "acc_1".to_owned()),
        ],
        ..CheckOptions::default()
    };
    let report = run(settled_system(), &options).await;
    assert_eq!(
        lines(&report),
        [
            "no order lost: account acc_1: order ord_gone: acknowledged order is lost: \
          GET /orders/{id} answers 404"
        ]
    );
}

#[tokio::test]
async fn wait_quiet_returns_once_progress_says_quiet() {
    let fake = settled_system();
    *fake.progress.lock().unwrap() = [progress(10, 7), progress(10, 9), progress(10, 10)].into();
    let base = serve(Arc::new(fake)).await;
    let progress = wait_quiet(&reqwest::Client::new(), &base, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(progress.quiet);
    assert_eq!(
        progress.services["stats"].consumers["order"].position.seq,
        10
    );
}

#[tokio::test]
async fn wait_quiet_names_what_is_still_not_quiet_when_the_time_is_up() {
    let fake = settled_system();
    *fake.progress.lock().unwrap() = [progress(10, 7)].into();
    let base = serve(Arc::new(fake)).await;
    let error = wait_quiet(&reqwest::Client::new(), &base, Duration::from_millis(100))
        .await
        .unwrap_err();
    match &error {
        CheckError::NotQuiet { waited_ms, still } => {
            assert!(*waited_ms >= 100, "{error}");
            assert_eq!(still, "stats is 3 events behind order's feed (at 7 of 10)");
        }
        other => panic!("expected NotQuiet, got {other}"),
    }
}

#[tokio::test]
async fn check_with_wait_quiet_waits_then_judges_a_quiet_system() {
    let fake = settled_system();
    *fake.progress.lock().unwrap() = [progress(10, 8), progress(10, 10)].into();
    let options = CheckOptions {
        wait_quiet: Some(Duration::from_secs(10)),
        ..CheckOptions::default()
    };
    let report = run(fake, &options).await;
    assert!(report.quiet);
    assert!(report.is_settled(), "{:#?}", lines(&report));
}

#[tokio::test]
async fn check_with_wait_quiet_on_a_system_that_stays_busy_is_an_error() {
    let options = CheckOptions {
        wait_quiet: Some(Duration::from_millis(50)),
        ..CheckOptions::default()
    };
    let base = serve(Arc::new(busy_system())).await;
    let result = check(&reqwest::Client::new(), &base, &options).await;
    assert!(
        matches!(result, Err(CheckError::NotQuiet { ref still, .. }) if still.contains("stats is 1 events behind")),
        "{result:?}"
    );
}
