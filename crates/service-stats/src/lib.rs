//! The Stats service counts confirmed orders and revenue, per account, in total and per
//! minute.
//!
//! How an order reaches it depends on the mode: a two-phase commit (strong), the Order
//! service's feed read continuously (queue) or by a periodic batch job (cron). The counting is
//! the same in every mode: `count_all` and `uncount`, which are idempotent per order.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use contracts::api::{AccountTotals, Totals};
use contracts::events::{Event, EventBody};
use contracts::internal::{PrepareRequest, Vote};
use contracts::{Mode, ServiceName, now_ms};
use runtime::{ApiError, ApiJson, App, Metrics, Peer, ServiceConfig, Task};
use serde::{Deserialize, Serialize};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use storage::Db;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use transport::{Apply, ApplyError, ConsumerConfig, HttpFeed};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

const IN_DOUBT_SQL: &str = "SELECT COUNT(*) FROM order_facts WHERE status = 'pending'";

pub async fn build(
    config: ServiceConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<App> {
    let (db, committer) = Db::open(&config.data_dir, "stats", &MIGRATOR, config.mode).await?;
    transport::install(&db).await?;
    let metrics = Metrics::new("stats");
    let stats = Stats {
        db: db.clone(),
        metrics: metrics.clone(),
    };
    let http = runtime::peer::http_client();
    let order = Peer::new(
        "order",
        &config.peers.order,
        http,
        &config.secret,
        config.call_timeout,
        config.network_delay,
    );
    let public = Router::new()
        .route("/stats", get(totals))
        .route("/stats/accounts/{account_id}", get(account_totals))
        .route("/stats/minutes", get(minutes))
        .route("/stats/orders/{order_id}", get(order_fact))
        .with_state(stats.clone());
    let mut internal = transport::admin::router(db.clone(), None, Some(IN_DOUBT_SQL));
    let mut tasks = vec![Task::new("stats group commit", committer.run())];
    match config.mode {
        Mode::Strong => {
            let participant = Arc::new(stats.clone());
            // Only the two-phase-commit steps pay the processing delay: the admin routes stay
            // fast so that a slow service can still say how far it has got.
            internal = internal.merge(runtime::http::with_processing_delay(
                twophase::router(participant.clone()),
                config.processing_delay,
            ));
            tasks.push(Task::new(
                "stats in-doubt resolver",
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
                "stats consumer of the order feed",
                transport::consumer::run(
                    db,
                    HttpFeed::new("order", order),
                    stats,
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
        name: ServiceName::Stats.to_string(),
        addr,
        tasks,
        shutdown,
    })
}

#[derive(Clone)]
struct Stats {
    db: Db,
    metrics: Metrics,
}

fn minute_of(ms: i64) -> i64 {
    ms.div_euclid(60_000)
}

/// A placed order, as the consumer counts it.
struct Placed {
    order_id: String,
    account_id: String,
    total_cents: i64,
    acknowledged_at_ms: i64,
}

/// Counts many orders at once, each at most once: one insert for the facts (which returns
/// the orders not counted before), then one upsert each for the accounts' and the minutes'
/// totals, summed here: three statements however many orders.
async fn count_all(conn: &mut SqliteConnection, placed: &[Placed]) -> Result<(), sqlx::Error> {
    if placed.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let mut facts = QueryBuilder::<Sqlite>::new(
        "INSERT INTO order_facts (order_id, account_id, total_cents, status, acknowledged_at_ms, applied_at_ms) ",
    );
    facts.push_values(placed, |mut row, p| {
        row.push_bind(&p.order_id)
            .push_bind(&p.account_id)
            .push_bind(p.total_cents)
            .push_bind("counted")
            .push_bind(p.acknowledged_at_ms)
            .push_bind(now);
    });
    facts.push(
        " ON CONFLICT (order_id) DO UPDATE SET status = 'counted', applied_at_ms = excluded.applied_at_ms
          WHERE status = 'pending' RETURNING order_id",
    );
    let counted: std::collections::HashSet<String> = facts
        .build_query_scalar()
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
    let mut accounts: std::collections::BTreeMap<&str, (i64, i64)> = Default::default();
    let mut minutes: std::collections::BTreeMap<i64, (i64, i64)> = Default::default();
    for p in placed.iter().filter(|p| counted.contains(&p.order_id)) {
        let account = accounts.entry(&p.account_id).or_default();
        account.0 += 1;
        account.1 += p.total_cents;
        let minute = minutes.entry(minute_of(p.acknowledged_at_ms)).or_default();
        minute.0 += 1;
        minute.1 += p.total_cents;
    }
    if accounts.is_empty() {
        return Ok(());
    }
    let mut totals = QueryBuilder::<Sqlite>::new(
        "INSERT INTO account_totals (account_id, orders, revenue_cents) ",
    );
    totals.push_values(&accounts, |mut row, (account_id, (orders, revenue))| {
        row.push_bind(*account_id)
            .push_bind(*orders)
            .push_bind(*revenue);
    });
    totals.push(
        " ON CONFLICT (account_id) DO UPDATE SET orders = orders + excluded.orders,
              revenue_cents = revenue_cents + excluded.revenue_cents",
    );
    totals.build().execute(&mut *conn).await?;
    let mut by_minute =
        QueryBuilder::<Sqlite>::new("INSERT INTO minute_totals (minute, orders, revenue_cents) ");
    by_minute.push_values(&minutes, |mut row, (minute, (orders, revenue))| {
        row.push_bind(*minute)
            .push_bind(*orders)
            .push_bind(*revenue);
    });
    by_minute.push(
        " ON CONFLICT (minute) DO UPDATE SET orders = orders + excluded.orders,
              revenue_cents = revenue_cents + excluded.revenue_cents",
    );
    by_minute.build().execute(&mut *conn).await?;
    Ok(())
}

/// Takes a cancelled order out of the totals if it was counted, and leaves a tombstone so
/// that it is never counted later.
async fn uncount(
    conn: &mut SqliteConnection,
    order_id: &str,
    account_id: &str,
    total_cents: i64,
) -> Result<(), sqlx::Error> {
    let previous: Option<(String, i64)> =
        sqlx::query_as("SELECT status, acknowledged_at_ms FROM order_facts WHERE order_id = ?")
            .bind(order_id)
            .fetch_optional(&mut *conn)
            .await?;
    match previous {
        Some((status, _)) if status == "reversed" => {}
        Some((status, acknowledged_at_ms)) => {
            sqlx::query(
                "UPDATE order_facts SET status = 'reversed', applied_at_ms = ? WHERE order_id = ?",
            )
            .bind(now_ms())
            .bind(order_id)
            .execute(&mut *conn)
            .await?;
            if status == "counted" {
                add(
                    conn,
                    account_id,
                    -1,
                    -total_cents,
                    minute_of(acknowledged_at_ms),
                )
                .await?;
            }
        }
        None => {
            sqlx::query(
                "INSERT INTO order_facts (order_id, account_id, total_cents, status, acknowledged_at_ms, applied_at_ms)
                 VALUES (?, ?, ?, 'reversed', ?, ?)",
            )
            .bind(order_id)
            .bind(account_id)
            .bind(total_cents)
            .bind(now_ms())
            .bind(now_ms())
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

async fn add(
    conn: &mut SqliteConnection,
    account_id: &str,
    orders: i64,
    revenue_cents: i64,
    minute: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO account_totals (account_id, orders, revenue_cents) VALUES (?, ?, ?)
         ON CONFLICT (account_id) DO UPDATE SET orders = orders + excluded.orders,
             revenue_cents = revenue_cents + excluded.revenue_cents",
    )
    .bind(account_id)
    .bind(orders)
    .bind(revenue_cents)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO minute_totals (minute, orders, revenue_cents) VALUES (?, ?, ?)
         ON CONFLICT (minute) DO UPDATE SET orders = orders + excluded.orders,
             revenue_cents = revenue_cents + excluded.revenue_cents",
    )
    .bind(minute)
    .bind(orders)
    .bind(revenue_cents)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn totals(State(stats): State<Stats>) -> Result<ApiJson<Totals>, ApiError> {
    let (orders, revenue_cents): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(SUM(orders), 0), COALESCE(SUM(revenue_cents), 0) FROM account_totals",
    )
    .fetch_one(&stats.db.read)
    .await?;
    Ok(ApiJson(Totals {
        orders,
        revenue_cents,
    }))
}

/// An account Stats has never counted an order for has zero orders: Stats does not own
/// accounts, so it cannot tell an unknown account from a quiet one.
async fn account_totals(
    State(stats): State<Stats>,
    Path(account_id): Path<String>,
) -> Result<ApiJson<AccountTotals>, ApiError> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT orders, revenue_cents FROM account_totals WHERE account_id = ?")
            .bind(&account_id)
            .fetch_optional(&stats.db.read)
            .await?;
    let (orders, revenue_cents) = row.unwrap_or((0, 0));
    Ok(ApiJson(AccountTotals {
        account_id,
        orders,
        revenue_cents,
    }))
}

#[derive(Debug, Deserialize)]
struct MinutesQuery {
    /// How many of the latest minutes; at most a day.
    last: Option<i64>,
}

#[derive(Debug, Serialize)]
struct Minute {
    /// Start of the minute, in milliseconds since the Unix epoch.
    minute_start_ms: i64,
    orders: i64,
    revenue_cents: i64,
}

#[derive(Debug, Serialize)]
struct Minutes {
    minutes: Vec<Minute>,
}

/// `GET /stats/minutes?last=N`: the report of the latest N minutes that had orders.
async fn minutes(
    State(stats): State<Stats>,
    Query(query): Query<MinutesQuery>,
) -> Result<ApiJson<Minutes>, ApiError> {
    const MINUTES_MAX: i64 = 24 * 60;
    let last = query.last.unwrap_or(60);
    if !(1..=MINUTES_MAX).contains(&last) {
        return Err(ApiError::Invalid(format!(
            "last must be between 1 and {MINUTES_MAX}"
        )));
    }
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT minute, orders, revenue_cents FROM minute_totals ORDER BY minute DESC LIMIT ?",
    )
    .bind(last)
    .fetch_all(&stats.db.read)
    .await?;
    Ok(ApiJson(Minutes {
        minutes: rows
            .into_iter()
            .rev()
            .map(|(minute, orders, revenue_cents)| Minute {
                minute_start_ms: minute * 60_000,
                orders,
                revenue_cents,
            })
            .collect(),
    }))
}

#[derive(Debug, Serialize)]
struct OrderFact {
    order_id: String,
    account_id: String,
    total_cents: i64,
    /// `counted`, or `reversed` for an order cancelled after (or before) it was counted.
    status: String,
}

/// One order as Stats knows it: whether Stats has applied the order yet (what the visibility
/// probe reads). A pending entry is a two-phase commit in flight and is not shown.
async fn order_fact(
    State(stats): State<Stats>,
    Path(order_id): Path<String>,
) -> Result<ApiJson<OrderFact>, ApiError> {
    let row: Option<(String, i64, String)> = sqlx::query_as(
        "SELECT account_id, total_cents, status FROM order_facts WHERE order_id = ? AND status != 'pending'",
    )
    .bind(&order_id)
    .fetch_optional(&stats.db.read)
    .await?;
    let (account_id, total_cents, status) =
        row.ok_or_else(|| ApiError::not_found("stats of order", &order_id))?;
    Ok(ApiJson(OrderFact {
        order_id,
        account_id,
        total_cents,
        status,
    }))
}

impl Apply for Stats {
    type Context = ();

    async fn apply(
        &self,
        tx: &mut SqliteConnection,
        events: &[Event],
        _: &(),
    ) -> Result<(), ApplyError> {
        // Runs of placed orders are counted as a set; a cancellation is applied in its place
        // in the order, after the run before it.
        let mut run: Vec<Placed> = Vec::new();
        for event in events {
            match transport::consumer::decode(event)? {
                EventBody::OrderPlaced {
                    order_id,
                    account_id,
                    total_cents,
                    acknowledged_at_ms,
                    ..
                } => run.push(Placed {
                    order_id,
                    account_id,
                    total_cents,
                    acknowledged_at_ms,
                }),
                EventBody::OrderCancelled {
                    order_id,
                    account_id,
                    total_cents,
                    ..
                } => {
                    count_all(tx, &std::mem::take(&mut run)).await?;
                    uncount(tx, &order_id, &account_id, total_cents).await?;
                }
                // Payment's verdicts travel on another feed.
                _ => {}
            }
        }
        count_all(tx, &run).await?;
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

impl twophase::Participant for Stats {
    async fn abort(&self, tx_id: String) -> Result<(), ApiError> {
        self.db
            .group
            .write(move |tx| {
                Box::pin(async move {
                    sqlx::query(
                        "DELETE FROM order_facts WHERE order_id = ? AND status = 'pending'",
                    )
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
            .write(move |tx| Box::pin(count_pending_all(tx, tx_ids)))
            .await?;
        for _ in 0..count {
            self.metrics.apply_lag_ms.observe(0.0);
        }
        Ok(())
    }

    async fn in_doubt(&self, prepared_before_ms: i64) -> anyhow::Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT order_id FROM order_facts WHERE status = 'pending' AND prepared_at_ms < ? LIMIT 100",
        )
        .bind(prepared_before_ms)
        .fetch_all(&self.db.read)
        .await?)
    }
}

/// Phase one for many transactions: their pending rows, in one statement.
async fn record_pending_all(
    tx: &mut SqliteConnection,
    requests: Vec<PrepareRequest>,
) -> Result<(), ApiError> {
    if requests.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO order_facts (order_id, account_id, total_cents, status, acknowledged_at_ms, prepared_at_ms) ",
    );
    insert.push_values(&requests, |mut row, r| {
        row.push_bind(&r.tx_id)
            .push_bind(&r.account_id)
            .push_bind(r.total_cents)
            .push_bind("pending")
            .push_bind(r.started_at_ms)
            .push_bind(now);
    });
    insert.push(" ON CONFLICT (order_id) DO NOTHING");
    insert.build().execute(&mut *tx).await?;
    Ok(())
}

/// Phase two for many transactions: their pending rows are counted as a set.
async fn count_pending_all(tx: &mut SqliteConnection, tx_ids: Vec<String>) -> Result<(), ApiError> {
    if tx_ids.is_empty() {
        return Ok(());
    }
    let mut pending = QueryBuilder::<Sqlite>::new(
        "SELECT order_id, account_id, total_cents, acknowledged_at_ms FROM order_facts
         WHERE status = 'pending' AND order_id IN (",
    );
    let mut ids = pending.separated(", ");
    for tx_id in &tx_ids {
        ids.push_bind(tx_id);
    }
    pending.push(")");
    let rows: Vec<(String, String, i64, i64)> =
        pending.build_query_as().fetch_all(&mut *tx).await?;
    let placed: Vec<Placed> = rows
        .into_iter()
        .map(
            |(order_id, account_id, total_cents, acknowledged_at_ms)| Placed {
                order_id,
                account_id,
                total_cents,
                acknowledged_at_ms,
            },
        )
        .collect();
    count_all(tx, &placed).await?;
    Ok(())
}
