//! The baseline: this machine's floor for "take an order durably".
//!
//! A bare `POST /orders` that parses and validates the same order as the Order service and
//! commits it in one SQLite transaction (the same durability settings and the same group
//! commit) before answering `201`. No gateway, no other service, no outbox. Every mode's
//! latency is also reported as a ratio to this one's at the same load.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use contracts::api::PlaceOrderRequest;
use contracts::ids::OrderId;
use contracts::order::NewOrder;
use contracts::{Mode, now_ms};
use runtime::{ApiError, ApiJson, App, Metrics};
use storage::{Db, Location, Migration};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

static MIGRATIONS: &[Migration] = &[Migration {
    name: "baseline_0001",
    sqlite: "CREATE TABLE orders (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        total_cents INTEGER NOT NULL,
        items TEXT NOT NULL,
        acknowledged_at_ms INTEGER NOT NULL
    )",
    postgres: "CREATE TABLE orders (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        total_cents BIGINT NOT NULL,
        items TEXT NOT NULL,
        acknowledged_at_ms BIGINT NOT NULL
    )",
}];

/// Builds the baseline server on a bound listener, with its database at `location`.
pub async fn build(
    location: &Location,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<App> {
    // Stored as a queue-mode database only because every database records a mode; the
    // baseline has no consistency mode of its own.
    let db = Db::open(location, "baseline", &[MIGRATIONS], Mode::Queue).await?;
    let public = Router::new().route("/orders", post(place)).with_state(db);
    let router = runtime::http::service_router(
        public,
        Router::new(),
        &crate::system::new_secret(),
        Metrics::new("baseline"),
        runtime::http::Knobs::default(),
    );
    Ok(App {
        name: "baseline".into(),
        addr: listener.local_addr()?,
        tasks: vec![runtime::http::serve_task(
            listener,
            router,
            shutdown.clone(),
        )],
        shutdown,
    })
}

async fn place(
    State(db): State<Db>,
    ApiJson(request): ApiJson<PlaceOrderRequest>,
) -> Result<Response, ApiError> {
    let order = NewOrder::parse(request)?;
    let id = OrderId::generate();
    let now = now_ms();
    let body = serde_json::json!({
        "id": id.as_str(),
        "account_id": order.account_id().as_str(),
        "status": "confirmed",
        "total_cents": order.total().get(),
        "points": order.total().points(),
        "items": order.items(),
        "acknowledged_at_ms": now,
    })
    .to_string();
    let items = serde_json::to_string(order.items()).expect("line items always serialize");
    db.write(move |tx| {
        tx.execute(
            "INSERT INTO orders (id, account_id, total_cents, items, acknowledged_at_ms)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &id.as_str(),
                &order.account_id().as_str(),
                &order.total().get(),
                &items,
                &now,
            ],
        )
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}
