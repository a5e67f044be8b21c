//! Strong mode: Payment's part in each order's two-phase commit. Prepare *holds* the total
//! (the wallet keeps it but cannot spend it twice); commit captures it; abort releases it.

use contracts::api::Refusal;
use contracts::internal::{PrepareRequest, Vote};
use contracts::now_ms;
use runtime::ApiError;
use storage::{DbError, Tx};

use crate::Payments;
use crate::wallets::{self, NewPayment};

impl twophase::Participant for Payments {
    async fn abort(&self, tx_id: String) -> Result<(), ApiError> {
        Ok(self
            .db
            .write(move |tx| wallets::release(tx, &tx_id))
            .await?)
    }

    async fn prepare_many(&self, requests: Vec<PrepareRequest>) -> Result<Vec<Vote>, ApiError> {
        Ok(self.db.write(move |tx| hold_all(tx, &requests)).await?)
    }

    async fn commit_many(&self, tx_ids: Vec<String>) -> Result<(), ApiError> {
        let count = tx_ids.len();
        self.db
            .write(move |tx| wallets::capture_all(tx, &tx_ids))
            .await?;
        for _ in 0..count {
            self.metrics.apply_lag.observe(0.0);
        }
        Ok(())
    }

    async fn in_doubt(&self, prepared_before_ms: i64) -> anyhow::Result<Vec<String>> {
        Ok(self
            .db
            .read(move |tx| wallets::held_before(tx, prepared_before_ms))
            .await?)
    }
}

/// Holds the totals of many transactions, in order, as a set: the batch's payments and
/// wallets are read once, the holds decided in memory, then written with one statement each.
///
/// A transaction prepared before answers yes again (its hold stands: a retry of the same
/// order is never refused by the funds its own earlier attempt holds); one aborted before
/// answers yes and holds nothing (its tombstone stands, and the coordinator's log says abort,
/// so it never commits).
fn hold_all(tx: &mut Tx<'_>, requests: &[PrepareRequest]) -> Result<Vec<Vote>, DbError> {
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let tx_ids: Vec<&str> = requests.iter().map(|r| r.tx_id.as_str()).collect();
    let accounts: Vec<&str> = requests.iter().map(|r| r.account_id.as_str()).collect();
    let mut known = wallets::with_payment(tx, &tx_ids)?;
    let mut wallets = wallets::read(tx, &accounts)?;

    let mut votes = Vec::with_capacity(requests.len());
    let mut holds = Vec::new();
    for request in requests {
        if !known.insert(request.tx_id.clone()) {
            votes.push(Vote::Yes);
            continue;
        }
        match wallets.get_mut(&request.account_id) {
            Some(wallet) if wallet.balance - wallet.held >= request.total_cents => {
                wallet.held += request.total_cents;
                holds.push(NewPayment {
                    order_id: &request.tx_id,
                    account_id: &request.account_id,
                    amount_cents: request.total_cents,
                    status: "held",
                    reason: None,
                });
                votes.push(Vote::Yes);
            }
            _ => {
                known.remove(&request.tx_id);
                votes.push(Vote::No {
                    reason: Refusal::InsufficientFunds,
                });
            }
        }
    }
    let touched: Vec<(&str, wallets::Figures)> = holds
        .iter()
        .map(|h| (h.account_id, wallets[h.account_id]))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect();
    wallets::insert_payments(tx, &holds, Some(now_ms()))?;
    wallets::write(tx, touched)?;
    debug_assert_eq!(votes.len(), requests.len(), "one vote per prepare");
    Ok(votes)
}
