//! The eventual modes: deciding each placed order from the Order feed.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;

use contracts::api::Refusal;
use contracts::events::{Event, EventBody};
use contracts::internal::{ELIGIBILITY_PATH, EligibilityRequest, EligibilityResponse};
use contracts::now_ms;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use transport::{Apply, ApplyError, Outbox};

use crate::{Payments, wallets};

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
        // Runs of placed orders are decided as a set; a cancellation is applied in its place
        // in the order, after the run before it.
        let mut run: Vec<PlacedOrder> = Vec::new();
        for event in events {
            match transport::consumer::decode(event)? {
                EventBody::OrderPlaced {
                    order_id,
                    account_id,
                    total_cents,
                    ..
                } => run.push(PlacedOrder {
                    order_id,
                    account_id,
                    total_cents,
                }),
                EventBody::OrderCancelled { order_id, .. } => {
                    self.decide_all(tx, &std::mem::take(&mut run), verdicts)
                        .await?;
                    refund(tx, &order_id).await?;
                }
                _ => {}
            }
        }
        self.decide_all(tx, &run, verdicts).await
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

struct PlacedOrder {
    order_id: String,
    account_id: String,
    total_cents: i64,
}

impl Payments {
    /// Decides a run of placed orders, in order, as one at a time would: an order decided
    /// before (a redelivery) is skipped; an account Account refused is declined with its
    /// reason; otherwise the wallet pays if it has the total, else the order is declined for
    /// insufficient funds. Done in memory over the wallets read once, then written with one
    /// statement each for the payments, the verdict events and the wallets.
    async fn decide_all(
        &self,
        tx: &mut SqliteConnection,
        run: &[PlacedOrder],
        verdicts: &Verdicts,
    ) -> Result<(), ApplyError> {
        if run.is_empty() {
            return Ok(());
        }
        let mut decided =
            wallets::with_payment(tx, run.iter().map(|o| o.order_id.as_str())).await?;
        let mut wallets = wallets::read(tx, run.iter().map(|o| o.account_id.as_str())).await?;
        let mut changed: HashSet<String> = HashSet::new();

        let mut payments = Vec::new();
        let mut verdict_events = Vec::new();
        for order in run {
            if !decided.insert(order.order_id.clone()) {
                continue;
            }
            let refusal = verdicts.get(&order.account_id).copied().ok_or_else(|| {
                ApplyError::Transient(anyhow::anyhow!(
                    "no verdict for account {}",
                    order.account_id
                ))
            })?;
            let refusal = refusal.or_else(|| match wallets.get_mut(&order.account_id) {
                Some((balance, held, _)) if *balance - *held >= order.total_cents => {
                    *balance -= order.total_cents;
                    changed.insert(order.account_id.clone());
                    None
                }
                _ => Some(Refusal::InsufficientFunds),
            });
            let (order_id, account_id) = (order.order_id.clone(), order.account_id.clone());
            payments.push((order, refusal));
            verdict_events.push(match refusal {
                None => EventBody::PaymentCaptured {
                    order_id,
                    account_id,
                    amount_cents: order.total_cents,
                },
                Some(reason) => EventBody::PaymentDeclined {
                    order_id,
                    account_id,
                    reason,
                },
            });
        }
        if payments.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO payments (order_id, account_id, amount_cents, status, reason, updated_at_ms) ",
        );
        insert.push_values(&payments, |mut row, (order, refusal)| {
            row.push_bind(&order.order_id)
                .push_bind(&order.account_id)
                .push_bind(order.total_cents)
                .push_bind(if refusal.is_some() {
                    "declined"
                } else {
                    "captured"
                })
                .push_bind(refusal.map(Refusal::as_str))
                .push_bind(now);
        });
        insert.build().execute(&mut *tx).await?;
        if let Some(seq) = Outbox::append_all(tx, &verdict_events, now).await? {
            self.appended.fetch_max(seq, Ordering::Relaxed);
        }
        wallets::write(
            tx,
            changed.iter().map(|a| (a.as_str(), wallets[a])),
            wallets::Changed::Balance,
        )
        .await?;
        Ok(())
    }
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
