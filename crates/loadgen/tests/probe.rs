//! The probe against a fake system on 127.0.0.1 whose services apply each order a known time
//! after it was placed: the visibility curves and k-staleness must show those lags.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use contracts::api::PlaceOrderRequest;
use loadgen::driver::{Driver, LoadConfig};
use loadgen::probe::{DELAYS_MS, Probe, ProbeConfig};
use loadgen::workload::Client;
use serde_json::{Value, json};

const PAYMENT_LAG: Duration = Duration::from_millis(30);
const LOYALTY_LAG: Duration = Duration::from_millis(80);
const STATS_LAG: Duration = Duration::from_millis(400);

struct Placed {
    at: Instant,
    account_id: String,
    cancelled: bool,
}

#[derive(Default)]
struct Fake {
    orders: Mutex<HashMap<String, Placed>>,
}

type Answer = (StatusCode, Json<Value>);

fn not_found() -> Answer {
    (StatusCode::NOT_FOUND, Json(json!({"error": "not found"})))
}

async fn place(State(fake): State<Arc<Fake>>, Json(body): Json<Value>) -> Answer {
    let mut orders = fake.orders.lock().unwrap();
    let id = format!("ord_{}", orders.len());
    let account_id = body["account_id"].as_str().unwrap().to_owned();
    let cancelled = account_id == "poor";
    orders.insert(
        id.clone(),
        Placed {
            at: Instant::now(),
            account_id: account_id.clone(),
            cancelled,
        },
    );
    let order = json!({"id": id, "account_id": account_id, "status": "accepted",
        "total_cents": 1000, "points": 10, "items": [], "acknowledged_at_ms": 0});
    (StatusCode::ACCEPTED, Json(order))
}

/// An order as Order shows it: settled at once (confirmed, or cancelled for "poor").
async fn order(State(fake): State<Arc<Fake>>, Path(id): Path<String>) -> Answer {
    let orders = fake.orders.lock().unwrap();
    let Some(placed) = orders.get(&id) else {
        return not_found();
    };
    let status = if placed.cancelled {
        "cancelled"
    } else {
        "confirmed"
    };
    (StatusCode::OK, Json(json!({"id": id, "status": status})))
}

async fn payment(State(fake): State<Arc<Fake>>, Path(id): Path<String>) -> Answer {
    let orders = fake.orders.lock().unwrap();
    match orders.get(&id) {
        Some(placed) if placed.at.elapsed() >= PAYMENT_LAG => {
            let status = if placed.cancelled {
                "declined"
            } else {
                "captured"
            };
            (
                StatusCode::OK,
                Json(json!({"order_id": id, "status": status})),
            )
        }
        _ => not_found(),
    }
}

/// Loyalty and Stats never show a cancelled order.
async fn ledger(
    State(fake): State<Arc<Fake>>,
    Path((account_id, id)): Path<(String, String)>,
) -> Answer {
    let orders = fake.orders.lock().unwrap();
    match orders.get(&id) {
        Some(placed)
            if !placed.cancelled
                && placed.account_id == account_id
                && placed.at.elapsed() >= LOYALTY_LAG =>
        {
            (
                StatusCode::OK,
                Json(json!({"order_id": id, "points": 10, "status": "credited"})),
            )
        }
        _ => not_found(),
    }
}

async fn order_fact(State(fake): State<Arc<Fake>>, Path(id): Path<String>) -> Answer {
    let orders = fake.orders.lock().unwrap();
    match orders.get(&id) {
        Some(placed) if !placed.cancelled && placed.at.elapsed() >= STATS_LAG => (
            StatusCode::OK,
            Json(json!({"order_id": id, "status": "confirmed"})),
        ),
        _ => not_found(),
    }
}

async fn account_totals(State(fake): State<Arc<Fake>>, Path(account_id): Path<String>) -> Answer {
    let orders = fake.orders.lock().unwrap();
    let counted = orders
        .values()
        .filter(|p| p.account_id == account_id && !p.cancelled && p.at.elapsed() >= STATS_LAG)
        .count();
    let totals = json!({"account_id": account_id, "orders": counted, "revenue_cents": 0});
    (StatusCode::OK, Json(totals))
}

async fn serve() -> Client {
    let fake = Arc::new(Fake::default());
    let app = axum::Router::new()
        .route("/orders", post(place))
        .route("/orders/{id}", get(order))
        .route("/payments/{id}", get(payment))
        .route("/loyalty/{account_id}/ledger/{id}", get(ledger))
        .route("/stats/orders/{id}", get(order_fact))
        .route("/stats/accounts/{account_id}", get(account_totals))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Client::new(format!("http://{address}"))
}

