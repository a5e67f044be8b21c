//! Stats' public routes: totals overall, per account, per minute, and one order as Stats
//! knows it.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use contracts::api::{AccountTotals, Totals};
use runtime::{ApiError, ApiJson, ApiPath, ApiQuery};
use serde::{Deserialize, Serialize};

use crate::{Stats, store};

pub(crate) fn routes(stats: Stats) -> Router {
    Router::new()
        .route("/stats", get(totals))
        .route("/stats/accounts/{account_id}", get(account_totals))
        .route("/stats/minutes", get(minutes))
        .route("/stats/orders/{order_id}", get(order_fact))
        .with_state(stats)
}

async fn totals(State(stats): State<Stats>) -> Result<ApiJson<Totals>, ApiError> {
    let (orders, revenue_cents) = stats.db.read(store::totals).await?;
    Ok(ApiJson(Totals {
        orders,
        revenue_cents,
    }))
}

/// An account Stats has never counted an order for has zero orders: Stats does not own
/// accounts, so it cannot tell an unknown account from a quiet one.
async fn account_totals(
    State(stats): State<Stats>,
    ApiPath(account_id): ApiPath<String>,
) -> Result<ApiJson<AccountTotals>, ApiError> {
    let id = account_id.clone();
    let (orders, revenue_cents) = stats
        .db
        .read(move |tx| store::account_totals(tx, &id))
        .await?;
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

/// A day of minutes at most: the report is for recent activity.
const MINUTES_MAX: i64 = 24 * 60;

/// `GET /stats/minutes?last=N`: the report of the latest N minutes that had orders.
async fn minutes(
    State(stats): State<Stats>,
    ApiQuery(query): ApiQuery<MinutesQuery>,
) -> Result<ApiJson<Minutes>, ApiError> {
    let last = query.last.unwrap_or(60);
    if !(1..=MINUTES_MAX).contains(&last) {
        return Err(ApiError::Invalid(format!(
            "last must be between 1 and {MINUTES_MAX}"
        )));
    }
    let rows = stats.db.read(move |tx| store::minutes(tx, last)).await?;
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
    /// When Stats applied it (counted it, or took it back), in milliseconds since the epoch.
    applied_at_ms: Option<i64>,
}

/// One order as Stats knows it: whether Stats has applied the order yet (what the visibility
/// probe reads). A pending entry is a two-phase commit in flight and is not shown.
async fn order_fact(
    State(stats): State<Stats>,
    ApiPath(order_id): ApiPath<String>,
) -> Result<ApiJson<OrderFact>, ApiError> {
    let id = order_id.clone();
    let row = stats.db.read(move |tx| store::order_fact(tx, &id)).await?;
    let (account_id, total_cents, status, applied_at_ms) =
        row.ok_or_else(|| ApiError::not_found("stats of order", &order_id))?;
    Ok(ApiJson(OrderFact {
        order_id,
        account_id,
        total_cents,
        status,
        applied_at_ms,
    }))
}
