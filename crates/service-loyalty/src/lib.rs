//! The Loyalty service grants one point per whole currency unit of each confirmed order, and
//! keeps a ledger with one entry per order.
//!
//! How an order reaches it depends on the mode (two-phase commit, the Order feed read
//! continuously, or a periodic batch job); crediting is the same in every mode: `credit_all`
//! and `reverse`, idempotent per order.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use contracts::api::{Ledger, LedgerEntry, LedgerStatus, PageQuery, Points};
use contracts::events::{Event, EventBody};
use contracts::internal::{PrepareRequest, Vote};
use contracts::{Mode, ServiceName, now_ms};
use runtime::{ApiError, ApiJson, App, Metrics, Peer, ServiceConfig, Task};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use storage::Db;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use transport::{Apply, ApplyError, ConsumerConfig, HttpFeed};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

const IN_DOUBT_SQL: &str = "SELECT COUNT(*) FROM ledger WHERE status = 'pending'";

pub async fn build(
    config: ServiceConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<App> {
    let (db, committer) = Db::open(&config.data_dir, "loyalty", &MIGRATOR, config.mode).await?;
    transport::install(&db).await?;
    let metrics = Metrics::new("loyalty");
    let loyalty = Loyalty {
        db: db.clone(),
        metrics: metrics.clone(),
    };
    let order = Peer::new(
        "order",
        &config.peers.order,
        runtime::peer::http_client(),
        &config.secret,
        config.call_timeout,
        config.network_delay,
    );
    let public = Router::new()
        .route("/loyalty/{account_id}", get(points))
        .route("/loyalty/{account_id}/ledger", get(ledger))
        .route("/loyalty/{account_id}/ledger/{order_id}", get(ledger_entry))
        .with_state(loyalty.clone());
    let mut internal = transport::admin::router(db.clone(), None, Some(IN_DOUBT_SQL));
    let mut tasks = vec![Task::new("loyalty group commit", committer.run())];
    match config.mode {
        Mode::Strong => {
            let participant = Arc::new(loyalty.clone());
            // Only the two-phase-commit steps pay the processing delay: the admin routes stay
            // fast so that a slow service can still say how far it has got.
            internal = internal.merge(runtime::http::with_processing_delay(
                twophase::router(participant.clone()),
                config.processing_delay,
            ));
            tasks.push(Task::new(
                "loyalty in-doubt resolver",
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
                "loyalty consumer of the order feed",
                transport::consumer::run(
                    db,
                    HttpFeed::new("order", order),
                    loyalty,
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
        name: ServiceName::Loyalty.to_string(),
        addr,
        tasks,
        shutdown,
    })
}

#[derive(Clone)]
struct Loyalty {
    db: Db,
    metrics: Metrics,
}

/// Credits many orders at once, each at most once: one insert for the entries (which returns
/// the orders not credited before), then one upsert of the balances, summed here. The same as
/// crediting each order on its own, in two statements. Each item is `(order_id, account_id, points)`.
async fn credit_all(
    conn: &mut SqliteConnection,
    placed: &[(String, String, i64)],
) -> Result<(), sqlx::Error> {
    if placed.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let mut entries = QueryBuilder::<Sqlite>::new(
        "INSERT INTO ledger (order_id, account_id, points, status, applied_at_ms) ",
    );
    entries.push_values(placed, |mut row, (order_id, account_id, points)| {
        row.push_bind(order_id)
            .push_bind(account_id)
            .push_bind(*points)
            .push_bind("credited")
            .push_bind(now);
    });
    entries.push(
        " ON CONFLICT (order_id) DO UPDATE SET status = 'credited', applied_at_ms = excluded.applied_at_ms
          WHERE status = 'pending' RETURNING order_id",
    );
    let credited: std::collections::HashSet<String> = entries
        .build_query_scalar()
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
    let mut balances: std::collections::BTreeMap<&str, i64> = Default::default();
    for (order_id, account_id, points) in placed {
        if credited.contains(order_id) {
            *balances.entry(account_id).or_default() += points;
        }
    }
    if balances.is_empty() {
        return Ok(());
    }
    let mut upsert = QueryBuilder::<Sqlite>::new("INSERT INTO balances (account_id, points) ");
    upsert.push_values(&balances, |mut row, (account_id, points)| {
        row.push_bind(*account_id).push_bind(*points);
    });
    upsert.push(" ON CONFLICT (account_id) DO UPDATE SET points = points + excluded.points");
    upsert.build().execute(&mut *conn).await?;
    Ok(())
}

/// Takes back a cancelled order's points if they were credited; an order not seen yet gets a
/// reversed entry, so that it is never credited later.
async fn reverse(
    conn: &mut SqliteConnection,
    order_id: &str,
    account_id: &str,
    points: i64,
) -> Result<(), sqlx::Error> {
    let previous: Option<String> =
        sqlx::query_scalar("SELECT status FROM ledger WHERE order_id = ?")
            .bind(order_id)
            .fetch_optional(&mut *conn)
            .await?;
    sqlx::query(
        "INSERT INTO ledger (order_id, account_id, points, status, applied_at_ms)
         VALUES (?, ?, ?, 'reversed', ?)
         ON CONFLICT (order_id) DO UPDATE SET status = 'reversed', applied_at_ms = excluded.applied_at_ms",
    )
    .bind(order_id)
    .bind(account_id)
    .bind(points)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    if previous.as_deref() == Some("credited") {
        add(conn, account_id, -points).await?;
    }
    Ok(())
}

async fn add(
    conn: &mut SqliteConnection,
    account_id: &str,
    points: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO balances (account_id, points) VALUES (?, ?)
         ON CONFLICT (account_id) DO UPDATE SET points = points + excluded.points",
    )
    .bind(account_id)
    .bind(points)
    .execute(conn)
    .await?;
    Ok(())
}

/// An account Loyalty has no entry for has zero points: Loyalty does not own accounts.
async fn points(
    State(loyalty): State<Loyalty>,
    Path(account_id): Path<String>,
) -> Result<ApiJson<Points>, ApiError> {
    let points: Option<i64> =
        sqlx::query_scalar("SELECT points FROM balances WHERE account_id = ?")
            .bind(&account_id)
            .fetch_optional(&loyalty.db.read)
            .await?;
    Ok(ApiJson(Points {
        account_id,
        points: points.unwrap_or(0),
    }))
}

/// The account's ledger, by order id. Pending entries are a two-phase commit in flight and
/// are not shown: no read counts a prepared entry.
async fn ledger(
    State(loyalty): State<Loyalty>,
    Path(account_id): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<ApiJson<Ledger>, ApiError> {
    let limit = page.limit()?;
    let rows: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT order_id, points, status FROM ledger
         WHERE account_id = ? AND order_id > ? AND status != 'pending'
         ORDER BY order_id LIMIT ?",
    )
    .bind(&account_id)
    .bind(page.after())
    .bind(limit as i64)
    .fetch_all(&loyalty.db.read)
    .await?;
    let entries: Vec<LedgerEntry> = rows
        .into_iter()
        .map(|(order_id, points, status)| LedgerEntry {
            order_id,
            points,
            status: LedgerStatus::parse(&status),
        })
        .collect();
    let next_after = (entries.len() == limit).then(|| entries[limit - 1].order_id.clone());
    Ok(ApiJson(Ledger {
        account_id,
        entries,
        next_after,
    }))
}

/// One order's entry: whether Loyalty has applied the order yet (what the visibility probe
/// reads). A pending entry is a two-phase commit in flight and is not shown.
async fn ledger_entry(
    State(loyalty): State<Loyalty>,
    Path((account_id, order_id)): Path<(String, String)>,
) -> Result<ApiJson<LedgerEntry>, ApiError> {
    let row: Option<(i64, String)> = sqlx::query_as(
        "SELECT points, status FROM ledger WHERE order_id = ? AND account_id = ? AND status != 'pending'",
    )
    .bind(&order_id)
    .bind(&account_id)
    .fetch_optional(&loyalty.db.read)
    .await?;
    let (points, status) =
        row.ok_or_else(|| ApiError::not_found("ledger entry for order", &order_id))?;
    Ok(ApiJson(LedgerEntry {
        order_id,
        points,
        status: LedgerStatus::parse(&status),
    }))
}

impl Apply for Loyalty {
    type Context = ();

    async fn apply(
        &self,
        tx: &mut SqliteConnection,
        events: &[Event],
        _: &(),
    ) -> Result<(), ApplyError> {
        // Runs of placed orders are credited as a set; a cancellation is applied in its place
        // in the order, after the run before it.
        let mut run: Vec<(String, String, i64)> = Vec::new();
        for event in events {
            match transport::consumer::decode(event)? {
                EventBody::OrderPlaced {
                    order_id,
                    account_id,
                    points,
                    ..
                } => run.push((order_id, account_id, points)),
                EventBody::OrderCancelled {
                    order_id,
                    account_id,
                    points,
                    ..
                } => {
                    credit_all(tx, &std::mem::take(&mut run)).await?;
                    reverse(tx, &order_id, &account_id, points).await?;
                }
                // Payment's verdicts travel on another feed.
                _ => {}
            }
        }
        credit_all(tx, &run).await?;
        Ok(())
    }

    fn committed(&self, events: &[Event]) {
        for event in events {
            if let Ok(EventBody::OrderPlaced {
                acknowledged_at_ms, ..
            }) = event.decode()
            {
                self.metrics.observe_apply(acknowledged_at_ms);
            }
        }
    }
}

impl twophase::Participant for Loyalty {
    async fn abort(&self, tx_id: String) -> Result<(), ApiError> {
        self.db
            .group
            .write(move |tx| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM ledger WHERE order_id = ? AND status = 'pending'")
                        .bind(&tx_id)
                        .execute(&mut *tx)
                        .await?;
                    Ok(())
                })
            })
            .await
    }

    async fn prepare_many(&self, requests: Vec<PrepareRequest>) -> Result<Vec<Vote>, ApiError> {
        let votes = vec![Vote::Yes; requests.len()];
        self.db
            .group
            .write(move |tx| Box::pin(record_pending_all(tx, requests)))
            .await?;
        Ok(votes)
    }

    async fn commit_many(&self, tx_ids: Vec<String>) -> Result<(), ApiError> {
        let count = tx_ids.len();
        self.db
            .group
            .write(move |tx| Box::pin(credit_pending_all(tx, tx_ids)))
            .await?;
        for _ in 0..count {
            self.metrics.apply_lag_ms.observe(0.0);
        }
        Ok(())
    }

    async fn in_doubt(&self, prepared_before_ms: i64) -> anyhow::Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT order_id FROM ledger WHERE status = 'pending' AND prepared_at_ms < ? LIMIT 100",
        )
        .bind(prepared_before_ms)
        .fetch_all(&self.db.read)
        .await?)
    }
}

