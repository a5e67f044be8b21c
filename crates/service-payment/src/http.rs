//! Payment's public routes: wallets, top-ups and payments.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use contracts::api::{PageQuery, Payment, PaymentList, Refusal, TopUpRequest, Wallet};
use contracts::internal::{ELIGIBILITY_PATH, EligibilityRequest, EligibilityResponse};
use contracts::limits::{BALANCE_CENTS_MAX, TOP_UP_CENTS_MAX};
use contracts::money::Cents;
use runtime::idempotency::{self, Claim};
use runtime::{ApiError, ApiJson, ApiPath, ApiQuery};

use crate::{Payments, wallets};

pub(crate) async fn wallet(
    State(payments): State<Payments>,
    ApiPath(account_id): ApiPath<String>,
) -> Result<ApiJson<Wallet>, ApiError> {
    let id = account_id.clone();
    payments
        .db
        .read(move |tx| wallets::find_wallet(tx, &id))
        .await?
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found("wallet of account", &account_id))
}

/// Adds money to a wallet, creating it on the first top-up. The account must exist (Account
/// is asked); a suspended account may still top up. With an `Idempotency-Key`, a retry gets
/// the first answer and adds nothing, and the answer carries the key, as an order's does.
pub(crate) async fn top_up(
    State(payments): State<Payments>,
    headers: HeaderMap,
    ApiPath(account_id): ApiPath<String>,
    ApiJson(request): ApiJson<TopUpRequest>,
) -> Result<Response, ApiError> {
    let amount = Cents::parse("amount_cents", request.amount_cents, TOP_UP_CENTS_MAX)?.get();
    let claim = Claim::from_headers(&headers, &(&account_id, amount))?;
    let key = claim.as_ref().map(|claim| claim.key.as_str().to_owned());
    let answer: EligibilityResponse = payments
        .account
        .post(
            ELIGIBILITY_PATH,
            &EligibilityRequest {
                account_ids: vec![account_id.clone()],
            },
        )
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    if answer.verdicts.get(&account_id) == Some(&Some(Refusal::UnknownAccount)) {
        return Err(ApiError::not_found("account", &account_id));
    }
    let body = payments
        .db
        .write(move |tx| {
            if let Some(claim) = &claim {
                // Claiming the key first locks it: a concurrent retry waits for this answer.
                let (hash, earlier) = wallets::claim_top_up_key(tx, claim)?;
                if hash != claim.request_hash {
                    return Err(idempotency::conflict());
                }
                if let Some(earlier) = earlier {
                    return Ok(earlier);
                }
            }
            let wallet =
                wallets::top_up(tx, &account_id, amount, BALANCE_CENTS_MAX)?.ok_or_else(|| {
                    ApiError::Invalid(format!(
                        "a wallet may hold at most {BALANCE_CENTS_MAX} cents"
                    ))
                })?;
            let body = serde_json::to_string(&wallet).expect("a wallet always serializes");
            if let Some(claim) = &claim {
                wallets::answer_top_up_key(tx, claim.key.as_str(), &body)?;
            }
            Ok::<_, ApiError>(body)
        })
        .await?;
    let mut response = (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    // A parsed key is ASCII letters, digits, `-` and `_`: always a valid header value.
    if let Some(value) = key.and_then(|key| HeaderValue::from_str(&key).ok()) {
        response.headers_mut().insert(idempotency::HEADER, value);
    }
    Ok(response)
}

pub(crate) async fn payment(
    State(payments): State<Payments>,
    ApiPath(order_id): ApiPath<String>,
) -> Result<ApiJson<Payment>, ApiError> {
    let id = order_id.clone();
    payments
        .db
        .read(move |tx| wallets::find_payment(tx, &id))
        .await?
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found("payment for order", &order_id))
}

pub(crate) async fn payments_of(
    State(payments): State<Payments>,
    ApiPath(account_id): ApiPath<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<ApiJson<PaymentList>, ApiError> {
    let limit = page.limit()?;
    let (id, after) = (account_id, page.after().to_owned());
    let list = payments
        .db
        .read(move |tx| wallets::payments_of(tx, &id, &after, limit as i64))
        .await?;
    let next_after = (list.len() == limit).then(|| list[limit - 1].order_id.clone());
    Ok(ApiJson(PaymentList {
        payments: list,
        next_after,
    }))
}
