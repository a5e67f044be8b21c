//! Payment's public routes: wallets, top-ups and payments.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use contracts::api::{
    PageQuery, Payment, PaymentList, PaymentStatus, Refusal, TopUpRequest, Wallet,
};
use contracts::internal::{ELIGIBILITY_PATH, EligibilityRequest, EligibilityResponse};
use contracts::limits::{BALANCE_CENTS_MAX, TOP_UP_CENTS_MAX};
use contracts::money::Cents;
use contracts::now_ms;
use runtime::{ApiError, ApiJson, CallError};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::Payments;

pub(crate) async fn find_wallet(
    payments: &Payments,
    account_id: &str,
) -> Result<Option<Wallet>, sqlx::Error> {
    let row: Option<(i64, i64, i64)> = sqlx::query_as(
        "SELECT balance_cents, held_cents, top_ups_cents FROM wallets WHERE account_id = ?",
    )
    .bind(account_id)
    .fetch_optional(&payments.db.read)
    .await?;
    Ok(
        row.map(|(balance_cents, held_cents, top_ups_cents)| Wallet {
            account_id: account_id.to_owned(),
            balance_cents,
            held_cents,
            top_ups_cents,
        }),
    )
}

pub(crate) async fn wallet(
    State(payments): State<Payments>,
    Path(account_id): Path<String>,
) -> Result<ApiJson<Wallet>, ApiError> {
    find_wallet(&payments, &account_id)
        .await?
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found("wallet of account", &account_id))
}

/// Adds money to a wallet, creating it on the first top-up. The account must exist (Account
/// is asked); a suspended account may still top up.
pub(crate) async fn top_up(
    State(payments): State<Payments>,
    Path(account_id): Path<String>,
    ApiJson(request): ApiJson<TopUpRequest>,
) -> Result<(StatusCode, ApiJson<Wallet>), ApiError> {
    let amount = Cents::parse("amount_cents", request.amount_cents, TOP_UP_CENTS_MAX)?;
    let answer: EligibilityResponse = payments
        .account
        .post(
            ELIGIBILITY_PATH,
            &EligibilityRequest {
                account_ids: vec![account_id.clone()],
            },
        )
        .await
        .map_err(unavailable)?;
    if answer.verdicts.get(&account_id) == Some(&Some(Refusal::UnknownAccount)) {
        return Err(ApiError::not_found("account", &account_id));
    }
    let mut tx = payments.db.write.begin().await?;
    let balance: i64 = sqlx::query_scalar(
        "INSERT INTO wallets (account_id, balance_cents, held_cents, top_ups_cents) VALUES (?, ?, 0, ?)
         ON CONFLICT (account_id) DO UPDATE SET balance_cents = balance_cents + excluded.balance_cents,
             top_ups_cents = top_ups_cents + excluded.top_ups_cents
         RETURNING balance_cents",
    )
    .bind(&account_id)
    .bind(amount.get())
    .bind(amount.get())
    .fetch_one(&mut *tx)
    .await?;
    if balance > BALANCE_CENTS_MAX {
        // Dropping the transaction rolls the top-up back.
        return Err(ApiError::Invalid(format!(
            "a wallet may hold at most {BALANCE_CENTS_MAX} cents"
        )));
    }
    sqlx::query("INSERT INTO top_ups (account_id, amount_cents, at_ms) VALUES (?, ?, ?)")
        .bind(&account_id)
        .bind(amount.get())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let wallet = find_wallet(&payments, &account_id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("wallet vanished after top-up")))?;
    Ok((StatusCode::CREATED, ApiJson(wallet)))
}

pub(crate) fn unavailable(error: CallError) -> ApiError {
    ApiError::Unavailable(error.to_string())
}

fn payment_from(row: &SqliteRow) -> Payment {
    let status: String = row.get("status");
    let reason: Option<String> = row.get("reason");
    Payment {
        order_id: row.get("order_id"),
        account_id: row.get("account_id"),
        amount_cents: row.get("amount_cents"),
        status: PaymentStatus::parse(&status).unwrap_or(PaymentStatus::Declined),
        reason: reason.as_deref().and_then(Refusal::parse),
    }
}

/// A held payment is a two-phase commit in flight: no read shows it.
pub(crate) async fn payment(
    State(payments): State<Payments>,
    Path(order_id): Path<String>,
) -> Result<ApiJson<Payment>, ApiError> {
    let row = sqlx::query(
        "SELECT order_id, account_id, amount_cents, status, reason FROM payments
         WHERE order_id = ? AND status != 'held'",
    )
    .bind(&order_id)
    .fetch_optional(&payments.db.read)
    .await?;
    row.as_ref()
        .map(|r| ApiJson(payment_from(r)))
        .ok_or_else(|| ApiError::not_found("payment for order", &order_id))
}

pub(crate) async fn payments_of(
    State(payments): State<Payments>,
    Path(account_id): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<ApiJson<PaymentList>, ApiError> {
    let limit = page.limit()?;
    let rows = sqlx::query(
        "SELECT order_id, account_id, amount_cents, status, reason FROM payments
         WHERE account_id = ? AND order_id > ? AND status != 'held' ORDER BY order_id LIMIT ?",
    )
    .bind(&account_id)
    .bind(page.after())
    .bind(limit as i64)
    .fetch_all(&payments.db.read)
    .await?;
    let list: Vec<Payment> = rows.iter().map(payment_from).collect();
    let next_after = (list.len() == limit).then(|| list[limit - 1].order_id.clone());
    Ok(ApiJson(PaymentList {
        payments: list,
        next_after,
    }))
}
