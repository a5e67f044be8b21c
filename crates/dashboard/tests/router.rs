//! The dashboard's routes against a fake system on 127.0.0.1 that answers the gateway's
//! public routes with known bodies: what the page receives, what the controls do, and who
//! may use them. (The page itself, in a browser against real systems, is tested by
//! `browser-tests/`.)

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use contracts::ServiceName;
use contracts::internal::{
    DEAD_LETTERS_PATH, PAUSE_PATH, PROCESSING_DELAY_PATH, RESUME_PATH, SECRET_HEADER, STATUS_PATH,
};
use dashboard::{DashboardConfig, ServiceAdmin, Token};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A system that answers like a gateway: fixed progress, metrics and dead letters, accounts
/// and orders that it counts, and one order whose every service has applied it.
#[derive(Default)]
struct Fake {
    accounts: AtomicU64,
    orders: AtomicU64,
    keys: Mutex<Vec<String>>,
}

const PROGRESS: &str = r#"{"quiet": false, "services": {
    "account": {"outbox_head": null, "consumers": {}, "in_doubt": 0},
    "order": {"outbox_head": {"tx": 0, "seq": 120}, "consumers": {"payment": {"position": {"tx": 0, "seq": 90}}}, "in_doubt": 0},
    "payment": {"outbox_head": {"tx": 0, "seq": 95}, "consumers": {"order": {"position": {"tx": 0, "seq": 118}}}, "in_doubt": 0},
    "loyalty": {"outbox_head": null, "consumers": {"order": {"position": {"tx": 0, "seq": 120}}}, "in_doubt": 0},
    "stats": {"outbox_head": null, "consumers": {"order": {"position": {"tx": 0, "seq": 20}}}, "in_doubt": 0,
              "state": "stuck", "stuck_since_ms": 1700000000000, "last_error": "poison"}
}}"#;

const METRICS: &str = "# TYPE converge_apply_lag_seconds histogram\n\
    converge_apply_lag_seconds_bucket{service=\"stats\",le=\"0.01\"} 3\n\
    converge_apply_lag_seconds_bucket{service=\"stats\",le=\"+Inf\"} 4\n\
    converge_apply_lag_seconds_count{service=\"stats\"} 4\n\
    converge_apply_lag_max_seconds{service=\"stats\"} 0.042\n";

fn fake_router(fake: Arc<Fake>) -> Router {
    Router::new()
        .route(
            "/progress",
            get(|| async { Json(serde_json::from_str::<Value>(PROGRESS).unwrap()) }),
        )
        .route("/metrics", get(|| async { METRICS }))
        .route(
            "/dead-letters",
            get(|| async {
                Json(
                    json!({"account": [], "order": [], "payment": [], "loyalty": [],
                "stats": [{"id": 1, "feed": "order", "tx": 0, "seq": 7, "event_id": "evt_7",
                           "error": "cannot read the event", "attempts": 5,
                           "recorded_at_ms": 1700000000000i64}]}),
                )
            }),
        )
        .route("/accounts", post(create_account))
        .route(
            "/wallets/{id}/top-ups",
            post(|Path(id): Path<String>| async move {
                (
                    StatusCode::CREATED,
                    Json(
                        json!({"account_id": id, "balance_cents": 1, "held_cents": 0,
                    "top_ups_cents": 1}),
                    ),
                )
            }),
        )
        .route(
            "/accounts/{id}/suspend",
            post(|Path(id): Path<String>| async move {
                Json(json!({"id": id, "name": "x", "status": "suspended"}))
            }),
        )
        .route("/orders", post(place_order))
        .route("/orders/{id}", get(order))
        .route(
            "/payments/{id}",
            get(|Path(id): Path<String>| async move {
                Json(
                    json!({"order_id": id, "account_id": "acc_1", "amount_cents": 2900,
                "status": "captured", "updated_at_ms": 1_012}),
                )
            }),
        )
        .route(
            "/stats/orders/{id}",
            get(|| async { (StatusCode::NOT_FOUND, Json(json!({"error": "not yet"}))) }),
        )
        .route(
            "/loyalty/{account}/ledger/{id}",
            get(|Path((_, id)): Path<(String, String)>| async move {
                Json(json!({"order_id": id, "points": 29, "status": "credited"}))
            }),
        )
        .with_state(fake)
}

