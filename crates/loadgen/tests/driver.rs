//! The driver against a tiny real HTTP server on 127.0.0.1: the open loop charges a stall to
//! every request queued behind it (no coordinated omission), the closed loop does not, and
//! every answer is counted and every acknowledgement reported.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use contracts::api::PlaceOrderRequest;
use hdrhistogram::Histogram;
use loadgen::driver::{Ack, Driver, LoadConfig, LoadResult};
use loadgen::workload::Client;
use serde_json::{Value, json};

/// The fake system's behaviour.
#[derive(Default)]
struct Server {
    /// Requests received so far.
    received: AtomicU64,
    /// Stall request number `stall_at` for `stall`.
    stall_at: Option<u64>,
    stall: Duration,
    /// Time every request takes.
    service_time: Duration,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    keys: Mutex<HashSet<String>>,
}

async fn place(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let n = server.received.fetch_add(1, Ordering::SeqCst);
    let in_flight = server.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    server.max_in_flight.fetch_max(in_flight, Ordering::SeqCst);
    if let Some(key) = headers.get("idempotency-key") {
        server
            .keys
            .lock()
            .unwrap()
            .insert(key.to_str().unwrap().to_owned());
    }
    if server.stall_at == Some(n) {
        tokio::time::sleep(server.stall).await;
    }
    if !server.service_time.is_zero() {
        tokio::time::sleep(server.service_time).await;
    }
    server.in_flight.fetch_sub(1, Ordering::SeqCst);
    let account_id = body["account_id"].as_str().unwrap_or_default().to_owned();
    match account_id.as_str() {
        "poor" => (
            StatusCode::PAYMENT_REQUIRED,
            Json(json!({"error": "insufficient funds"})),
        ),
        "down" => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "payment did not answer in time"})),
        ),
        _ => (
            StatusCode::ACCEPTED,
            Json(json!({
                "id": format!("ord_{n}"),
                "account_id": account_id,
                "status": "accepted",
                "total_cents": 1150,
                "points": 11,
                "items": [],
                "acknowledged_at_ms": 0,
            })),
        ),
    }
}

async fn serve(server: Server) -> (Client, Arc<Server>) {
    let server = Arc::new(server);
    let app = axum::Router::new()
        .route("/orders", post(place))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (Client::new(format!("http://{address}")), server)
}

fn request(account: &str) -> PlaceOrderRequest {
    serde_json::from_value(json!({
        "account_id": account,
        "items": [{"sku": "margherita", "quantity": 1, "unit_price_cents": 1150}],
    }))
    .unwrap()
}

/// Runs the driver, collecting every acknowledgement.
async fn drive(
    client: Client,
    config: LoadConfig,
    account: impl Fn(u64) -> &'static str + Send + Sync + 'static,
) -> (LoadResult, Vec<Ack>, u64) {
    let acks = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicU64::new(0));
    let sink = acks.clone();
    let result = Driver::new(client, config)
        .on_ack(move |ack| sink.lock().unwrap().push(ack.clone()))
        .progress(done.clone())
        .run(move |i| (request(account(i)), format!("key-{i}")))
        .await;
    let acks = std::mem::take(&mut *acks.lock().unwrap());
    (result, acks, done.load(Ordering::SeqCst))
}

fn count_at_least(h: &Histogram<u64>, us: u64) -> u64 {
    h.iter_recorded()
        .filter(|v| v.value_iterated_to() >= us)
        .map(|v| v.count_at_value())
        .sum()
}

const STALL: Duration = Duration::from_millis(300);

