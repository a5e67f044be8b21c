//! Placing orders in the eventual modes, in batches: the hot path of queue and cron.
//!
//! Group commit already shares one fsync among concurrent orders, but each order still costs
//! half a dozen statements, and every statement is a round trip to the SQLite driver's thread.
//! Here a placer task takes every order waiting and writes the whole batch with a handful of
//! set-based statements — one lookup of the idempotency keys, one insert each for the orders,
//! their `OrderPlaced` events and the new keys — in one transaction. What each order gets is
//! exactly what [`eventual::place`](crate::eventual) would give it alone: its own order and
//! event, the first answer for a key seen before, `409` for a key reused with another body.

use std::collections::HashMap;

use axum::http::StatusCode;
use contracts::api::{Order, OrderStatus};
use contracts::events::EventBody;
use contracts::ids::OrderId;
use contracts::now_ms;
use contracts::order::NewOrder;
use runtime::ApiError;
use sqlx::{Connection, QueryBuilder, Sqlite};
use storage::Db;
use tokio::sync::{mpsc, oneshot};
use transport::Outbox;

use crate::idempotency::Claim;
use crate::store;

/// Orders that may wait for the placer; past this, requests wait to enqueue.
const QUEUE_MAX: usize = 8_192;

/// Orders per transaction at most. Each order binds 8 values in the largest statement, so 512
/// orders stay far below SQLite's 32,766 bound variables.
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
    claim: Option<Claim>,
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
    /// The handle, and the task that places batches until every handle is dropped. `placed`
    /// is told the newest outbox position after each batch commits.
    pub(crate) fn new(
        db: Db,
        placed: impl Fn(i64) + Send + 'static,
    ) -> (Self, impl std::future::Future<Output = anyhow::Result<()>>) {
        let (tx, rx) = mpsc::channel(QUEUE_MAX);
        (Self { requests: tx }, run(db, rx, placed))
    }

    pub(crate) async fn place(
        &self,
        order: NewOrder,
        claim: Option<Claim>,
    ) -> Result<Placed, ApiError> {
        let (answer, answered) = oneshot::channel();
        self.requests
            .send(Request {
                order,
                claim,
                answer,
            })
            .await
            .map_err(|_| ApiError::Unavailable("the order service is shutting down".into()))?;
        answered
            .await
            .map_err(|_| ApiError::Unavailable("the order service is shutting down".into()))?
    }
}

async fn run(
    db: Db,
    mut requests: mpsc::Receiver<Request>,
    placed: impl Fn(i64),
) -> anyhow::Result<()> {
    let mut batch = Vec::with_capacity(BATCH_MAX);
    while requests.recv_many(&mut batch, BATCH_MAX).await > 0 {
        let outcome = place_batch(&db, &mut batch).await;
        match outcome {
            Ok((answers, head)) => {
                if let Some(head) = head {
                    placed(head);
                }
                for (request, answer) in batch.drain(..).zip(answers) {
                    let _ = request.answer.send(answer);
                }
            }
            Err(error) => {
                tracing::error!(error = %error, orders = batch.len(), "a batch of orders did not commit");
                for request in batch.drain(..) {
                    let _ = request.answer.send(Err(ApiError::Internal(anyhow::anyhow!(
                        "placing the order failed: {error}"
                    ))));
                }
            }
        }
    }
    Ok(())
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
    /// The key belongs to a request still in a two-phase commit (a database that once ran
    /// strong mode cannot be served in an eventual one, so this is only a guard).
    InProgress,
}

