//! Queue and cron modes: the transactional outbox on the way out, Payment's verdicts on the
//! way back.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contracts::api::Refusal;
use contracts::events::{Event, EventBody};
use contracts::now_ms;
use contracts::order::NewOrder;
use runtime::ApiError;
use sqlx::SqliteConnection;
use transport::{Apply, ApplyError, Outbox};

use crate::Orders;
use crate::idempotency::Claim;
use crate::placement::Placed;

/// Writes the order, its `OrderPlaced` event and the idempotency key in one local
/// transaction, then answers `202 accepted`. The event exists if and only if the order does.
/// The transaction is shared with the orders placed at the same moment (see
/// [`placement`](crate::placement)): one fsync, and a few statements, acknowledge them all.
pub(crate) async fn place(
    orders: &Orders,
    order: NewOrder,
    claim: Option<Claim>,
) -> Result<Response, ApiError> {
    let placer = orders
        .placer
        .as_ref()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no placer in an eventual mode")))?;
    let (status, body) = match placer.place(order, claim).await? {
        Placed::New { body } => (StatusCode::ACCEPTED, body),
        Placed::Earlier { status, body } => (status, body),
    };
    Ok((
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// Settles an accepted order on Payment's verdict. A captured payment confirms it; a declined
/// one cancels it and emits `OrderCancelled`, so that Loyalty and Stats take back what they
/// applied. Returns the order's acknowledgement time if this call settled it.
async fn settle(
    orders: &Orders,
    tx: &mut SqliteConnection,
    order_id: &str,
    refusal: Option<Refusal>,
) -> Result<Option<i64>, sqlx::Error> {
    let now = now_ms();
    let status = if refusal.is_some() {
        "cancelled"
    } else {
        "confirmed"
    };
    let settled: Option<(String, i64, i64, i64)> = sqlx::query_as(
        "UPDATE orders SET status = ?, reason = ?, settled_at_ms = ?
         WHERE id = ? AND status = 'accepted'
         RETURNING account_id, total_cents, points, acknowledged_at_ms",
    )
    .bind(status)
    .bind(refusal.map(Refusal::as_str))
    .bind(now)
    .bind(order_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((account_id, total_cents, points, acknowledged_at_ms)) = settled else {
        // Already settled: a redelivered verdict.
        return Ok(None);
    };
    if let Some(reason) = refusal {
        let event = EventBody::OrderCancelled {
            order_id: order_id.to_owned(),
            account_id,
            total_cents,
            points,
            reason,
        };
        let seq = Outbox::append(tx, &event, now).await?;
        orders
            .settled_seq
            .fetch_max(seq, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(Some(acknowledged_at_ms))
}

impl Apply for Orders {
    type Context = ();

    async fn gather(&self, _events: &[Event]) -> Result<(), ApplyError> {
        Ok(())
    }

    async fn apply(
        &self,
        tx: &mut SqliteConnection,
        events: &[Event],
        _: &(),
    ) -> Result<(), ApplyError> {
        let mut acknowledged = Vec::new();
        self.settled_seq
            .store(0, std::sync::atomic::Ordering::Relaxed);
        for event in events {
            let settled = match transport::consumer::decode(event)? {
                EventBody::PaymentCaptured { order_id, .. } => {
                    settle(self, tx, &order_id, None).await?
                }
                EventBody::PaymentDeclined {
                    order_id, reason, ..
                } => settle(self, tx, &order_id, Some(reason)).await?,
                _ => None,
            };
            acknowledged.extend(settled);
        }
        *self
            .settled
            .lock()
            .expect("never poisoned: no panics while held") = acknowledged;
        Ok(())
    }

    fn committed(&self, _events: &[Event]) {
        let seq = self
            .settled_seq
            .swap(0, std::sync::atomic::Ordering::Relaxed);
        if seq > 0 {
            self.outbox.published(seq);
        }
        let acknowledged = std::mem::take(&mut *self.settled.lock().expect("never poisoned"));
        for at in acknowledged {
            self.metrics.observe_apply(at);
        }
    }
}