async fn create_account(
    State(fake): State<Arc<Fake>>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let n = fake.accounts.fetch_add(1, Ordering::Relaxed);
    (
        StatusCode::CREATED,
        Json(json!({"id": format!("acc_{n}"), "name": body["name"], "status": "active"})),
    )
}

async fn place_order(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let n = fake.orders.fetch_add(1, Ordering::Relaxed);
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    fake.keys.lock().unwrap().push(key);
    (
        StatusCode::ACCEPTED,
        Json(
            json!({"id": format!("ord_{n}"), "account_id": body["account_id"],
            "status": "accepted", "total_cents": 1000, "points": 10, "items": [],
            "acknowledged_at_ms": 1_000}),
        ),
    )
}

async fn order(Path(id): Path<String>) -> (StatusCode, Json<Value>) {
    if id != "ord_known" {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such order"})),
        );
    }
    (
        StatusCode::OK,
        Json(
            json!({"id": id, "account_id": "acc_1", "status": "confirmed",
            "total_cents": 2900, "points": 29, "items": [], "acknowledged_at_ms": 1_000,
            "settled_at_ms": 1_030}),
        ),
    )
}

/// Serves `router` on a free loopback port until `shutdown`; the base URL and the server.
async fn serve(
    router: Router,
    shutdown: CancellationToken,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
            .unwrap();
    });
    (base, server)
}

struct Running {
    fake: Arc<Fake>,
    base: String,
    token: Token,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<()>,
}

/// A fake system and a dashboard of it, each on its own port; the dashboard is given no
/// access to the services.
async fn start(label: &str) -> Running {
    start_with(label, |config| config).await
}

/// The same, with the dashboard's configuration changed by `configure`.
async fn start_with(
    label: &str,
    configure: impl FnOnce(DashboardConfig) -> DashboardConfig,
) -> Running {
    let fake = Arc::new(Fake::default());
    // The fake serves until the test's runtime ends.
    let (gateway, _) = serve(fake_router(fake.clone()), CancellationToken::new()).await;
    let token = Token::generate();
    let shutdown = CancellationToken::new();
    let mut config = configure(DashboardConfig::new(gateway, label, token.clone()));
    config.shutdown = shutdown.clone();
    let (base, server) = serve(dashboard::router(config), shutdown.clone()).await;
    Running {
        fake,
        base,
        token,
        shutdown,
        server,
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Reads an event stream until `n` snapshot events have come; their JSON and when each came.
async fn snapshots(url: &str, n: usize) -> Vec<(Instant, Value)> {
    let mut response = http().get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut buffer = String::new();
    let mut seen = Vec::new();
    while seen.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await
            .expect("a snapshot within 5 s")
            .unwrap()
            .expect("the stream stays open");
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if event.lines().any(|l| l == "event: snapshot") {
                let data = event
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .expect("a data line");
                seen.push((Instant::now(), serde_json::from_str(data).unwrap()));
            }
        }
    }
    seen
}

