//! Queue and cron modes: the transactional outbox on the way out, Payment's verdicts on the
//! way back.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use contracts::api::Refusal;
use contracts::events::{Event, EventBody};
use contracts::now_ms;
use contracts::order::NewOrder;
use runtime::ApiError;
use runtime::idempotency::Claim;
use storage::Tx;
use transport::{Apply, ApplyError, Outbox};

use crate::placement::Placed;
use crate::{Orders, Reply, store};

/// Writes the order, its `OrderPlaced` event and the idempotency key in one local
/// transaction, then answers `202 accepted`. The event exists if and only if the order does.
/// The transaction is shared with the orders placed at the same moment (see
/// [`placement`](crate::placement)): one sync, and a few statements, acknowledge them all.
pub(crate) async fn place(orders: &Orders, order: NewOrder, claim: Claim) -> Reply {
    let Some(placer) = orders.placer.as_ref() else {
        return Reply::error(&ApiError::Internal(anyhow::anyhow!(
            "no placer in an eventual mode"
        )));
    };
    match placer.place(order, claim).await {
        Ok(Placed::New { body }) => Reply::new(StatusCode::ACCEPTED, body),
        Ok(Placed::Earlier { status, body }) => Reply::new(status, body),
        Err(error) => Reply::error(&error),
    }
}

/// What settling a batch of verdicts leaves for after its commit.
pub(crate) struct Settled {
    acknowledged: Vec<i64>,
    published: bool,
}

/// Settles accepted orders on Payment's verdicts, a batch at a time (see
/// [`store::settle_all`]); each cancellation emits `OrderCancelled` so that Loyalty and Stats
/// take back what they applied (the saga's compensation).
impl Apply for Orders {
    type Context = ();
    type Output = Settled;

    fn apply(&self, tx: &mut Tx<'_>, events: &[Event], (): ()) -> Result<Settled, ApplyError> {
        let mut captured = Vec::new();
        let mut declined: BTreeMap<Refusal, Vec<String>> = BTreeMap::new();
        for event in events {
            match transport::consumer::decode(event)? {
                EventBody::PaymentCaptured { order_id, .. } => captured.push(order_id),
                EventBody::PaymentDeclined {
                    order_id, reason, ..
                } => declined.entry(reason).or_default().push(order_id),
                _ => {}
            }
        }
        let now = now_ms();
        let settled = store::settle_all(tx, &captured, &declined, now)?;
        Outbox::append_all(tx, &settled.cancellations, now)?;
        Ok(Settled {
            acknowledged: settled.acknowledged,
            published: !settled.cancellations.is_empty(),
        })
    }

    fn committed(&self, settled: Settled) {
        if settled.published {
            self.outbox.published();
        }
        for at in settled.acknowledged {
            self.metrics.observe_apply(at);
        }
    }
}
