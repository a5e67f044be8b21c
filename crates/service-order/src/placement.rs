//! Placing orders in the eventual modes, in batches: the hot path of queue and cron.
//!
//! A placer task takes every order waiting and writes the whole batch with a handful of
//! set-based statements — one lookup of the idempotency keys, one insert each for the orders,
//! their `OrderPlaced` events and the new keys — in one transaction, on the database's writer
//! thread. What each order gets is exactly what placing it alone would give it: its own order
//! and event, the first answer for a key seen before, `409` for a key reused with another body.

use std::collections::HashMap;

use axum::http::StatusCode;
use contracts::api::{Order, OrderStatus};
use contracts::events::EventBody;
use contracts::ids::OrderId;
use contracts::now_ms;
use contracts::order::NewOrder;
use runtime::ApiError;
use runtime::idempotency::{self, Claim};
use storage::{Db, DbError, Tx};
use tokio::sync::{mpsc, oneshot};
use transport::Outbox;

use crate::{idempotency as keys, store};

/// Orders that may wait for the placer; past this, requests wait to enqueue.
const QUEUE_MAX: usize = 8_192;

/// Orders per transaction at most. Each order binds 8 values in the largest statement, so 512
/// orders stay far below either engine's bound on values per statement.
const BATCH_MAX: usize = 512;

/// What placing one order came to.
#[derive(Debug)]
pub(crate) enum Placed {
    /// A new order, acknowledged with `body`.
    New { body: String },
    /// A retry of a key already answered: that answer.
    Earlier { status: StatusCode, body: String },
}

struct Request {
    order: NewOrder,
    claim: Claim,
    answer: oneshot::Sender<Result<Placed, ApiError>>,
}

/// The handle requests use.
#[derive(Debug, Clone)]
pub(crate) struct Placer {
    requests: mpsc::Sender<Request>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request").finish_non_exhaustive()
    }
}

impl Placer {
    /// The handle, and the task that places batches until every handle is dropped.
    pub(crate) fn new(
        db: Db,
        outbox: Outbox,
    ) -> (Self, impl std::future::Future<Output = anyhow::Result<()>>) {
        let (tx, rx) = mpsc::channel(QUEUE_MAX);
        (Self { requests: tx }, run(db, rx, outbox))
    }

    pub(crate) async fn place(&self, order: NewOrder, claim: Claim) -> Result<Placed, ApiError> {
        let (answer, answered) = oneshot::channel();
        let stopping = || ApiError::Unavailable("the order service is shutting down".into());
        self.requests
            .send(Request {
                order,
                claim,
                answer,
            })
            .await
            .map_err(|_| stopping())?;
        answered.await.map_err(|_| stopping())?
    }
}

async fn run(db: Db, mut requests: mpsc::Receiver<Request>, outbox: Outbox) -> anyhow::Result<()> {
    let mut batch = Vec::with_capacity(BATCH_MAX);
    while requests.recv_many(&mut batch, BATCH_MAX).await > 0 {
        let (inputs, answers): (Vec<(NewOrder, Claim)>, Vec<_>) = batch
            .drain(..)
            .map(|r| ((r.order, r.claim), r.answer))
            .unzip();
        let count = inputs.len();
        match db.write(move |tx| place_batch(tx, inputs)).await {
            Ok((placed, wrote_events)) => {
                assert_eq!(placed.len(), count, "one answer per order");
                // Placed and durable, not yet answered: the clients retry under their keys.
                runtime::crash_point("order::after-placement");
                if wrote_events {
                    outbox.published();
                }
                for (answer, placed) in answers.into_iter().zip(placed) {
                    let _ = answer.send(placed);
                }
            }
            Err(error) => {
                tracing::warn!(%error, orders = count, "a batch of orders did not commit");
                for answer in answers {
                    let _ = answer.send(Err(not_placed(&error)));
                }
            }
        }
    }
    Ok(())
}

