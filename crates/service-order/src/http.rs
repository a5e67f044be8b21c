//! Order's public routes.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use contracts::Mode;
use contracts::api::{Order, OrderList, PageQuery, PlaceOrderRequest};
use contracts::order::NewOrder;
use runtime::{ApiError, ApiJson};

use crate::idempotency::Claim;
use crate::store::{COLUMNS, order_from};
use crate::{Orders, eventual, strong};

/// `POST /orders`: validate, then place the order the way the mode says.
pub(crate) async fn place(
    State(orders): State<Orders>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<PlaceOrderRequest>,
) -> Result<Response, ApiError> {
    let claim = Claim::from_headers(&headers, &request)?;
    let order = NewOrder::parse(request)?;
    let answer = match orders.mode {
        Mode::Strong => strong::place(&orders, order, claim).await,
        Mode::Queue | Mode::Cron => eventual::place(&orders, order, claim).await,
    };
    let outcome = match &answer {
        Ok(response) => response.status().as_str().to_owned(),
        Err(error) => error.status().as_str().to_owned(),
    };
    orders.outcomes.with_label_values(&[outcome.as_str()]).inc();
    answer
}

pub(crate) async fn read(
    State(orders): State<Orders>,
    Path(id): Path<String>,
) -> Result<ApiJson<Order>, ApiError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM orders WHERE id = ?"))
        .bind(&id)
        .fetch_optional(&orders.db.read)
        .await?;
    row.as_ref()
        .map(|r| ApiJson(order_from(r)))
        .ok_or_else(|| ApiError::not_found("order", &id))
}

/// An account's orders, oldest first. An account with no orders (or one Order has never
/// heard of: Order does not own accounts) has an empty list.
pub(crate) async fn list(
    State(orders): State<Orders>,
    Path(account_id): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<ApiJson<OrderList>, ApiError> {
    let limit = page.limit()?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM orders WHERE account_id = ? AND id > ? ORDER BY id LIMIT ?"
    ))
    .bind(&account_id)
    .bind(page.after())
    .bind(limit as i64)
    .fetch_all(&orders.db.read)
    .await?;
    let list: Vec<Order> = rows.iter().map(order_from).collect();
    let next_after = (list.len() == limit).then(|| list[limit - 1].id.clone());
    Ok(ApiJson(OrderList {
        orders: list,
        next_after,
    }))
}
