//! The gateway in front of tiny stand-in services: real HTTP on port 0, so what is checked is
//! the gateway's own routing, forwarding and aggregation, not any service's logic.

use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderName};
use axum::response::{IntoResponse, Response};
use contracts::ServiceName;
use contracts::internal::SECRET_HEADER;
use contracts::limits::BODY_BYTES_MAX;
use gateway::Gateway;
use runtime::Peers;
use serde_json::{Value, json};
use tokio::net::TcpListener;

const SECRET: &str = "s3cret";
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// A header only the services' own callers should see: the gateway must not pass it on.
const SERVICE_ONLY: HeaderName = HeaderName::from_static("x-service-only");
const CALL_TIMEOUT: Duration = Duration::from_millis(300);

/// A stand-in for one service. `/health` and the internal routes answer as a real service
/// would; a path ending in `/slow` never answers in time; one ending in `/busy` answers `503`
/// with `Retry-After`; anything else is echoed back as `201` with its own content type and
/// the request's `Idempotency-Key` (or a made-up one, as Order does), so the test sees exactly
/// what the gateway sent.
async fn stand_in(name: ServiceName, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let has_secret = parts
        .headers
        .get(SECRET_HEADER)
        .is_some_and(|v| v.as_bytes() == SECRET.as_bytes());
    if path.starts_with("/internal/") && !has_secret {
        return (StatusCode::UNAUTHORIZED, "no secret").into_response();
    }
    match path.as_str() {
        "/health" => axum::Json(json!({"status": "ok"})).into_response(),
        "/internal/metrics" => format!(
            "# HELP converge_events_total Events applied.\n\
             # TYPE converge_events_total counter\n\
             converge_events_total{{service=\"{name}\"}} 1\n"
        )
        .into_response(),
        "/internal/status" => axum::Json(json!({
            "outbox_head": null, "positions": {}, "in_doubt": 0
        }))
        .into_response(),
        "/internal/dead-letters" => axum::Json(json!({"dead_letters": []})).into_response(),
        slow if slow.ends_with("/slow") => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            StatusCode::OK.into_response()
        }
        busy if busy.ends_with("/busy") => (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (CONTENT_TYPE, "application/json"),
                (RETRY_AFTER, "7"),
                (SERVICE_ONLY, "not for users"),
            ],
            r#"{"error":"busy"}"#,
        )
            .into_response(),
        _ => {
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            let header = |name: &str| {
                parts
                    .headers
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_owned())
            };
            let echo = json!({
                "service": name.as_str(),
                "method": parts.method.as_str(),
                "path": path,
                "query": parts.uri.query(),
                "body": String::from_utf8(body.to_vec()).unwrap(),
                "content_type": header("content-type"),
                "idempotency_key": header("idempotency-key"),
                "secret": header(SECRET_HEADER),
                "cookie": header("cookie"),
            });
            let key = header("idempotency-key").unwrap_or_else(|| "gen_made_up".into());
            (
                StatusCode::CREATED,
                [
                    (CONTENT_TYPE, "application/x-echo".to_owned()),
                    (IDEMPOTENCY_KEY, key),
                    (SERVICE_ONLY, "not for users".to_owned()),
                ],
                echo.to_string(),
            )
                .into_response()
        }
    }
}