/// What a client hears when the batch its order was in did not commit: nothing was placed,
/// or (the commit's answer lost) nobody knows; either way a retry with the key is safe.
fn not_placed(error: &DbError) -> ApiError {
    let outcome = match error.kind() {
        storage::ErrorKind::Unknown => "unknown",
        _ => "not_placed",
    };
    let mut fields = serde_json::Map::new();
    fields.insert("outcome".into(), outcome.into());
    ApiError::Detailed(
        StatusCode::SERVICE_UNAVAILABLE,
        match outcome {
            "unknown" => "the order may or may not be placed: retry with the same Idempotency-Key to learn which".into(),
            _ => "the order was not placed (the database is unavailable); retry with the same Idempotency-Key".into(),
        },
        fields,
    )
}

/// What the batch decided for one request before anything is written.
enum Decision {
    /// Place a new order (index into the new orders).
    New(usize),
    /// Answer as an earlier request with this key was answered (stored, or earlier in this
    /// batch: index into the new orders).
    Stored(StatusCode, String),
    SameAs(usize),
    /// The key came with another body.
    Conflict,
    /// The key belongs to a request without a final answer (a database that once ran strong
    /// mode cannot be served in an eventual one, so this is only a guard).
    InProgress,
}

/// Writes one batch; returns each request's answer, in order, and whether events were written.
fn place_batch(
    tx: &mut Tx<'_>,
    batch: Vec<(NewOrder, Claim)>,
) -> Result<(Vec<Result<Placed, ApiError>>, bool), DbError> {
    let names: Vec<&str> = batch.iter().map(|(_, c)| c.key.as_str()).collect();
    let stored = keys::find_all(tx, &names)?;

    // Decide each request in arrival order, as one at a time would.
    let now = now_ms();
    let mut new_orders: Vec<(Order, &Claim)> = Vec::new();
    let mut in_batch: HashMap<&str, (&str, usize)> = HashMap::new();
    let decisions: Vec<Decision> = batch
        .iter()
        .map(|(order, claim)| {
            let key = claim.key.as_str();
            if let Some(earlier) = stored.get(key) {
                return match (earlier.request_hash == claim.request_hash, &earlier.answer) {
                    (false, _) => Decision::Conflict,
                    (true, Some((status, body))) => Decision::Stored(*status, body.clone()),
                    (true, None) => Decision::InProgress,
                };
            }
            if let Some((hash, index)) = in_batch.get(key) {
                return if *hash == claim.request_hash {
                    Decision::SameAs(*index)
                } else {
                    Decision::Conflict
                };
            }
            in_batch.insert(key, (&claim.request_hash, new_orders.len()));
            let order = store::new_order(&OrderId::generate(), order, OrderStatus::Accepted, now);
            new_orders.push((order, claim));
            Decision::New(new_orders.len() - 1)
        })
        .collect();

    let bodies: Vec<String> = new_orders
        .iter()
        .map(|(order, _)| serde_json::to_string(order).expect("an order always serializes"))
        .collect();
    if !new_orders.is_empty() {
        let orders: Vec<&Order> = new_orders.iter().map(|(o, _)| o).collect();
        store::insert_all(tx, &orders)?;
        let events: Vec<EventBody> = orders
            .iter()
            .map(|order| EventBody::OrderPlaced {
                order_id: order.id.clone(),
                account_id: order.account_id.clone(),
                total_cents: order.total_cents,
                points: order.points,
                acknowledged_at_ms: order.acknowledged_at_ms,
            })
            .collect();
        Outbox::append_all(tx, &events, now)?;
        let keyed: Vec<(&Claim, &str, StatusCode, &str)> = new_orders
            .iter()
            .zip(&bodies)
            .map(|((order, claim), body)| {
                (
                    *claim,
                    order.id.as_str(),
                    StatusCode::ACCEPTED,
                    body.as_str(),
                )
            })
            .collect();
        keys::insert_all(tx, &keyed)?;
    }

    let answers = decisions
        .into_iter()
        .map(|decision| match decision {
            Decision::New(i) => Ok(Placed::New {
                body: bodies[i].clone(),
            }),
            Decision::SameAs(i) => Ok(Placed::Earlier {
                status: StatusCode::ACCEPTED,
                body: bodies[i].clone(),
            }),
            Decision::Stored(status, body) => Ok(Placed::Earlier { status, body }),
            Decision::Conflict => Err(idempotency::conflict()),
            Decision::InProgress => Err(ApiError::Conflict(
                "a request with this Idempotency-Key is in progress".into(),
            )),
        })
        .collect();
    Ok((answers, !new_orders.is_empty()))
}