fn index_of(delay_ms: u64) -> usize {
    DELAYS_MS.iter().position(|&d| d == delay_ms).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_sees_each_services_lag() {
    let client = serve().await;
    let probe = Probe::start(
        client.clone(),
        ProbeConfig {
            probe_accounts: vec!["probe-a".into(), "probe-b".into()],
            ..ProbeConfig::default()
        },
    );
    let observer = probe.observer();
    let probe_acks = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = probe_acks.clone();
    let config = LoadConfig {
        rate: Some(200),
        connections: 8,
        duration: Duration::from_secs(2),
    };
    let load = Driver::new(client, config)
        .on_ack(move |ack| {
            if ack.account_id.starts_with("probe-") {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            observer.observe(ack);
        })
        .run(|i| {
            // A scrambled pattern, so that evenly spread samples meet every kind of account.
            let account = match (i.wrapping_mul(2_654_435_761) >> 8) % 4 {
                0 => "probe-a",
                1 => "probe-b",
                2 => "poor",
                _ => "regular",
            };
            let request: PlaceOrderRequest = serde_json::from_value(json!({
                "account_id": account,
                "items": [{"sku": "ramen", "quantity": 1, "unit_price_cents": 1000}],
            }))
            .unwrap();
            (request, format!("key-{i}"))
        })
        .await;
    assert_eq!(load.acknowledged, 400);
    probe.stop();
    // Stopped: no k readings while the fake catches up, however long the caller waits.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let finishing = Instant::now();
    let seen = probe.finish().await;
    // Every sample is visible everywhere within the stats lag, so finishing is quick.
    assert!(
        finishing.elapsed() < Duration::from_secs(4),
        "{:?}",
        finishing.elapsed()
    );

    // Twenty samples a second, evenly spread, over two seconds of acknowledgements.
    let taken = seen.samples + seen.cancelled;
    assert!((30..=42).contains(&taken), "{taken} samples");
    assert!(seen.samples >= 15, "{seen:?}");
    assert_eq!(seen.read_errors, 0, "{seen:?}");
    assert_eq!(seen.delays_ms.len(), DELAYS_MS.len());

    let curve = |service: &str| seen.curve(service).unwrap().to_vec();
    let (order, payment, loyalty, stats, all) = (
        curve("order"),
        curve("payment"),
        curve("loyalty"),
        curve("stats"),
        curve("all"),
    );
    // The fake applies at known lags after it answered; an answer that is slow to reach the
    // driver (a busy machine) shortens the lag the probe sees, and a read that starts late
    // is credited to a later delay, so the points near a lag get a margin of one sample in
    // ten, and the exact 0 and 1 are asserted only far from it (ten times the lag, or more:
    // on a loaded two-core machine a read can start tens of milliseconds late).
    // Order settles before it answers: visible at once.
    assert!(order[0] >= 0.9, "{order:?}");
    assert_eq!(order[index_of(20)], 1.0, "{order:?}");
    // Payment after 30 ms: not at 0 ms, always by 500 ms.
    assert!(payment[0] <= 0.1, "{payment:?}");
    assert!(payment[index_of(100)] >= 0.9, "{payment:?}");
    assert_eq!(payment[index_of(500)], 1.0, "{payment:?}");
    // Loyalty after 80 ms: not by 20 ms, always by 500 ms. Cancelled orders, which Loyalty
    // never shows, are left out, or the curve would end below 1.
    assert!(loyalty[index_of(20)] <= 0.1, "{loyalty:?}");
    assert_eq!(loyalty[index_of(500)], 1.0, "{loyalty:?}");
    // Stats after 400 ms: never by 100 ms, always by 1 s; and so everywhere.
    assert_eq!(stats[index_of(100)], 0.0, "{stats:?}");
    assert_eq!(stats[index_of(1000)], 1.0, "{stats:?}");
    assert_eq!(all[index_of(100)], 0.0, "{all:?}");
    assert_eq!(all[index_of(1000)], 1.0, "{all:?}");
    for c in [&order, &payment, &loyalty, &stats, &all] {
        assert!(c.windows(2).all(|w| w[0] <= w[1]), "not monotonic: {c:?}");
    }

    // k-staleness: a reading every 100 ms while the load ran; about half the orders go to
    // probe accounts (100 a second) and Stats counts them 400 ms late, so k reaches tens.
    assert!(
        (12..=25).contains(&seen.k.len()),
        "{} readings",
        seen.k.len()
    );
    let acked = probe_acks.load(std::sync::atomic::Ordering::SeqCst);
    let max = *seen.k.iter().max().unwrap();
    assert!(
        max >= 10 && max <= acked,
        "max k {max} of {acked} acknowledged: {:?}",
        seen.k
    );
    // Under load k stays up (about 100 a second × 0.4 s); after the load Stats catches up
    // and k falls to 0, which a probe stopped with the load never reads.
    assert!(seen.k.iter().any(|&k| k >= 20), "{:?}", seen.k);
    assert!(seen.k.iter().rev().take(3).all(|&k| k > 0), "{:?}", seen.k);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_without_samples_or_accounts_finishes_at_once() {
    let client = serve().await;
    let probe = Probe::start(
        client,
        ProbeConfig {
            samples_per_s: 0,
            ..ProbeConfig::default()
        },
    );
    let started = Instant::now();
    let seen = probe.finish().await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!((seen.samples, seen.cancelled), (0, 0));
    assert!(seen.k.is_empty());
    assert_eq!(seen.curves.len(), 5);
}
