//! The Payment service owns wallets and payments: one payment per order, captured, declined
//! or refunded.
//!
//! - strong: a two-phase-commit participant. Prepare *holds* the order's total (the wallet
//!   keeps it but cannot spend it twice); commit captures it; abort releases it.
//! - queue and cron: a consumer of the Order feed. For each placed order it asks Account
//!   whether the account may order, then captures or declines, and writes the verdict to its
//!   own outbox in the same transaction (`decide`). The Order service reads that feed.

mod decide;
mod http;
mod participant;
mod wallets;

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use axum::Router;
use axum::routing::{get, post};
use contracts::{Mode, ServiceName};
use runtime::{App, Metrics, Peer, ServiceConfig, Task};
use storage::Db;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use transport::{ConsumerConfig, HttpFeed, Outbox};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

const IN_DOUBT_SQL: &str = "SELECT COUNT(*) FROM payments WHERE status = 'held'";

pub async fn build(
    config: ServiceConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<App> {
    let (db, committer) = Db::open(&config.data_dir, "payment", &MIGRATOR, config.mode).await?;
    transport::install(&db).await?;
    let metrics = Metrics::new("payment");
    let outbox = Outbox::open(db.clone()).await?;
    let http = runtime::peer::http_client();
    let peer = |name: &str, url: &str| {
        Peer::new(
            name,
            url,
            http.clone(),
            &config.secret,
            config.call_timeout,
            config.network_delay,
        )
    };
    let payments = Payments {
        db: db.clone(),
        metrics: metrics.clone(),
        outbox: outbox.clone(),
        account: peer("account", &config.peers.account),
        appended: Arc::new(AtomicI64::new(0)),
    };
    let public = Router::new()
        .route("/wallets/{account_id}", get(http::wallet))
        .route("/wallets/{account_id}/top-ups", post(http::top_up))
        .route("/wallets/{account_id}/payments", get(http::payments_of))
        .route("/payments/{order_id}", get(http::payment))
        .with_state(payments.clone());
    let mut internal =
        transport::admin::router(db.clone(), Some(outbox.clone()), Some(IN_DOUBT_SQL))
            .merge(transport::feed::router(outbox));
    let mut tasks = vec![Task::new("payment group commit", committer.run())];
    let order = peer("order", &config.peers.order);
    match config.mode {
        Mode::Strong => {
            let participant = Arc::new(payments.clone());
            internal = internal.merge(runtime::http::with_processing_delay(
                twophase::router(participant.clone()),
                config.processing_delay,
            ));
            tasks.push(Task::new(
                "payment in-doubt resolver",
                twophase::resolve_in_doubt(
                    participant,
                    order,
                    config.in_doubt_after,
                    shutdown.clone(),
                ),
            ));
        }
        Mode::Queue | Mode::Cron => {
            let schedule = transport::consumer::schedule_for(config.mode, config.cron_interval);
            let mut consumer = ConsumerConfig::new(schedule);
            consumer.processing_delay = config.processing_delay;
            tasks.push(Task::new(
                "payment consumer of the order feed",
                transport::consumer::run(
                    db,
                    HttpFeed::new("order", order),
                    payments,
                    consumer,
                    metrics.clone(),
                    shutdown.clone(),
                ),
            ));
        }
    }
    let router = runtime::http::service_router(public, internal, &config.secret, metrics);
    let addr = listener.local_addr()?;
    tasks.push(runtime::http::serve_task(
        listener,
        router,
        shutdown.clone(),
    ));
    Ok(App {
        name: ServiceName::Payment.to_string(),
        addr,
        tasks,
        shutdown,
    })
}

#[derive(Clone)]
struct Payments {
    db: Db,
    metrics: Metrics,
    outbox: Outbox,
    account: Peer,
    /// The newest outbox position written by the batch being applied; published once the
    /// batch commits. Only the consumer task writes Payment's outbox, so one cell suffices.
    appended: Arc<AtomicI64>,
}
