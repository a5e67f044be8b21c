//! The Order service: places orders, and owns them and the clients' idempotency keys.
//!
//! `POST /orders` validates the order, honours the `Idempotency-Key`, then places it the
//! way the mode says:
//! - `strong`: coordinates a two-phase commit over Account, Payment, Loyalty and Stats and
//!   answers `201 confirmed` only once every one has applied it; every other answer says what
//!   is known of the order's fate.
//! - `eventual` (queue and cron): writes the order and its `OrderPlaced` event in one local
//!   transaction (transactional outbox, in batches: `placement`) and answers `202 accepted`
//!   at once; it then follows Payment's verdicts to confirm or cancel the order, emitting
//!   `OrderCancelled` so the other services compensate (a saga).
//! - `store` and `idempotency`: every statement Order runs, for SQLite and PostgreSQL.

mod eventual;
mod http;
mod idempotency;
mod placement;
mod store;
mod strong;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use contracts::{Mode, ServiceName};
use prometheus::IntCounterVec;
use runtime::{ApiError, App, Metrics, ServiceConfig};
use service_kit::Service;
use storage::{Db, Migration};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use transport::Outbox;
use transport::lease::Lease;
use transport::prune::Rule;

static MIGRATIONS: &[Migration] = &[Migration {
    name: "order_0001",
    sqlite: include_str!("../migrations/sqlite/0001_orders.sql"),
    postgres: include_str!("../migrations/postgres/0001_orders.sql"),
}];

pub async fn build(
    config: ServiceConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<App> {
    let mut service =
        Service::open(ServiceName::Order, config, MIGRATIONS, listener, shutdown).await?;
    let outcomes = IntCounterVec::new(
        prometheus::Opts::new("orders_total", "Orders answered, by status code."),
        &["status"],
    )?;
    service.metrics().register(Box::new(outcomes.clone()));
    let db = service.db().clone();
    let outbox = match service.mode() {
        Mode::Strong => Outbox::new(db.clone()),
        Mode::Queue | Mode::Cron => service.outbox(),
    };
    let mut orders = Orders {
        mode: service.mode(),
        db: db.clone(),
        outbox: outbox.clone(),
        participants: Arc::new(
            [
                ServiceName::Account,
                ServiceName::Payment,
                ServiceName::Loyalty,
                ServiceName::Stats,
            ]
            .map(|name| twophase::coordinator::Link::new(service.peer(name))),
        ),
        metrics: service.metrics().clone(),
        outcomes,
        placer: None,
        completions: None,
        running: Default::default(),
    };
    match service.mode() {
        Mode::Strong => {
            let (marks, queue) = tokio::sync::mpsc::channel(strong::COMPLETIONS_QUEUE_MAX);
            orders.completions = Some(marks);
            service.task(
                "order completion marks",
                strong::write_completions(db.clone(), queue),
            );
            service.admin_routes(strong::router(orders.clone()));
            let lease = Lease::new("order-recovery", service.config().instance.clone());
            let recovery = strong::complete_decisions(
                orders.clone(),
                lease,
                service.config().in_doubt_after,
                service.shutdown().clone(),
            );
            service.task("order two-phase-commit recovery", recovery);
        }
        Mode::Queue | Mode::Cron => {
            let (placer, placing) = placement::Placer::new(db.clone(), outbox);
            orders.placer = Some(placer);
            service.task("order placer", placing);
            service.consume(ServiceName::Payment, orders.clone());
        }
    }
    service.in_doubt(store::IN_DOUBT_SQL);
    let retention = service.config().retention;
    let keep_keys = retention.idempotency_keys.as_millis() as i64;
    service.prune(Rule {
        what: "expired idempotency keys",
        prune: Box::new(move |tx, now| idempotency::prune(tx, now - keep_keys)),
    });
    let keep_decisions = retention.decisions.as_millis() as i64;
    service.prune(Rule {
        what: "completed two-phase-commit decisions",
        prune: Box::new(move |tx, now| store::prune_decisions(tx, now - keep_decisions)),
    });
    let public = Router::new()
        .route("/orders", post(http::place))
        .route("/orders/{id}", get(http::read))
        .route("/accounts/{id}/orders", get(http::list))
        .with_state(orders);
    service.serve(public)
}

#[derive(Clone)]
struct Orders {
    mode: Mode,
    db: Db,
    /// Eventual modes: where `OrderPlaced` and `OrderCancelled` go.
    outbox: Outbox,
    /// Strong mode's participants, in the order their votes are reported.
    participants: Arc<[twophase::coordinator::Link; 4]>,
    metrics: Metrics,
    outcomes: IntCounterVec,
    /// Eventual modes: places orders in batches.
    placer: Option<placement::Placer>,
    /// Strong mode: decisions every participant has applied, with their keys' answers, to be
    /// written down.
    completions: Option<tokio::sync::mpsc::Sender<(String, String)>>,
    /// Strong mode: the attempts running here, by key.
    running: strong::Running,
}

/// An answer as it is stored under an idempotency key and sent: a status and a JSON body.
#[derive(Debug, Clone)]
struct Reply {
    status: StatusCode,
    body: String,
    /// Where a strong-mode commit left the readers that may lag (Stats on standbys): sent
    /// as `converge-read-token`, so a read that presents it sees the order. Not stored
    /// under the idempotency key: a replayed answer is older than the standbys by then.
    read_token: Option<String>,
}

impl Reply {
    fn new(status: StatusCode, body: String) -> Self {
        Self {
            status,
            body,
            read_token: None,
        }
    }

    /// An error as the user sees it. A server-side failure is logged here, once.
    fn error(error: &ApiError) -> Self {
        if let ApiError::Internal(cause) = error {
            tracing::error!(error = format!("{cause:#}"), "request failed");
        }
        Self::new(error.status(), error.body().to_string())
    }
}
