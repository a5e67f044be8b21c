//! Stats' public routes: totals overall, per account, per minute, and one order as Stats
//! knows it.
//!
//! Every read may go to a PostgreSQL hot standby (`--stats-replica-urls`). A read that
//! carries a `converge-read-token` (from a strong-mode order's answer, or from an earlier
//! read) is served by a standby that has replayed that far, or by the primary: it sees that
//! order (read-your-writes) and nothing older than the earlier read (monotonic reads). Every
//! answer carries the token of what it reflects, and says where it was served.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use contracts::api::{AccountTotals, Totals};
use contracts::internal::{READ_TOKEN_HEADER, SERVED_BY_HEADER};
use runtime::{ApiError, ApiJson, ApiPath, ApiQuery};
use serde::{Deserialize, Serialize};
use storage::replication::{Lsn, Target};
use storage::{DbError, Tx};

use crate::{Stats, store};

pub(crate) fn routes(stats: Stats) -> Router {
    Router::new()
        .route("/stats", get(totals))
        .route("/stats/accounts/{account_id}", get(account_totals))
        .route("/stats/minutes", get(minutes))
        .route("/stats/orders/{order_id}", get(order_fact))
        .with_state(stats)
}

/// Runs `read` where the read policy and the request's token allow, and answers its result
/// (JSON, or the error it gave: a `404` from a standby is a stale answer) with the node that
/// served it and the token of what it reflects. A database failure (outer `Err`) sends the
/// read on to another node.
async fn read_fresh<T, F>(stats: &Stats, headers: &HeaderMap, read: F) -> Result<Response, ApiError>
where
    T: Serialize + Send + 'static,
    F: FnOnce(&mut Tx<'_>) -> Result<Result<T, ApiError>, DbError> + Send + 'static,
{
    let floor = match headers.get(READ_TOKEN_HEADER) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|text| text.parse::<Lsn>().ok())
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "{READ_TOKEN_HEADER} must be a token from an earlier answer, like 0/16B3748"
                    ))
                })?,
        ),
    };
    let fresh = stats.db.read_fresh(floor, read).await?;
    let mut response = match fresh.value {
        Ok(value) => ApiJson(value).into_response(),
        Err(error) => error.into_response(),
    };
    let served_by = match fresh.served_by {
        Target::Primary => "primary".to_owned(),
        Target::Replica(i) => format!("standby-{i}"),
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&served_by) {
        headers.insert(HeaderName::from_static(SERVED_BY_HEADER), value);
    }
    if let Some(value) = fresh
        .reflects
        .and_then(|lsn| HeaderValue::from_str(&lsn.to_string()).ok())
    {
        headers.insert(HeaderName::from_static(READ_TOKEN_HEADER), value);
    }
    Ok(response)
}

async fn totals(State(stats): State<Stats>, headers: HeaderMap) -> Result<Response, ApiError> {
    read_fresh(&stats, &headers, |tx| {
        let (orders, revenue_cents) = store::totals(tx)?;
        Ok(Ok(Totals {
            orders,
            revenue_cents,
        }))
    })
    .await
}

/// An account Stats has never counted an order for has zero orders: Stats does not own
/// accounts, so it cannot tell an unknown account from a quiet one.
async fn account_totals(
    State(stats): State<Stats>,
    headers: HeaderMap,
    ApiPath(account_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    read_fresh(&stats, &headers, move |tx| {
        let (orders, revenue_cents) = store::account_totals(tx, &account_id)?;
        Ok(Ok(AccountTotals {
            account_id,
            orders,
            revenue_cents,
        }))
    })
    .await
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
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<MinutesQuery>,
) -> Result<Response, ApiError> {
    let last = query.last.unwrap_or(60);
    if !(1..=MINUTES_MAX).contains(&last) {
        return Err(ApiError::Invalid(format!(
            "last must be between 1 and {MINUTES_MAX}"
        )));
    }
    read_fresh(&stats, &headers, move |tx| {
        let rows = store::minutes(tx, last)?;
        Ok(Ok(Minutes {
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
    })
    .await
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
    headers: HeaderMap,
    ApiPath(order_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    read_fresh(&stats, &headers, move |tx| {
        let Some((account_id, total_cents, status, applied_at_ms)) =
            store::order_fact(tx, &order_id)?
        else {
            return Ok(Err(ApiError::not_found("stats of order", &order_id)));
        };
        Ok(Ok(OrderFact {
            order_id,
            account_id,
            total_cents,
            status,
            applied_at_ms,
        }))
    })
    .await
}
