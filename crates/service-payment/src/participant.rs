//! Strong mode: Payment's part in each order's two-phase commit. Every step is a group-commit
//! write: the prepares (and commits) of concurrent orders share one fsync.

use contracts::api::Refusal;
use contracts::internal::{PrepareRequest, Vote};
use contracts::now_ms;
use runtime::ApiError;
use sqlx::SqliteConnection;

use crate::Payments;

impl twophase::Participant for Payments {
    async fn prepare(&self, request: PrepareRequest) -> Result<Vote, ApiError> {
        self.db
            .group
            .write(move |tx| Box::pin(hold(tx, request)))
            .await
    }

    async fn commit(&self, tx_id: String) -> Result<(), ApiError> {
        self.db
            .group
            .write(move |tx| Box::pin(capture(tx, tx_id)))
            .await?;
        // Applied before the order is acknowledged: strong mode's lag is zero by design.
        self.metrics.apply_lag_ms.observe(0.0);
        Ok(())
    }

    async fn abort(&self, tx_id: String) -> Result<(), ApiError> {
        self.db
            .group
            .write(move |tx| Box::pin(release(tx, tx_id)))
            .await
    }

    async fn in_doubt(&self, prepared_before_ms: i64) -> anyhow::Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT order_id FROM payments WHERE status = 'held' AND prepared_at_ms < ? LIMIT 100",
        )
        .bind(prepared_before_ms)
        .fetch_all(&self.db.read)
        .await?)
    }
}

/// Holds the total: the wallet keeps the money but it can no longer be spent by another
/// order. A second prepare of the same order answers the first vote.
async fn hold(tx: &mut SqliteConnection, request: PrepareRequest) -> Result<Vote, ApiError> {
    let existing: Option<String> =
        sqlx::query_scalar("SELECT status FROM payments WHERE order_id = ?")
            .bind(&request.tx_id)
            .fetch_optional(&mut *tx)
            .await?;
    if existing.is_some() {
        return Ok(Vote::Yes);
    }
    let held = sqlx::query(
        "UPDATE wallets SET held_cents = held_cents + ?1
         WHERE account_id = ?2 AND balance_cents - held_cents >= ?1",
    )
    .bind(request.total_cents)
    .bind(&request.account_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if held == 0 {
        // Nothing was written: a no vote needs no record, the coordinator aborts.
        return Ok(Vote::No {
            reason: Refusal::InsufficientFunds,
        });
    }
    let now = now_ms();
    sqlx::query(
        "INSERT INTO payments (order_id, account_id, amount_cents, status, prepared_at_ms, updated_at_ms)
         VALUES (?, ?, ?, 'held', ?, ?)",
    )
    .bind(&request.tx_id)
    .bind(&request.account_id)
    .bind(request.total_cents)
    .bind(now)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(Vote::Yes)
}

/// Captures what was held.
async fn capture(tx: &mut SqliteConnection, tx_id: String) -> Result<(), ApiError> {
    let held: Option<(String, i64)> = sqlx::query_as(
        "UPDATE payments SET status = 'captured', updated_at_ms = ? WHERE order_id = ? AND status = 'held'
         RETURNING account_id, amount_cents",
    )
    .bind(now_ms())
    .bind(&tx_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((account_id, amount)) = held {
        sqlx::query(
            "UPDATE wallets SET balance_cents = balance_cents - ?1, held_cents = held_cents - ?1
             WHERE account_id = ?2",
        )
        .bind(amount)
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Releases what was held, leaving no payment behind.
async fn release(tx: &mut SqliteConnection, tx_id: String) -> Result<(), ApiError> {
    let held: Option<(String, i64)> = sqlx::query_as(
        "DELETE FROM payments WHERE order_id = ? AND status = 'held' RETURNING account_id, amount_cents",
    )
    .bind(&tx_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((account_id, amount)) = held {
        sqlx::query("UPDATE wallets SET held_cents = held_cents - ? WHERE account_id = ?")
            .bind(amount)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}
