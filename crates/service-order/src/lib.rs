//! The Order service: places orders, and owns them and the clients' idempotency keys.
//!
//! `POST /orders` validates the order, honours the `Idempotency-Key`, then places it the
//! way the mode says:
//! - `strong`: coordinates a two-phase commit over Account, Payment, Loyalty and Stats and
//!   answers `201 confirmed` only once every one has applied it.
//! - `eventual` (queue and cron): writes the order and its `OrderPlaced` event in one local
//!   transaction (transactional outbox) and answers `202 accepted` at once; it then follows
//!   Payment's verdicts to confirm or cancel the order, emitting `OrderCancelled` so the other
//!   services compensate (a saga).

mod eventual;
mod http;
mod idempotency;
mod placement;
mod store;
mod strong;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use contracts::{Mode, ServiceName};
use prometheus::IntCounterVec;
use runtime::{App, Metrics, Peer, ServiceConfig, Task};
use storage::Db;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use transport::{ConsumerConfig, HttpFeed, Outbox};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Decisions logged but not yet applied everywhere: what the coordinator still owes.
const IN_DOUBT_SQL: &str = "SELECT COUNT(*) FROM decisions WHERE completed = 0";

pub async fn build(
    config: ServiceConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<App> {
    let (db, committer) = Db::open(&config.data_dir, "order", &MIGRATOR, config.mode).await?;
    transport::install(&db).await?;
    let metrics = Metrics::new("order");
    let outcomes = IntCounterVec::new(
        prometheus::Opts::new("orders_total", "Orders answered, by outcome."),
        &["outcome"],
    )?;
    metrics.register(Box::new(outcomes.clone()));
    let outbox = Outbox::open(db.clone()).await?;
    let http = runtime::peer::http_client();
    let peer = |service: ServiceName| {
        Peer::new(
            service.as_str(),
            config.peers.url(service),
            http.clone(),
            &config.secret,
            config.call_timeout,
            config.network_delay,
        )
    };
    // Eventual modes place orders in set-based batches (see `placement`).
    let (placer, placer_task) = if config.mode.is_eventual() {
        let published = outbox.clone();
        let (placer, task) =
            placement::Placer::new(db.clone(), move |seq| published.published(seq));
        (Some(placer), Some(Task::new("order placer", task)))
    } else {
        (None, None)
    };
    // Strong mode marks completed decisions in batches (see `strong::write_completions`).
    let (completions, completions_task) = if config.mode == Mode::Strong {
        let (marks, queue) = tokio::sync::mpsc::channel(strong::COMPLETIONS_QUEUE_MAX);
        let task = Task::new(
            "order completion marks",
            strong::write_completions(db.clone(), queue),
        );
        (Some(marks), Some(task))
    } else {
        (None, None)
    };
    let orders = Orders {
        mode: config.mode,
        db: db.clone(),
        outbox: outbox.clone(),
        participants: Arc::new(
            [
                ServiceName::Account,
                ServiceName::Payment,
                ServiceName::Loyalty,
                ServiceName::Stats,
            ]
            .map(|service| twophase::coordinator::Link::new(peer(service))),
        ),
        metrics: metrics.clone(),
        outcomes,
        settled: Default::default(),
        settled_seq: Default::default(),
        placer,
        completions,
    };
    let public = Router::new()
        .route("/orders", post(http::place))
        .route("/orders/{id}", get(http::read))
        .route("/accounts/{id}/orders", get(http::list))
        .with_state(orders.clone());
    let mut internal =
        transport::admin::router(db.clone(), Some(outbox.clone()), Some(IN_DOUBT_SQL))
            .merge(transport::feed::router(outbox));
    let mut tasks = vec![Task::new("order group commit", committer.run())];
    tasks.extend(placer_task);
    tasks.extend(completions_task);
    match config.mode {
        Mode::Strong => {
            // Before serving: settle what a crash left half done.
            strong::recover_keys(&orders).await?;
            internal = internal.merge(strong::router(orders.clone()));
            tasks.push(Task::new(
                "order two-phase-commit recovery",
                strong::complete_decisions(orders.clone(), config.in_doubt_after, shutdown.clone()),
            ));
        }
        Mode::Queue | Mode::Cron => {
            let schedule = transport::consumer::schedule_for(config.mode, config.cron_interval);
            let mut consumer = ConsumerConfig::new(schedule);
            consumer.processing_delay = config.processing_delay;
            tasks.push(Task::new(
                "order consumer of the payment feed",
                transport::consumer::run(
                    db,
                    HttpFeed::new("payment", peer(ServiceName::Payment)),
                    orders.clone(),
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
        name: ServiceName::Order.to_string(),
        addr,
        tasks,
        shutdown,
    })
}

#[derive(Clone)]
struct Orders {
    mode: Mode,
    db: Db,
    outbox: Outbox,
    /// Strong mode's participants, in the order their votes are reported.
    participants: Arc<[twophase::coordinator::Link; 4]>,
    metrics: Metrics,
    outcomes: IntCounterVec,
    /// Acknowledgement times of the orders settled by the batch being applied, observed as
    /// apply lag once it commits. Only the consumer task touches it.
    settled: Arc<std::sync::Mutex<Vec<i64>>>,
    /// The newest `OrderCancelled` written by that batch, published once it commits.
    settled_seq: Arc<std::sync::atomic::AtomicI64>,
    /// Eventual modes: places orders in batches.
    placer: Option<placement::Placer>,
    /// Strong mode: decisions every participant has applied, to be marked completed.
    completions: Option<tokio::sync::mpsc::Sender<String>>,
}