#[tokio::test]
async fn the_page_and_its_files_come_from_the_binary_and_allow_nothing_from_elsewhere() {
    let running = start("queue").await;
    let page = http()
        .get(format!("{}/dashboard", running.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let html = page.text().await.unwrap();
    for (name, content_type, body) in dashboard::assets::FILES {
        assert!(html.contains(&format!("/dashboard/assets/{name}")) || *name == "charts.js");
        let answer = http()
            .get(format!("{}/dashboard/assets/{name}", running.base))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{name}");
        assert_eq!(answer.headers()["content-type"], *content_type);
        assert_eq!(answer.text().await.unwrap(), *body);
    }
    // No file names a resource elsewhere (the compare box's example is this machine's).
    for text in dashboard::assets::FILES
        .iter()
        .map(|f| f.2)
        .chain([dashboard::assets::INDEX_HTML])
    {
        assert!(!text.contains("https://"));
        for at in text.match_indices("http://").map(|(i, _)| i) {
            assert!(
                text[at..].starts_with("http://127.0.0.1"),
                "{}",
                &text[at..at + 40]
            );
        }
    }
    let missing = http()
        .get(format!("{}/dashboard/assets/secret.txt", running.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_event_stream_pushes_what_the_system_says_more_than_once_a_second() {
    let running = start("queue").await;
    let seen = snapshots(&format!("{}/dashboard/events", running.base), 3).await;
    let gap = seen[2].0 - seen[1].0;
    assert!(gap < Duration::from_secs(1), "{gap:?} between snapshots");
    let snapshot = &seen[2].1;
    assert_eq!(snapshot["label"], "queue");
    assert_eq!(snapshot["reachable"], true);
    let service = |name: &str| {
        snapshot["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(service("order")["backlog"], 5);
    assert_eq!(service("stats")["backlog"], 100);
    assert_eq!(service("stats")["state"], "stuck");
    assert_eq!(service("stats")["last_error"], "poison");
    assert_eq!(service("stats")["lag_max_ms"], 42.0);
    assert_eq!(service("stats")["dead_letters"], 1);
    assert_eq!(service("loyalty")["state"], "running");
    assert_eq!(snapshot["dead_letters"]["total"], 1);
    assert_eq!(snapshot["dead_letters"]["shown"][0]["event_id"], "evt_7");
    assert_eq!(snapshot["controls"]["load"]["enabled"], true);
    // Given no access to the services, their controls are off and say why.
    assert_eq!(snapshot["controls"]["delays"]["enabled"], false);
    assert!(
        snapshot["controls"]["delays"]["reason"]
            .as_str()
            .unwrap()
            .contains("without the services' addresses")
    );
    assert_eq!(snapshot["controls"]["kill"]["enabled"], false);
    assert!(
        snapshot["controls"]["kill"]["reason"]
            .as_str()
            .unwrap()
            .contains("converge up")
    );
    assert_eq!(service("stats")["delay_ms"], Value::Null);
    assert_eq!(service("stats")["consumes"], true);
    assert_eq!(service("account")["consumes"], false);
    assert_eq!(service("stats")["state_since_ms"], 1_700_000_000_000i64);
    assert_eq!(service("stats")["state_since_source"], "service");
    assert_eq!(snapshot["dead_letters"]["shown"][0]["id"], 1);
    assert_eq!(
        snapshot["limits"]["rate_max_per_s"],
        dashboard::load::RATE_MAX_PER_S
    );
}

#[tokio::test]
async fn controls_need_the_token_and_without_the_services_answer_not_implemented() {
    let running = start("queue").await;
    let post = |path: &str, token: Option<&str>, body: &str| {
        let mut request = http()
            .post(format!("{}{path}", running.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(token) = token {
            request = request.header(dashboard::token::TOKEN_HEADER, token);
        }
        request.send()
    };
    let token = running.token.expose();
    let load = r#"{"rate_per_s": 0}"#;
    assert_eq!(
        post("/dashboard/api/load", None, load)
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        post("/dashboard/api/load", Some("not-the-token-at-all"), load)
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        post("/dashboard/api/load", Some(token), load)
            .await
            .unwrap()
            .status(),
        200
    );
    let too_much = format!(
        r#"{{"rate_per_s": {}}}"#,
        dashboard::load::RATE_MAX_PER_S + 1
    );
    assert_eq!(
        post("/dashboard/api/load", Some(token), &too_much)
            .await
            .unwrap()
            .status(),
        422
    );
    assert_eq!(
        post("/dashboard/api/load", Some(token), "{}")
            .await
            .unwrap()
            .status(),
        422
    );
    let huge = format!(
        r#"{{"rate_per_s": 1, "pad": "{}"}}"#,
        "x".repeat(dashboard::CONTROL_BODY_BYTES_MAX)
    );
    assert_eq!(
        post("/dashboard/api/load", Some(token), &huge)
            .await
            .unwrap()
            .status(),
        413
    );
    for (path, why) in [
        ("/dashboard/api/services/stats/delay", "addresses"),
        ("/dashboard/api/services/stats/pause", "addresses"),
        ("/dashboard/api/services/stats/resume", "addresses"),
        ("/dashboard/api/dead-letters/stats/1/replay", "addresses"),
        ("/dashboard/api/dead-letters/stats/1/discard", "addresses"),
        ("/dashboard/api/services/stats/kill", "addresses"),
        ("/dashboard/api/services/stats/restart", "addresses"),
    ] {
        assert_eq!(
            post(path, None, "{}").await.unwrap().status(),
            401,
            "{path}"
        );
        let answer = post(path, Some(token), r#"{"delay_ms": 50}"#)
            .await
            .unwrap();
        assert_eq!(answer.status(), 501, "{path}");
        let body: Value = answer.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains(why), "{body}");
    }
    let auth = |token: Option<&str>| {
        let mut request = http().get(format!("{}/dashboard/api/auth", running.base));
        if let Some(token) = token {
            request = request.header(dashboard::token::TOKEN_HEADER, token);
        }
        request.send()
    };
    assert_eq!(auth(Some(token)).await.unwrap().status(), 204);
    assert_eq!(auth(None).await.unwrap().status(), 401);
}

#[tokio::test]
async fn the_slider_places_orders_through_the_public_api_and_zero_stops_them() {
    let running = start("queue").await;
    let set = |rate: u32| {
        http()
            .post(format!("{}/dashboard/api/load", running.base))
            .header(dashboard::token::TOKEN_HEADER, running.token.expose())
            .body(format!(r#"{{"rate_per_s": {rate}}}"#))
            .send()
    };
    assert_eq!(set(100).await.unwrap().status(), 200);
    // The workload's accounts are opened first, then about 100 orders a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    while running.fake.orders.load(Ordering::Relaxed) < 50 {
        assert!(Instant::now() < deadline, "no orders placed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let accounts = running.fake.accounts.load(Ordering::Relaxed);
    assert_eq!(
        accounts,
        (dashboard::load::ACCOUNTS + loadgen::workload::PROBE_ACCOUNTS) as u64
    );
    let keys = running.fake.keys.lock().unwrap().clone();
    let unique: std::collections::HashSet<_> = keys.iter().collect();
    assert_eq!(
        unique.len(),
        keys.len(),
        "every order has its own idempotency key"
    );
    assert!(keys.iter().all(|k| !k.is_empty()));

    // What the page is told about it.
    let seen = snapshots(&format!("{}/dashboard/events", running.base), 4).await;
    let load = &seen[3].1["load"];
    assert_eq!(load["rate_per_s"], 100);
    assert_eq!(load["phase"], "running");
    assert!(load["acked"].as_u64().unwrap() > 0);
    assert!(!load["recent"].as_array().unwrap().is_empty());

    assert_eq!(set(0).await.unwrap().status(), 200);
    // Orders already due may still go out; then nothing more.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped_at = running.fake.orders.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(running.fake.orders.load(Ordering::Relaxed), stopped_at);
}

#[tokio::test]
async fn an_orders_timeline_reads_every_service() {
    let running = start("queue").await;
    let get = |id: &str| {
        http()
            .get(format!(
                "{}/dashboard/api/orders/{id}/timeline",
                running.base
            ))
            .send()
    };
    let answer = get("ord_known").await.unwrap();
    assert_eq!(answer.status(), 200);
    let timeline: Value = answer.json().await.unwrap();
    let steps: Vec<(String, String, Value)> = timeline["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap().to_owned(),
                s["state"].as_str().unwrap().to_owned(),
                s["after_ack_ms"].clone(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("acknowledged".into(), "done".into(), json!(0)),
            ("captured".into(), "done".into(), json!(12)),
            ("counted".into(), "pending".into(), Value::Null),
            ("credited".into(), "done".into(), Value::Null),
            ("confirmed".into(), "done".into(), json!(30)),
        ]
    );
    assert_eq!(get("ord_unknown").await.unwrap().status(), 404);
    assert_eq!(get("ord%2F..%2Fmetrics").await.unwrap().status(), 400);
}

#[tokio::test]
async fn another_system_is_followed_only_on_this_machine() {
    let here = start("strong").await;
    let there = start("queue").await;
    let peer = |path: &str, peer: &str| format!("{}{path}?peer={}", here.base, percent(peer));
    // Its snapshots, through this server.
    let seen = snapshots(&peer("/dashboard/events", &there.base), 1).await;
    assert_eq!(seen[0].1["label"], "queue");
    // Its controls, with its own token: this server's token is not its.
    let control = |token: &Token| {
        http()
            .post(peer("/dashboard/api/load", &there.base))
            .header(dashboard::token::TOKEN_HEADER, token.expose())
            .body(r#"{"rate_per_s": 0}"#)
            .send()
    };
    assert_eq!(control(&there.token).await.unwrap().status(), 200);
    assert_eq!(control(&here.token).await.unwrap().status(), 401);
    // Nothing off this machine, and nothing that is not a plain address.
    for bad in [
        "http://10.1.2.3:8080",
        "http://example.com",
        "file:///etc/passwd",
    ] {
        let answer = http()
            .get(peer("/dashboard/events", bad))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 400, "{bad}");
    }
    // A system that is not running is a 502, not a hang.
    let answer = http()
        .get(peer("/dashboard/api/auth", "http://127.0.0.1:1"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 502);
}

#[tokio::test]
async fn shutting_down_ends_the_event_streams_of_pages_still_watching() {
    let running = start("queue").await;
    let mut response = http()
        .get(format!("{}/dashboard/events", running.base))
        .send()
        .await
        .unwrap();
    response.chunk().await.unwrap();
    running.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), running.server)
        .await
        .expect("the server stops although a page was watching")
        .unwrap();
    // The stream ends rather than hanging.
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = response.chunk().await {}
    })
    .await;
    assert!(end.is_ok());
}

/// The shared secret the fake services expect.
const SECRET: &str = "the-fake-services-shared-secret";

/// One instance of a service's internal admin routes, recording what it is asked.
#[derive(Default)]
struct FakeService {
    /// Whether it consumes a feed (it has something to pause).
    consumes: bool,
    delay_ms: AtomicU64,
    paused: AtomicBool,
    /// Requests that came without the secret.
    refused: AtomicU64,
    /// Dead letters still listed (by id), as replays and discards remove them.
    letters: Mutex<Vec<i64>>,
}

/// Dead letter 1 fails again when replayed (a poison event); 2 applies.
fn fake_service_router(fake: Arc<FakeService>) -> Router {
    let guard = fake.clone();
    Router::new()
        .route(
            PROCESSING_DELAY_PATH,
            get(|State(f): State<Arc<FakeService>>| async move {
                Json(json!({"delay_ms": f.delay_ms.load(Ordering::Relaxed)}))
            })
            .post(
                |State(f): State<Arc<FakeService>>, Json(body): Json<Value>| async move {
                    f.delay_ms
                        .store(body["delay_ms"].as_u64().unwrap(), Ordering::Relaxed);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            STATUS_PATH,
            get(|State(f): State<Arc<FakeService>>| async move {
                let state = if f.paused.load(Ordering::Relaxed) {
                    "paused"
                } else {
                    "running"
                };
                let consumers = if f.consumes {
                    json!({"order": {"position": {"tx": 0, "seq": 1}, "state": state}})
                } else {
                    json!({})
                };
                Json(json!({"consumers": consumers, "in_doubt": 0}))
            }),
        )
        .route(
            PAUSE_PATH,
            post(|State(f): State<Arc<FakeService>>| async move {
                f.paused.store(true, Ordering::Relaxed);
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            RESUME_PATH,
            post(|State(f): State<Arc<FakeService>>| async move {
                f.paused.store(false, Ordering::Relaxed);
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            DEAD_LETTERS_PATH,
            get(|State(f): State<Arc<FakeService>>| async move {
                let listed: Vec<Value> = f
                    .letters
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|&id| {
                        json!({"id": id, "feed": "order", "tx": 0, "seq": id, "event_id": format!("evt_{id}"),
                               "body": {"type": if id == 1 { "Nonsense" } else { "OrderPlaced" }},
                               "error": "cannot read the event", "attempts": 5, "recorded_at_ms": 1})
                    })
                    .collect();
                Json(json!({"dead_letters": listed}))
            }),
        )
        .route(
            "/internal/dead-letters/{id}/{act}",
            post(
                |State(f): State<Arc<FakeService>>, Path((id, act)): Path<(i64, String)>| async move {
                    let mut letters = f.letters.lock().unwrap();
                    if !letters.contains(&id) {
                        return (StatusCode::NOT_FOUND, Json(json!({"error": "no such dead letter"})))
                            .into_response();
                    }
                    if act == "replay" && id == 1 {
                        return (
                            StatusCode::CONFLICT,
                            Json(json!({"error": "the event failed again: unreadable"})),
                        )
                            .into_response();
                    }
                    letters.retain(|&l| l != id);
                    StatusCode::NO_CONTENT.into_response()
                },
            ),
        )
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            let guard = guard.clone();
            async move {
                if request.headers().get(SECRET_HEADER).map(|v| v.as_bytes()) != Some(SECRET.as_bytes()) {
                    guard.refused.fetch_add(1, Ordering::Relaxed);
                    return StatusCode::UNAUTHORIZED.into_response();
                }
                next.run(request).await
            }
        }))
        .with_state(fake)
}

/// Serves a fake instance of `service`; its state and base URL.
async fn fake_service(service: ServiceName) -> (Arc<FakeService>, String) {
    let fake = Arc::new(FakeService {
        consumes: service != ServiceName::Account,
        letters: Mutex::new(if service == ServiceName::Stats {
            vec![1, 2]
        } else {
            Vec::new()
        }),
        ..Default::default()
    });
    let (base, _) = serve(fake_service_router(fake.clone()), CancellationToken::new()).await;
    (fake, base)
}

#[tokio::test]
async fn controls_reach_every_instance_of_a_service_with_the_secret() {
    // Stats runs as two instances; the others as one.
    let mut fakes = Vec::new();
    let mut urls = Vec::new();
    for service in ServiceName::ALL {
        let (fake, base) = fake_service(service).await;
        let mut url = base;
        fakes.push((service, fake));
        if service == ServiceName::Stats {
            let (second, base) = fake_service(service).await;
            url = format!("{url},{base}");
            fakes.push((service, second));
        }
        urls.push((service, url));
    }
    let admin = ServiceAdmin::new(SECRET, |service| {
        urls.iter().find(|(s, _)| *s == service).unwrap().1.clone()
    });
    let running = start_with("queue", |config| config.with_services(admin)).await;
    let stats: Vec<&Arc<FakeService>> = fakes
        .iter()
        .filter(|(s, _)| *s == ServiceName::Stats)
        .map(|(_, f)| f)
        .collect();
    let call = |method: reqwest::Method, path: &str, token: Option<&str>, body: &str| {
        let mut request = http()
            .request(method, format!("{}{path}", running.base))
            .body(body.to_owned());
        if let Some(token) = token {
            request = request.header(dashboard::token::TOKEN_HEADER, token);
        }
        request.send()
    };
    let token = Some(running.token.expose());
    let post = |path: &str, body: &str| call(reqwest::Method::POST, path, token, body);

    // A delay goes to both Stats instances, and the page is told the delay in force.
    let set = post(
        "/dashboard/api/services/stats/delay",
        r#"{"delay_ms": 250}"#,
    )
    .await
    .unwrap();
    assert_eq!(set.status(), 200);
    assert_eq!(
        set.json::<Value>().await.unwrap(),
        json!({"service": "stats", "delay_ms": 250})
    );
    assert!(
        stats
            .iter()
            .all(|f| f.delay_ms.load(Ordering::Relaxed) == 250)
    );
    let seen = snapshots(&format!("{}/dashboard/events", running.base), 2).await;
    let rows = seen[1].1["services"].as_array().unwrap().clone();
    let row = |name: &str| rows.iter().find(|r| r["name"] == name).unwrap().clone();
    assert_eq!(row("stats")["delay_ms"], 250);
    assert_eq!(row("loyalty")["delay_ms"], 0);
    assert_eq!(seen[1].1["controls"]["delays"]["enabled"], true);
    // Past the services' own limit, refused here.
    let too_long = post(
        "/dashboard/api/services/stats/delay",
        r#"{"delay_ms": 60001}"#,
    )
    .await
    .unwrap();
    assert_eq!(too_long.status(), 422);
    assert!(
        stats
            .iter()
            .all(|f| f.delay_ms.load(Ordering::Relaxed) == 250)
    );

    // Pausing: both instances; a service with nothing to pause says so.
    let paused = post("/dashboard/api/services/stats/pause", "")
        .await
        .unwrap();
    assert_eq!(paused.status(), 200);
    assert!(stats.iter().all(|f| f.paused.load(Ordering::Relaxed)));
    let account = post("/dashboard/api/services/account/pause", "")
        .await
        .unwrap();
    assert_eq!(account.status(), 409);
    let why: Value = account.json().await.unwrap();
    assert!(
        why["error"].as_str().unwrap().contains("nothing to pause"),
        "{why}"
    );
    let resumed = post("/dashboard/api/services/stats/resume", "")
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    assert!(stats.iter().all(|f| !f.paused.load(Ordering::Relaxed)));
    let unknown = post("/dashboard/api/services/billing/pause", "")
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    // A dead letter's body, on demand and only with the token.
    let body_path = "/dashboard/api/dead-letters/stats/1";
    let anonymous = call(reqwest::Method::GET, body_path, None, "")
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let letter = call(reqwest::Method::GET, body_path, token, "")
        .await
        .unwrap();
    assert_eq!(letter.status(), 200);
    let letter: Value = letter.json().await.unwrap();
    assert_eq!(letter["body"], json!({"type": "Nonsense"}));
    // A replay that fails again is the service's 409 with its reason; the letter stays.
    let again = post("/dashboard/api/dead-letters/stats/1/replay", "")
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    let why: Value = again.json().await.unwrap();
    assert!(
        why["error"].as_str().unwrap().contains("failed again"),
        "{why}"
    );
    // One that applies, and a discard, remove theirs.
    let replayed = post("/dashboard/api/dead-letters/stats/2/replay", "")
        .await
        .unwrap();
    assert_eq!(replayed.status(), 200);
    assert_eq!(
        replayed.json::<Value>().await.unwrap()["outcome"],
        "replayed"
    );
    let discarded = post("/dashboard/api/dead-letters/stats/1/discard", "")
        .await
        .unwrap();
    assert_eq!(discarded.status(), 200);
    let stats_letters = stats[0].letters.lock().unwrap().clone();
    assert!(stats_letters.is_empty(), "{stats_letters:?}");
    let gone = post("/dashboard/api/dead-letters/stats/1/discard", "")
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let not_a_number = post("/dashboard/api/dead-letters/stats/evt_1/replay", "")
        .await
        .unwrap();
    assert_eq!(not_a_number.status(), 400);

    // Without the token nothing reaches a service, and every call that did carried the secret.
    for path in [
        "/dashboard/api/services/stats/delay",
        "/dashboard/api/services/stats/pause",
        "/dashboard/api/dead-letters/stats/2/replay",
    ] {
        let refused = call(reqwest::Method::POST, path, None, r#"{"delay_ms": 1}"#)
            .await
            .unwrap();
        assert_eq!(refused.status(), 401, "{path}");
    }
    assert!(
        stats
            .iter()
            .all(|f| f.delay_ms.load(Ordering::Relaxed) == 250)
    );
    for (service, fake) in &fakes {
        assert_eq!(fake.refused.load(Ordering::Relaxed), 0, "{service}");
    }
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
