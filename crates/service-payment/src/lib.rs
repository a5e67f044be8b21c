//! The Payment service owns wallets and payments: one payment per order, captured, declined
//! or refunded.
//!
//! - strong: a two-phase-commit participant (`participant`). Prepare *holds* the order's
//!   total (the wallet keeps it but cannot spend it twice); commit captures it; abort
//!   releases it.
//! - queue and cron: a consumer of the Order feed (`decide`). For each placed order it asks
//!   Account whether the account may order, then captures or declines, and writes the verdict
//!   to its own outbox in the same transaction. The Order service reads that feed.
//! - `wallets`: every statement on wallets and payments, for SQLite and PostgreSQL.
//! - `http`: the public routes.

mod decide;
mod http;
mod participant;
mod wallets;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use contracts::{Mode, ServiceName};
use runtime::{App, Metrics, Peer, ServiceConfig};
use service_kit::Service;
use storage::{Db, Migration};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use transport::Outbox;
use transport::prune::Rule;

static MIGRATIONS: &[Migration] = &[Migration {
    name: "payment_0001",
    sqlite: include_str!("../migrations/sqlite/0001_payments.sql"),
    postgres: include_str!("../migrations/postgres/0001_payments.sql"),
}];

pub async fn build(
    config: ServiceConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<App> {
    let mut service =
        Service::open(ServiceName::Payment, config, MIGRATIONS, listener, shutdown).await?;
    // Only the eventual modes publish verdicts; strong mode's outbox stays empty and unserved.
    let outbox = match service.mode() {
        Mode::Strong => Outbox::new(service.db().clone()),
        Mode::Queue | Mode::Cron => service.outbox(),
    };
    let payments = Payments {
        db: service.db().clone(),
        metrics: service.metrics().clone(),
        outbox,
        account: service.peer(ServiceName::Account),
    };
    match service.mode() {
        Mode::Strong => service.participant(Arc::new(payments.clone())),
        Mode::Queue | Mode::Cron => service.consume(ServiceName::Order, payments.clone()),
    }
    service.in_doubt(wallets::IN_DOUBT_SQL);
    let retention = service.config().retention;
    let keep_tombstones = retention.decisions.as_millis() as i64;
    service.prune(Rule {
        what: "payment tombstones of aborted holds",
        prune: Box::new(move |tx, now| wallets::prune_released(tx, now - keep_tombstones)),
    });
    let keep_keys = retention.idempotency_keys.as_millis() as i64;
    service.prune(Rule {
        what: "expired top-up idempotency keys",
        prune: Box::new(move |tx, now| wallets::prune_top_up_keys(tx, now - keep_keys)),
    });
    let public = Router::new()
        .route("/wallets/{account_id}", get(http::wallet))
        .route("/wallets/{account_id}/top-ups", post(http::top_up))
        .route("/wallets/{account_id}/payments", get(http::payments_of))
        .route("/payments/{order_id}", get(http::payment))
        .with_state(payments);
    service.serve(public)
}

#[derive(Clone)]
struct Payments {
    db: Db,
    metrics: Metrics,
    /// Where the verdicts go, in the eventual modes.
    outbox: Outbox,
    account: Peer,
}