/// Writes one batch in one transaction; returns each request's answer, in order, and the
/// newest outbox position written.
async fn place_batch(
    db: &Db,
    batch: &mut [Request],
) -> Result<(Vec<Result<Placed, ApiError>>, Option<i64>), sqlx::Error> {
    let mut conn = db.write.acquire().await?;
    let mut tx = conn.begin().await?;

    // Keys seen before: one lookup for the whole batch.
    let keys: Vec<&str> = batch
        .iter()
        .filter_map(|r| r.claim.as_ref())
        .map(|c| c.key.as_str())
        .collect();
    let mut stored: HashMap<String, (String, Option<i64>, Option<String>)> = HashMap::new();
    if !keys.is_empty() {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT key, request_hash, status_code, response FROM idempotency_keys WHERE key IN (",
        );
        let mut list = query.separated(", ");
        for key in &keys {
            list.push_bind(*key);
        }
        query.push(")");
        let rows: Vec<(String, String, Option<i64>, Option<String>)> =
            query.build_query_as().fetch_all(&mut *tx).await?;
        stored = rows
            .into_iter()
            .map(|(k, h, s, r)| (k, (h, s, r)))
            .collect();
    }

    // Decide each request in arrival order, as one at a time would.
    let now = now_ms();
    let mut new_orders: Vec<(Order, Option<Claim>)> = Vec::new();
    let mut in_batch: HashMap<String, (String, usize)> = HashMap::new();
    let decisions: Vec<Decision> = batch
        .iter()
        .map(|request| {
            if let Some(claim) = &request.claim {
                let key = claim.key.as_str();
                if let Some((hash, status, response)) = stored.get(key) {
                    return match (hash == &claim.request_hash, status, response) {
                        (false, _, _) => Decision::Conflict,
                        (true, Some(status), Some(body)) => Decision::Stored(
                            StatusCode::from_u16(*status as u16).unwrap_or(StatusCode::OK),
                            body.clone(),
                        ),
                        (true, _, _) => Decision::InProgress,
                    };
                }
                if let Some((hash, index)) = in_batch.get(key) {
                    return if hash == &claim.request_hash {
                        Decision::SameAs(*index)
                    } else {
                        Decision::Conflict
                    };
                }
                in_batch.insert(
                    key.to_owned(),
                    (claim.request_hash.clone(), new_orders.len()),
                );
            }
            let order = store::new_order(
                &OrderId::generate(),
                &request.order,
                OrderStatus::Accepted,
                now,
            );
            new_orders.push((order, request.claim.clone()));
            Decision::New(new_orders.len() - 1)
        })
        .collect();

    let mut head = None;
    let bodies: Vec<String> = new_orders
        .iter()
        .map(|(order, _)| serde_json::to_string(order).expect("an order always serializes"))
        .collect();
    if !new_orders.is_empty() {
        let mut orders = QueryBuilder::<Sqlite>::new(
            "INSERT INTO orders (id, account_id, status, total_cents, points, items, acknowledged_at_ms, settled_at_ms) ",
        );
        orders.push_values(&new_orders, |mut row, (order, _)| {
            row.push_bind(&order.id)
                .push_bind(&order.account_id)
                .push_bind(order.status.as_str())
                .push_bind(order.total_cents)
                .push_bind(order.points)
                .push_bind(
                    serde_json::to_string(&order.items).expect("line items always serialize"),
                )
                .push_bind(order.acknowledged_at_ms)
                .push_bind(order.settled_at_ms);
        });
        orders.build().execute(&mut *tx).await?;

        let events: Vec<EventBody> = new_orders
            .iter()
            .map(|(order, _)| EventBody::OrderPlaced {
                order_id: order.id.clone(),
                account_id: order.account_id.clone(),
                total_cents: order.total_cents,
                points: order.points,
                acknowledged_at_ms: order.acknowledged_at_ms,
            })
            .collect();
        head = Outbox::append_all(&mut tx, &events, now).await?;

        let keyed: Vec<(&Order, &Claim, &String)> = new_orders
            .iter()
            .zip(&bodies)
            .filter_map(|((order, claim), body)| claim.as_ref().map(|c| (order, c, body)))
            .collect();
        if !keyed.is_empty() {
            let mut keys = QueryBuilder::<Sqlite>::new(
                "INSERT INTO idempotency_keys (key, request_hash, order_id, status_code, response, created_at_ms) ",
            );
            keys.push_values(&keyed, |mut row, (order, claim, body)| {
                row.push_bind(claim.key.as_str())
                    .push_bind(&claim.request_hash)
                    .push_bind(&order.id)
                    .push_bind(i64::from(StatusCode::ACCEPTED.as_u16()))
                    .push_bind(body.as_str())
                    .push_bind(now);
            });
            keys.build().execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;

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
            Decision::Conflict => Err(ApiError::Conflict(
                "Idempotency-Key was already used with a different request".into(),
            )),
            Decision::InProgress => Err(ApiError::Conflict(
                "a request with this Idempotency-Key is in progress".into(),
            )),
        })
        .collect();
    Ok((answers, head))
}