fn stalling_server() -> Server {
    Server {
        stall_at: Some(20),
        stall: STALL,
        ..Server::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_loop_charges_a_stall_to_every_request_queued_behind_it() {
    let (client, server) = serve(stalling_server()).await;
    let config = LoadConfig {
        rate: Some(200),
        connections: 1,
        duration: Duration::from_secs(1),
    };
    let (result, acks, done) = drive(client, config, |_| "acc_1").await;

    // Constant arrivals: exactly rate × duration requests, all sent and all answered.
    assert_eq!(result.sent, 200);
    assert_eq!(server.received.load(Ordering::SeqCst), 200);
    assert_eq!(server.keys.lock().unwrap().len(), 200, "a key per request");
    assert_eq!(result.acknowledged, 200);
    assert_eq!((result.refused, result.failed), (0, 0));
    assert_eq!(done, 200);
    assert_eq!(result.histogram.len(), 200);

    // Every acknowledgement is reported, once, with the order's fields.
    assert_eq!(acks.len(), 200);
    let ids: HashSet<&str> = acks.iter().map(|a| a.order_id.as_str()).collect();
    assert_eq!(ids.len(), 200);
    assert!(
        acks.iter()
            .all(|a| a.account_id == "acc_1" && a.total_cents == 1150 && a.points == 11)
    );
    assert!(acks.iter().all(|a| a.at_unix_ms > 1_600_000_000_000));

    // The stall is charged to the stalled request and to the ~60 due during it: a request
    // due 5 ms into the stall waited about 295 ms, one due 200 ms in about 100 ms.
    let h = &result.histogram;
    assert!(h.max() >= STALL.as_micros() as u64, "max {} us", h.max());
    let slow = count_at_least(h, 100_000);
    assert!(slow > 10, "only {slow} requests at or above 100 ms");
    assert!(
        h.value_at_quantile(0.99) >= 200_000,
        "p99 {} us",
        h.value_at_quantile(0.99)
    );
    assert!(
        result.max_send_lag >= Duration::from_millis(250),
        "{:?}",
        result.max_send_lag
    );

    // The timeline accounts for every acknowledgement and covers the run.
    let per_second: u64 = result.timeline.iter().map(|s| s.acknowledged).sum();
    assert_eq!(per_second, 200);
    assert!(result.timeline.len() as u64 >= result.elapsed.as_secs());
    assert!(result.timeline.iter().any(|s| s.p99_us >= 100_000));
    assert!(result.elapsed >= Duration::from_millis(995));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_loop_records_the_same_stall_as_one_slow_request() {
    let (client, server) = serve(stalling_server()).await;
    let config = LoadConfig {
        rate: None,
        connections: 1,
        duration: Duration::from_secs(1),
    };
    let (result, acks, done) = drive(client, config, |_| "acc_1").await;
    assert!(
        server.received.load(Ordering::SeqCst) > 20,
        "the stall happened"
    );
    assert_eq!(result.sent, server.received.load(Ordering::SeqCst));
    assert_eq!(result.acknowledged, result.sent);
    assert_eq!(acks.len() as u64, result.sent);
    assert_eq!(done, result.sent);
    assert_eq!(count_at_least(&result.histogram, 250_000), 1);
    assert!(result.histogram.max() >= STALL.as_micros() as u64);
    assert_eq!(result.max_send_lag, Duration::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_failures_are_counted_apart_and_not_acknowledged() {
    let (client, _server) = serve(Server::default()).await;
    let config = LoadConfig {
        rate: Some(100),
        connections: 4,
        duration: Duration::from_millis(500),
    };
    let (result, acks, done) = drive(client, config, |i| match i % 5 {
        1 => "poor",
        2 => "down",
        _ => "acc_1",
    })
    .await;
    assert_eq!(result.sent, 50);
    assert_eq!(result.acknowledged, 30);
    assert_eq!(result.refused, 10);
    assert_eq!(result.failed, 10);
    assert_eq!(acks.len(), 30);
    assert_eq!(done, 50);
    assert_eq!(result.histogram.len(), 30);
    assert_eq!(result.responses.len(), 50);
    let timeline =
        |f: fn(&loadgen::driver::Second) -> u64| -> u64 { result.timeline.iter().map(f).sum() };
    assert_eq!(timeline(|s| s.refused), 10);
    assert_eq!(timeline(|s| s.failed), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_than_connections_are_in_flight_and_the_backlog_is_still_sent() {
    let (client, server) = serve(Server {
        service_time: Duration::from_millis(30),
        ..Server::default()
    })
    .await;
    // 100 requests due within 0.5 s, but three connections of 30 ms each take about 1 s.
    let config = LoadConfig {
        rate: Some(200),
        connections: 3,
        duration: Duration::from_millis(500),
    };
    let (result, acks, _) = drive(client, config, |_| "acc_1").await;
    assert_eq!(result.sent, 100);
    assert_eq!(acks.len(), 100);
    assert_eq!(server.max_in_flight.load(Ordering::SeqCst), 3);
    // The last requests waited for a free connection, and that wait was charged to them.
    assert!(
        result.elapsed >= Duration::from_millis(900),
        "{:?}",
        result.elapsed
    );
    assert!(
        result.histogram.max() >= 300_000,
        "max {} us",
        result.histogram.max()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_system_fails_every_request() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let config = LoadConfig {
        rate: Some(50),
        connections: 2,
        duration: Duration::from_millis(200),
    };
    let (result, acks, done) = drive(
        Client::new(format!("http://{address}")),
        config,
        |_| "acc_1",
    )
    .await;
    assert_eq!(result.sent, 10);
    assert_eq!(result.failed, 10);
    assert_eq!(done, 10);
    assert!(acks.is_empty());
    assert!(result.histogram.is_empty());
}
