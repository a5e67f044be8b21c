//! Strong mode: Payment's part in each order's two-phase commit. Every step is a group-commit
//! write: the prepares (and commits) of concurrent orders share one fsync.

use std::collections::BTreeMap;

use contracts::api::Refusal;
use contracts::internal::{PrepareRequest, Vote};
use contracts::now_ms;
use runtime::ApiError;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::{Payments, wallets};

impl twophase::Participant for Payments {
    async fn abort(&self, tx_id: String) -> Result<(), ApiError> {
        self.db
            .group
            .write(move |tx| Box::pin(release(tx, tx_id)))
            .await
    }

    async fn prepare_many(&self, requests: Vec<PrepareRequest>) -> Result<Vec<Vote>, ApiError> {
        self.db
            .group
            .write(move |tx| Box::pin(hold_all(tx, requests)))
            .await
    }

    async fn commit_many(&self, tx_ids: Vec<String>) -> Result<(), ApiError> {
        let count = tx_ids.len();
        self.db
            .group
            .write(move |tx| Box::pin(capture_all(tx, tx_ids)))
            .await?;
        for _ in 0..count {
            self.metrics.apply_lag_ms.observe(0.0);
        }
        Ok(())
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

/// [`hold`] for many transactions, in order, as a set: the run's payments and wallets are
/// read once, the holds decided in memory, then written with one statement each.
async fn hold_all(
    tx: &mut SqliteConnection,
    requests: Vec<PrepareRequest>,
) -> Result<Vec<Vote>, ApiError> {
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let mut prepared = wallets::with_payment(tx, requests.iter().map(|r| r.tx_id.as_str())).await?;
    let mut wallets = wallets::read(tx, requests.iter().map(|r| r.account_id.as_str())).await?;

    let mut votes = Vec::with_capacity(requests.len());
    let mut holds = Vec::new();
    for request in &requests {
        // A second prepare of the same order answers the first vote (yes: a no is not kept).
        if !prepared.insert(request.tx_id.clone()) {
            votes.push(Vote::Yes);
            continue;
        }
        match wallets.get_mut(&request.account_id) {
            Some((balance, held, _)) if *balance - *held >= request.total_cents => {
                *held += request.total_cents;
                holds.push(request);
                votes.push(Vote::Yes);
            }
            _ => {
                prepared.remove(&request.tx_id);
                votes.push(Vote::No {
                    reason: Refusal::InsufficientFunds,
                });
            }
        }
    }
    if holds.is_empty() {
        return Ok(votes);
    }
    let now = now_ms();
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO payments (order_id, account_id, amount_cents, status, prepared_at_ms, updated_at_ms) ",
    );
    insert.push_values(&holds, |mut row, r| {
        row.push_bind(&r.tx_id)
            .push_bind(&r.account_id)
            .push_bind(r.total_cents)
            .push_bind("held")
            .push_bind(now)
            .push_bind(now);
    });
    insert.build().execute(&mut *tx).await?;
    let touched: BTreeMap<&str, wallets::Figures> = holds
        .iter()
        .map(|r| (r.account_id.as_str(), wallets[&r.account_id]))
        .collect();
    wallets::write(tx, touched, wallets::Changed::Held).await?;
    Ok(votes)
}

/// [`capture`] for many transactions: one update of the payments, then one per wallet.
async fn capture_all(tx: &mut SqliteConnection, tx_ids: Vec<String>) -> Result<(), ApiError> {
    if tx_ids.is_empty() {
        return Ok(());
    }
    let mut captured =
        QueryBuilder::<Sqlite>::new("UPDATE payments SET status = 'captured', updated_at_ms = ");
    captured
        .push_bind(now_ms())
        .push(" WHERE status = 'held' AND order_id IN (");
    let mut ids = captured.separated(", ");
    for tx_id in &tx_ids {
        ids.push_bind(tx_id);
    }
    captured.push(") RETURNING account_id, amount_cents");
    let rows: Vec<(String, i64)> = captured.build_query_as().fetch_all(&mut *tx).await?;
    let mut per_account: BTreeMap<String, i64> = BTreeMap::new();
    for (account_id, amount) in rows {
        *per_account.entry(account_id).or_default() += amount;
    }
    for (account_id, amount) in per_account {
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
