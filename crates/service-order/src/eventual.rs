//! Queue and cron modes: the transactional outbox on the way out, Payment's verdicts on the
//! way back.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contracts::api::Refusal;
use contracts::events::{Event, EventBody};
use contracts::now_ms;
use contracts::order::NewOrder;
use runtime::ApiError;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
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

/// Settles accepted orders on Payment's verdicts, a batch at a time: every captured order is
/// confirmed with one statement, the declined ones cancelled with one per reason, and each
/// cancellation emits `OrderCancelled` so that Loyalty and Stats take back what they applied.
/// Each order has one verdict, so the order they are applied in does not matter; an order
/// already settled (a redelivered verdict) is left as it is. Returns the acknowledgement times
/// of the orders this call settled.
async fn settle_all(
    orders: &Orders,
    tx: &mut SqliteConnection,
    captured: &[String],
    declined: &BTreeMap<Refusal, Vec<String>>,
) -> Result<Vec<i64>, sqlx::Error> {
    let now = now_ms();
    let mut acknowledged = Vec::new();
    if !captured.is_empty() {
        let mut confirm =
            QueryBuilder::<Sqlite>::new("UPDATE orders SET status = 'confirmed', settled_at_ms = ");
        confirm
            .push_bind(now)
            .push(" WHERE status = 'accepted' AND id IN (");
        let mut ids = confirm.separated(", ");
        for id in captured {
            ids.push_bind(id);
        }
        confirm.push(") RETURNING acknowledged_at_ms");
        acknowledged.extend(
            confirm
                .build_query_scalar::<i64>()
                .fetch_all(&mut *tx)
                .await?,
        );
    }
    let mut cancellations = Vec::new();
    for (reason, order_ids) in declined {
        let mut cancel =
            QueryBuilder::<Sqlite>::new("UPDATE orders SET status = 'cancelled', reason = ");
        cancel
            .push_bind(reason.as_str())
            .push(", settled_at_ms = ")
            .push_bind(now)
            .push(" WHERE status = 'accepted' AND id IN (");
        let mut ids = cancel.separated(", ");
        for id in order_ids {
            ids.push_bind(id);
        }
        cancel.push(") RETURNING id, account_id, total_cents, points, acknowledged_at_ms");
        let rows: Vec<(String, String, i64, i64, i64)> =
            cancel.build_query_as().fetch_all(&mut *tx).await?;
        for (order_id, account_id, total_cents, points, acknowledged_at_ms) in rows {
            acknowledged.push(acknowledged_at_ms);
            cancellations.push(EventBody::OrderCancelled {
                order_id,
                account_id,
                total_cents,
                points,
                reason: *reason,
            });
        }
    }
    if let Some(seq) = Outbox::append_all(tx, &cancellations, now).await? {
        orders
            .settled_seq
            .fetch_max(seq, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(acknowledged)
}

impl Apply for Orders {
    type Context = ();

    async fn apply(
        &self,
        tx: &mut SqliteConnection,
        events: &[Event],
        _: &(),
    ) -> Result<(), ApplyError> {
        self.settled_seq
            .store(0, std::sync::atomic::Ordering::Relaxed);
        let mut captured = Vec::new();
        let mut declined: BTreeMap<Refusal, Vec<String>> = BTreeMap::new();
        for event in events {
            match transport::consumer::decode(event)? {
                EventBody::PaymentCaptured { order_id, .. } => captured.push(order_id),
                EventBody::PaymentDeclined {
                    order_id, reason, ..
                } => {
                    declined.entry(reason).or_default().push(order_id);
                }
                _ => {}
            }
        }
        let acknowledged = settle_all(self, tx, &captured, &declined).await?;
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
