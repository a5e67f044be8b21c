//! Order's public routes.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use contracts::Mode;
use contracts::api::{Order, OrderList, PageQuery, PlaceOrderRequest};
use contracts::ids::IdempotencyKey;
use contracts::internal::READ_TOKEN_HEADER;
use contracts::order::NewOrder;
use runtime::idempotency::{self, Claim};
use runtime::{ApiError, ApiJson, ApiPath, ApiQuery};

use crate::{Orders, Reply, eventual, store, strong};

/// `POST /orders`: validate, then place the order the way the mode says. Every answer carries
/// the request's `Idempotency-Key` (made up when the request came without one), so a client
/// can always retry safely and learn the outcome.
pub(crate) async fn place(
    State(orders): State<Orders>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<PlaceOrderRequest>,
) -> Result<Response, ApiError> {
    let claim = match Claim::from_headers(&headers, &request)? {
        Some(claim) => claim,
        None => Claim::new(IdempotencyKey::generate(), &request),
    };
    let order = NewOrder::parse(request)?;
    let key = claim.key.as_str().to_owned();
    let reply = match orders.mode {
        Mode::Strong => strong::place(&orders, order, claim).await,
        Mode::Queue | Mode::Cron => eventual::place(&orders, order, claim).await,
    };
    orders
        .outcomes
        .with_label_values(&[reply.status.as_str()])
        .inc();
    Ok(reply.into_response_with_key(&key))
}

impl Reply {
    fn into_response_with_key(self, key: &str) -> Response {
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            self.body,
        )
            .into_response();
        if let Ok(value) = HeaderValue::from_str(key) {
            response.headers_mut().insert(idempotency::HEADER, value);
        }
        if let Some(value) = self.read_token.and_then(|t| HeaderValue::from_str(&t).ok()) {
            response.headers_mut().insert(READ_TOKEN_HEADER, value);
        }
        if self.status == axum::http::StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

pub(crate) async fn read(
    State(orders): State<Orders>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<Order>, ApiError> {
    let key = id.clone();
    orders
        .db
        .read(move |tx| store::find(tx, &key))
        .await?
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found("order", &id))
}

/// An account's orders, oldest first. An account with no orders (or one Order has never
/// heard of: Order does not own accounts) has an empty list.
pub(crate) async fn list(
    State(orders): State<Orders>,
    ApiPath(account_id): ApiPath<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<ApiJson<OrderList>, ApiError> {
    let limit = page.limit()?;
    let after = page.after().to_owned();
    let list = orders
        .db
        .read(move |tx| store::list(tx, &account_id, &after, limit as i64))
        .await?;
    let next_after = (list.len() == limit).then(|| list[limit - 1].id.clone());
    Ok(ApiJson(OrderList {
        orders: list,
        next_after,
    }))
}
