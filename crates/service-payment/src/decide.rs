//! The eventual modes: deciding each placed order from the Order feed.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use contracts::api::Refusal;
use contracts::events::{Event, EventBody};
use contracts::internal::{ELIGIBILITY_PATH, EligibilityRequest, EligibilityResponse};
use contracts::now_ms;
use sqlx::SqliteConnection;
use transport::{Apply, ApplyError, Outbox};

use crate::Payments;

/// What Account said about each account in the batch: `None` may order.
pub(crate) type Verdicts = BTreeMap<String, Option<Refusal>>;

impl Apply for Payments {
    type Context = Verdicts;

    /// Asks Account about every account with a placed order in the batch, in one call.
    async fn gather(&self, events: &[Event]) -> Result<Verdicts, ApplyError> {
        let mut account_ids: Vec<String> = events
            .iter()
            .filter_map(|e| match e.decode() {
                Ok(EventBody::OrderPlaced { account_id, .. }) => Some(account_id),
                _ => None,
            })
            .collect();
        account_ids.sort();
        account_ids.dedup();
        if account_ids.is_empty() {
            return Ok(Verdicts::new());
        }
        let answer: EligibilityResponse = self
            .account
            .post(ELIGIBILITY_PATH, &EligibilityRequest { account_ids })
            .await
            .map_err(|e| {
                if e.is_retryable() {
                    ApplyError::Transient(e.into())
                } else {
                    ApplyError::Permanent(e.into())
                }
            })?;
        Ok(answer.verdicts)
    }

    async fn apply(
        &self,
        tx: &mut SqliteConnection,
        events: &[Event],
        verdicts: &Verdicts,
    ) -> Result<(), ApplyError> {
        self.appended.store(0, Ordering::Relaxed);
        for event in events {
            let verdict = match transport::consumer::decode(event)? {
                EventBody::OrderPlaced {
                    order_id,
                    account_id,
                    total_cents,
                    ..
                } => {
                    let refusal = verdicts.get(&account_id).copied().ok_or_else(|| {
                        ApplyError::Transient(anyhow::anyhow!(
                            "no verdict for account {account_id}"
                        ))
                    })?;
                    decide(tx, &order_id, &account_id, total_cents, refusal).await?
                }
                EventBody::OrderCancelled { order_id, .. } => {
                    refund(tx, &order_id).await?;
                    None
                }
                _ => None,
            };
            if let Some(body) = verdict {
                let seq = Outbox::append(tx, &body, now_ms()).await?;
                self.appended.fetch_max(seq, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    fn committed(&self, events: &[Event]) {
        let seq = self.appended.swap(0, Ordering::Relaxed);
        if seq > 0 {
            self.outbox.published(seq);
        }
        for event in events {
            if let Ok(EventBody::OrderPlaced {
                acknowledged_at_ms, ..
            }) = event.decode()
            {
                self.metrics.observe_apply(acknowledged_at_ms);
            }
        }
    }
}

/// Captures the order's total if the account may order and the wallet has it, else declines.
/// Returns the verdict event, or nothing if this order was decided before (a redelivery).
async fn decide(
    tx: &mut SqliteConnection,
    order_id: &str,
    account_id: &str,
    total_cents: i64,
    refusal: Option<Refusal>,
) -> Result<Option<EventBody>, sqlx::Error> {
    let seen: Option<i64> = sqlx::query_scalar("SELECT 1 FROM payments WHERE order_id = ?")
        .bind(order_id)
        .fetch_optional(&mut *tx)
        .await?;
    if seen.is_some() {
        return Ok(None);
    }
    let refusal = match refusal {
        Some(reason) => Some(reason),
        None => {
            let taken = sqlx::query(
                "UPDATE wallets SET balance_cents = balance_cents - ?1
                 WHERE account_id = ?2 AND balance_cents - held_cents >= ?1",
            )
            .bind(total_cents)
            .bind(account_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            (taken == 0).then_some(Refusal::InsufficientFunds)
        }
    };
    let status = if refusal.is_some() {
        "declined"
    } else {
        "captured"
    };
    sqlx::query(
        "INSERT INTO payments (order_id, account_id, amount_cents, status, reason, updated_at_ms)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(order_id)
    .bind(account_id)
    .bind(total_cents)
    .bind(status)
    .bind(refusal.map(Refusal::as_str))
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    let (order_id, account_id) = (order_id.to_owned(), account_id.to_owned());
    Ok(Some(match refusal {
        None => EventBody::PaymentCaptured {
            order_id,
            account_id,
            amount_cents: total_cents,
        },
        Some(reason) => EventBody::PaymentDeclined {
            order_id,
            account_id,
            reason,
        },
    }))
}

/// Gives back a captured payment of an order cancelled for another reason (a saga's
/// compensation). Today only Payment cancels orders, so this finds nothing to refund; it is
/// here so that a new reason to cancel cannot leave money taken for a cancelled order.
async fn refund(tx: &mut SqliteConnection, order_id: &str) -> Result<(), sqlx::Error> {
    let captured: Option<(String, i64)> = sqlx::query_as(
        "UPDATE payments SET status = 'refunded', updated_at_ms = ? WHERE order_id = ? AND status = 'captured'
         RETURNING account_id, amount_cents",
    )
    .bind(now_ms())
    .bind(order_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((account_id, amount)) = captured {
        sqlx::query("UPDATE wallets SET balance_cents = balance_cents + ? WHERE account_id = ?")
            .bind(amount)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}