async fn serve(router: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

async fn spawn_stand_in(name: ServiceName) -> String {
    serve(Router::new().fallback(move |request: Request| stand_in(name, request))).await
}

/// An address with nothing listening: a stopped service.
async fn stopped() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// The gateway, with a stand-in for each service in `running` and a stopped one for the rest.
async fn spawn_gateway(running: &[ServiceName]) -> String {
    let mut urls = Vec::new();
    for service in ServiceName::ALL {
        urls.push(if running.contains(&service) {
            spawn_stand_in(service).await
        } else {
            stopped().await
        });
    }
    let [account, order, payment, loyalty, stats] = urls.try_into().unwrap();
    let peers = Peers {
        account,
        order,
        payment,
        loyalty,
        stats,
    };
    serve(gateway::router(Gateway::new(
        peers,
        SECRET.to_owned(),
        CALL_TIMEOUT,
    )))
    .await
}

fn client() -> reqwest::Client {
    runtime::peer::http_client()
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{status} answered as {content_type}"
    );
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_request_reaches_its_service_unchanged_and_the_answer_comes_back_unchanged() {
    let base = spawn_gateway(&[ServiceName::Account]).await;
    let response = client()
        .post(format!("{base}/accounts?trace=1&x=a%20b"))
        .header("content-type", "application/json")
        .header("idempotency-key", "key-1")
        .header(SECRET_HEADER, "a user's guess")
        .header("cookie", "session=1")
        .body(r#"{"name":"Ada"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/x-echo");
    assert_eq!(response.headers()[IDEMPOTENCY_KEY], "key-1");
    assert!(response.headers().get(SERVICE_ONLY).is_none());
    let echo: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(
        echo,
        json!({
            "service": "account",
            "method": "POST",
            "path": "/accounts",
            "query": "trace=1&x=a%20b",
            "body": r#"{"name":"Ada"}"#,
            "content_type": "application/json",
            "idempotency_key": "key-1",
            "secret": null,
            "cookie": null,
        })
    );
}

#[tokio::test]
async fn path_parameters_pick_the_owning_service() {
    let base = spawn_gateway(&ServiceName::ALL).await;
    let cases = [
        ("GET", "/accounts", "account"),
        ("GET", "/accounts/acc_1", "account"),
        ("POST", "/accounts/acc_1/suspend", "account"),
        ("GET", "/accounts/acc_1/orders", "order"),
        ("POST", "/orders", "order"),
        ("GET", "/orders/ord_1", "order"),
        ("POST", "/wallets/acc_1/top-ups", "payment"),
        ("GET", "/wallets/acc_1", "payment"),
        ("GET", "/wallets/acc_1/payments", "payment"),
        ("GET", "/payments/ord_1", "payment"),
        ("GET", "/loyalty/acc_1", "loyalty"),
        ("GET", "/loyalty/acc_1/ledger", "loyalty"),
        ("GET", "/stats", "stats"),
        ("GET", "/stats/accounts/acc_1", "stats"),
    ];
    for (method, path, service) in cases {
        let response = client()
            .request(method.parse().unwrap(), format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "{method} {path}");
        let echo: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert_eq!(echo["service"], service, "{method} {path}");
        assert_eq!(echo["method"], method, "{method} {path}");
        assert_eq!(echo["path"], path, "{method} {path}");
    }
}

#[tokio::test]
async fn the_answer_keeps_the_headers_a_user_acts_on() {
    let base = spawn_gateway(&[ServiceName::Order, ServiceName::Payment]).await;
    // The key Order made up for an order sent without one: the client's only way to retry.
    let response = client()
        .post(format!("{base}/orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()[IDEMPOTENCY_KEY], "gen_made_up");

    // A service's 503 says when to try again, and the gateway must not lose that.
    let response = client()
        .get(format!("{base}/payments/busy"))
        .send()
        .await
        .unwrap();
    let headers: HeaderMap = response.headers().clone();
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, json!({"error": "busy"}));
    assert_eq!(headers[RETRY_AFTER], "7");
    assert!(headers.get(SERVICE_ONLY).is_none());
}

#[tokio::test]
async fn a_stopped_service_is_a_503_naming_it() {
    let base = spawn_gateway(&[ServiceName::Account]).await;
    let response = client()
        .get(format!("{base}/orders/ord_1"))
        .send()
        .await
        .unwrap();
    let retry_after = response.headers().get(RETRY_AFTER).cloned();
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, json!({"error": "order service is unreachable"}));
    assert!(retry_after.is_some(), "a 503 says when to try again");
}

#[tokio::test]
async fn a_slow_service_is_a_503_after_the_call_timeout() {
    let base = spawn_gateway(&[ServiceName::Account]).await;
    let started = std::time::Instant::now();
    let response = client()
        .get(format!("{base}/accounts/slow"))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!({"error": "account service did not answer in time"})
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let base = spawn_gateway(&[ServiceName::Account]).await;
    let response = client()
        .post(format!("{base}/accounts"))
        .header("content-type", "application/json")
        .body(vec![b' '; BODY_BYTES_MAX + 1])
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body["error"].as_str().unwrap().contains("larger than"));

    let at_the_limit = client()
        .post(format!("{base}/accounts"))
        .body(vec![b' '; BODY_BYTES_MAX])
        .send()
        .await
        .unwrap();
    assert_eq!(at_the_limit.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn internal_routes_and_unknown_paths_are_a_json_404() {
    let base = spawn_gateway(&ServiceName::ALL).await;
    for (method, path) in [
        ("GET", "/internal/feed"),
        ("GET", "/internal/feed?after=0"),
        ("POST", "/internal/2pc/prepare"),
        ("GET", "/internal/status"),
        ("GET", "/internal/metrics"),
        ("GET", "/no/such/route"),
    ] {
        let response = client()
            .request(method.parse().unwrap(), format!("{base}{path}"))
            .header(SECRET_HEADER, SECRET)
            .send()
            .await
            .unwrap();
        let (status, body) = json_of(response).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(body, json!({"error": "no such route"}), "{method} {path}");
    }
}

#[tokio::test]
async fn a_wrong_method_on_a_known_path_is_a_json_405() {
    let base = spawn_gateway(&ServiceName::ALL).await;
    let response = client()
        .delete(format!("{base}/orders/ord_1"))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body["error"].as_str().unwrap().contains("DELETE"));
}

#[tokio::test]
async fn health_is_ok_only_when_every_service_answers() {
    let base = spawn_gateway(&ServiceName::ALL).await;
    let (status, body) =
        json_of(client().get(format!("{base}/health")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"status": "ok", "services": {
            "account": "ok", "order": "ok", "payment": "ok", "loyalty": "ok", "stats": "ok"
        }})
    );

    let base = spawn_gateway(&[ServiceName::Account, ServiceName::Order]).await;
    let (status, body) =
        json_of(client().get(format!("{base}/health")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!({"status": "unavailable", "services": {
            "account": "ok", "order": "ok",
            "payment": "unavailable", "loyalty": "unavailable", "stats": "unavailable"
        }})
    );
}

#[tokio::test]
async fn metrics_join_every_service_and_name_the_missing() {
    let base = spawn_gateway(&[ServiceName::Account, ServiceName::Stats]).await;
    let response = client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "text/plain; version=0.0.4"
    );
    let text = response.text().await.unwrap();
    assert_eq!(
        text,
        "# service order unavailable\n\
         # service payment unavailable\n\
         # service loyalty unavailable\n\
         # HELP converge_events_total Events applied.\n\
         # TYPE converge_events_total counter\n\
         converge_events_total{service=\"account\"} 1\n\
         converge_events_total{service=\"stats\"} 1\n"
    );
}

#[tokio::test]
async fn dead_letters_come_from_every_service_or_not_at_all() {
    let base = spawn_gateway(&ServiceName::ALL).await;
    let (status, body) = json_of(
        client()
            .get(format!("{base}/dead-letters"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"account": [], "order": [], "payment": [], "loyalty": [], "stats": []})
    );

    let base = spawn_gateway(&[ServiceName::Account]).await;
    let (status, _) = json_of(
        client()
            .get(format!("{base}/dead-letters"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn progress_is_quiet_only_when_every_service_answers() {
    let base = spawn_gateway(&ServiceName::ALL).await;
    let (status, body) = json_of(
        client()
            .get(format!("{base}/progress"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["quiet"], true);
    assert_eq!(body["services"].as_object().unwrap().len(), 5);

    let base = spawn_gateway(&[ServiceName::Account]).await;
    let (_, body) = json_of(
        client()
            .get(format!("{base}/progress"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["quiet"], false);
    assert_eq!(
        body["services"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["account"]
    );
}

#[tokio::test]
async fn the_openapi_document_is_served() {
    let base = spawn_gateway(&[]).await;
    let (status, body) = json_of(
        client()
            .get(format!("{base}/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["openapi"], "3.1.0");
}
