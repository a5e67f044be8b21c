//! Loyalty's public routes: points, the ledger, one order's entry.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use contracts::api::{Ledger, LedgerEntry, PageQuery, Points};
use runtime::{ApiError, ApiJson, ApiPath, ApiQuery};

use crate::{Loyalty, store};

pub(crate) fn routes(loyalty: Loyalty) -> Router {
    Router::new()
        .route("/loyalty/{account_id}", get(points))
        .route("/loyalty/{account_id}/ledger", get(ledger))
        .route("/loyalty/{account_id}/ledger/{order_id}", get(ledger_entry))
        .with_state(loyalty)
}

/// An account Loyalty has no entry for has zero points: Loyalty does not own accounts.
async fn points(
    State(loyalty): State<Loyalty>,
    ApiPath(account_id): ApiPath<String>,
) -> Result<ApiJson<Points>, ApiError> {
    let id = account_id.clone();
    let points = loyalty.db.read(move |tx| store::points(tx, &id)).await?;
    Ok(ApiJson(Points { account_id, points }))
}

/// The account's ledger, by order id.
async fn ledger(
    State(loyalty): State<Loyalty>,
    ApiPath(account_id): ApiPath<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<ApiJson<Ledger>, ApiError> {
    let limit = page.limit()?;
    let (id, after) = (account_id.clone(), page.after().to_owned());
    let entries = loyalty
        .db
        .read(move |tx| store::ledger(tx, &id, &after, limit as i64))
        .await?;
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
    ApiPath((account_id, order_id)): ApiPath<(String, String)>,
) -> Result<ApiJson<LedgerEntry>, ApiError> {
    let id = order_id.clone();
    let entry = loyalty
        .db
        .read(move |tx| store::ledger_entry(tx, &account_id, &id))
        .await?;
    entry
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found("ledger entry for order", &order_id))
}