/// Phase one for many transactions: their pending entries, in one statement.
async fn record_pending_all(
    tx: &mut SqliteConnection,
    requests: Vec<PrepareRequest>,
) -> Result<(), ApiError> {
    if requests.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO ledger (order_id, account_id, points, status, prepared_at_ms) ",
    );
    insert.push_values(&requests, |mut row, r| {
        row.push_bind(&r.tx_id)
            .push_bind(&r.account_id)
            .push_bind(r.points)
            .push_bind("pending")
            .push_bind(now);
    });
    insert.push(" ON CONFLICT (order_id) DO NOTHING");
    insert.build().execute(&mut *tx).await?;
    Ok(())
}

/// Phase two for many transactions: their pending entries are credited as a set.
async fn credit_pending_all(
    tx: &mut SqliteConnection,
    tx_ids: Vec<String>,
) -> Result<(), ApiError> {
    if tx_ids.is_empty() {
        return Ok(());
    }
    let mut pending = QueryBuilder::<Sqlite>::new(
        "SELECT order_id, account_id, points FROM ledger WHERE status = 'pending' AND order_id IN (",
    );
    let mut ids = pending.separated(", ");
    for tx_id in &tx_ids {
        ids.push_bind(tx_id);
    }
    pending.push(")");
    let rows: Vec<(String, String, i64)> = pending.build_query_as().fetch_all(&mut *tx).await?;
    credit_all(tx, &rows).await?;
    Ok(())
}
