//! The eventual modes: deciding each placed order from the Order feed.

use std::collections::{BTreeMap, HashSet};

use contracts::api::Refusal;
use contracts::events::{Event, EventBody};
use contracts::internal::{ELIGIBILITY_PATH, EligibilityRequest, EligibilityResponse};
use contracts::now_ms;
use storage::Tx;
use transport::{Apply, ApplyError, Outbox};

use crate::Payments;
use crate::wallets::{self, NewPayment};

/// What Account said about each account in the batch: `None` may order.
pub(crate) type Verdicts = BTreeMap<String, Option<Refusal>>;

/// What a committed batch leaves to do: the acknowledgement times of the orders decided (apply
/// lag), and whether verdict events were written (readers of the feed to wake).
pub(crate) struct Decided {
    acknowledged: Vec<i64>,
    published: bool,
}

impl Apply for Payments {
    type Context = Verdicts;
    type Output = Decided;

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
            .await?;
        Ok(answer.verdicts)
    }

    fn apply(
        &self,
        tx: &mut Tx<'_>,
        events: &[Event],
        verdicts: Verdicts,
    ) -> Result<Decided, ApplyError> {
        // Runs of placed orders are decided as a set; a cancellation is applied in its place
        // in the order, after the run before it.
        let mut decided = Decided {
            acknowledged: Vec::new(),
            published: false,
        };
        let mut run: Vec<PlacedOrder> = Vec::new();
        for event in events {
            match transport::consumer::decode(event)? {
                EventBody::OrderPlaced {
                    order_id,
                    account_id,
                    total_cents,
                    acknowledged_at_ms,
                    ..
                } => run.push(PlacedOrder {
                    order_id,
                    account_id,
                    total_cents,
                    acknowledged_at_ms,
                }),
                EventBody::OrderCancelled { order_id, .. } => {
                    decide_all(tx, &std::mem::take(&mut run), &verdicts, &mut decided)?;
                    wallets::refund(tx, &order_id)?;
                }
                _ => {}
            }
        }
        decide_all(tx, &run, &verdicts, &mut decided)?;
        Ok(decided)
    }

    fn committed(&self, decided: Decided) {
        if decided.published {
            self.outbox.published();
        }
        for at in decided.acknowledged {
            self.metrics.observe_apply(at);
        }
    }
}

struct PlacedOrder {
    order_id: String,
    account_id: String,
    total_cents: i64,
    acknowledged_at_ms: i64,
}

/// Decides a run of placed orders, in order, as one at a time would: an order decided before
/// (a redelivery) is skipped; an account Account refused is declined with its reason;
/// otherwise the wallet pays if it has the total, else the order is declined for insufficient
/// funds. Done in memory over the wallets read once, then written with one statement each for
/// the payments, the verdict events and the wallets.
fn decide_all(
    tx: &mut Tx<'_>,
    run: &[PlacedOrder],
    verdicts: &Verdicts,
    decided: &mut Decided,
) -> Result<(), ApplyError> {
    if run.is_empty() {
        return Ok(());
    }
    let order_ids: Vec<&str> = run.iter().map(|o| o.order_id.as_str()).collect();
    let accounts: Vec<&str> = run.iter().map(|o| o.account_id.as_str()).collect();
    let mut done: HashSet<String> = wallets::with_payment(tx, &order_ids)?;
    let mut wallets = wallets::read(tx, &accounts)?;
    let mut changed: HashSet<&str> = HashSet::new();

    let mut payments = Vec::new();
    let mut verdict_events = Vec::new();
    for order in run {
        if !done.insert(order.order_id.clone()) {
            continue;
        }
        let refusal = verdicts.get(&order.account_id).copied().ok_or_else(|| {
            ApplyError::Transient(anyhow::anyhow!(
                "no verdict for account {}",
                order.account_id
            ))
        })?;
        let refusal = refusal.or_else(|| match wallets.get_mut(&order.account_id) {
            Some(wallet) if wallet.balance - wallet.held >= order.total_cents => {
                wallet.balance -= order.total_cents;
                changed.insert(&order.account_id);
                None
            }
            _ => Some(Refusal::InsufficientFunds),
        });
        payments.push(NewPayment {
            order_id: &order.order_id,
            account_id: &order.account_id,
            amount_cents: order.total_cents,
            status: if refusal.is_some() {
                "declined"
            } else {
                "captured"
            },
            reason: refusal.map(Refusal::as_str),
        });
        decided.acknowledged.push(order.acknowledged_at_ms);
        verdict_events.push(match refusal {
            None => EventBody::PaymentCaptured {
                order_id: order.order_id.clone(),
                account_id: order.account_id.clone(),
                amount_cents: order.total_cents,
            },
            Some(reason) => EventBody::PaymentDeclined {
                order_id: order.order_id.clone(),
                account_id: order.account_id.clone(),
                reason,
            },
        });
    }
    wallets::insert_payments(tx, &payments, None)?;
    Outbox::append_all(tx, &verdict_events, now_ms())?;
    decided.published |= !verdict_events.is_empty();
    wallets::write(tx, changed.iter().map(|a| (*a, wallets[*a])))?;
    Ok(())
}
