//! Strong mode: the Order service coordinates a two-phase commit per order.
//!
//! The decision log is the `decisions` table. `commit` is logged in the same local
//! transaction as the confirmed order (and its idempotency answer), so "the order exists" and
//! "the decision is commit" are one fact. No decision means abort (presumed abort).

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use contracts::api::OrderStatus;
use contracts::ids::OrderId;
use contracts::internal::{Outcome, OutcomeBody, PrepareRequest};
use contracts::now_ms;
use contracts::order::NewOrder;
use runtime::{ApiError, ApiJson};
use tokio_util::sync::CancellationToken;
use twophase::coordinator::{self, Votes};

use crate::Orders;
use crate::idempotency::{self, Claim, Earlier};
use crate::store::{self, COLUMNS, order_from};

/// Tries of the commit phase while the user waits. A participant that misses all three is
/// left to recovery: the decision is already logged and cannot change.
const COMMIT_ATTEMPTS_MAX: u32 = 3;

pub(crate) async fn place(
    orders: &Orders,
    order: NewOrder,
    claim: Option<Claim>,
) -> Result<Response, ApiError> {
    // The two-phase commit runs in its own task: a client that hangs up must not cut it short
    // between two steps and leave its idempotency key "in progress".
    let orders = orders.clone();
    tokio::spawn(async move { place_to_the_end(&orders, order, claim).await })
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("order placement panicked: {e}")))?
}

async fn place_to_the_end(
    orders: &Orders,
    order: NewOrder,
    claim: Option<Claim>,
) -> Result<Response, ApiError> {
    let id = OrderId::generate();
    if let Some(claim) = claim.clone() {
        let order_id = id.to_string();
        let earlier = orders
            .db
            .group
            .write(move |tx| {
                Box::pin(async move {
                    let earlier = idempotency::find(tx, &claim).await?;
                    if earlier.is_none() {
                        idempotency::insert(tx, &claim, &order_id, None).await?;
                    }
                    Ok::<_, ApiError>(earlier)
                })
            })
            .await?;
        match earlier {
            Some(Earlier::Answered(response)) => return Ok(response),
            Some(Earlier::InProgress) => {
                return Err(ApiError::Conflict(
                    "a request with this Idempotency-Key is in progress".into(),
                ));
            }
            None => {}
        }
    }
    let result = coordinate(orders, &id, &order, claim.as_ref()).await;
    // For a failed request: the refusal to store, if it was one (borrowed here, not across
    // the write below, since an answer is not `Sync`).
    let failure = result.as_ref().err().map(|error| {
        matches!(error, ApiError::Refused(_)).then(|| {
            let body = serde_json::json!({ "error": error.to_string() }).to_string();
            (error.status(), body)
        })
    });
    if let (Some(claim), Some(refusal)) = (claim, failure) {
        let tx_id = id.to_string();
        orders
            .db
            .group
            .write(move |tx| {
                Box::pin(async move {
                    if decided_commit(tx, &tx_id).await? {
                        // The key's answer, 201 with the order, was stored with the decision:
                        // a retry gets it, whatever went wrong after.
                    } else if let Some((status, body)) = refusal {
                        // A refusal stands: the same request gets the same answer.
                        idempotency::answer(tx, &claim, status, &body).await?;
                    } else {
                        // Nothing was placed and the cause may go away: let a retry try again.
                        idempotency::forget(tx, &claim).await?;
                    }
                    Ok::<_, sqlx::Error>(())
                })
            })
            .await?;
    }
    result
}

/// Whether `commit` is logged for the transaction.
async fn decided_commit(
    conn: &mut sqlx::SqliteConnection,
    tx_id: &str,
) -> Result<bool, sqlx::Error> {
    let outcome: Option<String> =
        sqlx::query_scalar("SELECT outcome FROM decisions WHERE tx_id = ?")
            .bind(tx_id)
            .fetch_optional(conn)
            .await?;
    Ok(outcome.as_deref() == Some("commit"))
}

async fn coordinate(
    orders: &Orders,
    id: &OrderId,
    order: &NewOrder,
    claim: Option<&Claim>,
) -> Result<Response, ApiError> {
    let participants = &orders.participants[..];
    let request = PrepareRequest {
        tx_id: id.to_string(),
        account_id: order.account_id().to_string(),
        total_cents: order.total().get(),
        points: order.total().points(),
        started_at_ms: now_ms(),
    };
    match coordinator::prepare_all(participants, &request).await {
        Votes::AllYes => {}
        Votes::Refused(reason) => {
            coordinator::abort_all(participants, id.as_str()).await;
            return Err(ApiError::Refused(reason));
        }
        Votes::Failed(error) => {
            coordinator::abort_all(participants, id.as_str()).await;
            return Err(ApiError::Unavailable(format!(
                "{error}; the order was not placed"
            )));
        }
    }
    fail::fail_point!("order::before-decision", |_| Err(crash_point(
        "before-decision"
    )));

    let now = now_ms();
    let confirmed = store::new_order(id, order, OrderStatus::Confirmed, now);
    let body = serde_json::to_string(&confirmed).expect("an order always serializes");
    let won = {
        let (body, claim) = (body.clone(), claim.cloned());
        orders
            .db
            .group
            .write(move |tx| Box::pin(log_commit(tx, confirmed, claim, body)))
            .await?
    };
    if !won {
        // A participant tired of waiting asked for the outcome first and was told abort.
        coordinator::abort_all(participants, id.as_str()).await;
        return Err(ApiError::Unavailable(
            "the two-phase commit timed out at a participant; the order was not placed".into(),
        ));
    }
    fail::fail_point!("order::after-decision", |_| Err(crash_point(
        "after-decision"
    )));

    let mut attempt = 1;
    while let Err(error) = coordinator::commit_all(participants, id.as_str()).await {
        if attempt >= COMMIT_ATTEMPTS_MAX {
            return Err(ApiError::Unavailable(format!(
                "order {id} is confirmed, but {error}; it will be applied there automatically"
            )));
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
    }
    mark_completed(orders, id.as_str());
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// The decision point: logs `commit` with the confirmed order and its idempotency answer, in
/// one transaction. Returns false, writing nothing, if the log already says `abort` (a
/// participant asked first).
async fn log_commit(
    tx: &mut sqlx::SqliteConnection,
    confirmed: contracts::api::Order,
    claim: Option<Claim>,
    body: String,
) -> Result<bool, ApiError> {
    let won = sqlx::query(
        "INSERT INTO decisions (tx_id, outcome, decided_at_ms) VALUES (?, 'commit', ?)
         ON CONFLICT (tx_id) DO NOTHING",
    )
    .bind(&confirmed.id)
    .bind(confirmed.acknowledged_at_ms)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if won {
        store::insert(tx, &confirmed).await?;
        if let Some(claim) = &claim {
            idempotency::answer(tx, claim, StatusCode::CREATED, &body).await?;
        }
    }
    Ok(won)
}

/// What a test's crash point returns: the request dies there, as if the process had.
#[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
fn crash_point(name: &str) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("crash point {name}"))
}

/// Notes that every participant has applied the transaction. The marks are written in batches
/// by [`write_completions`], off the order's path; a mark that is lost only means recovery
/// sends the (idempotent) commit again.
fn mark_completed(orders: &Orders, tx_id: &str) {
    if let Some(marks) = &orders.completions
        && marks.try_send(tx_id.to_owned()).is_err()
    {
        tracing::debug!(
            tx_id,
            "completion mark dropped; recovery will complete it again"
        );
    }
}

/// Marks held for writing at most. A mark is a short id; a full queue drops marks, which
/// costs only a repeated commit during recovery.
pub(crate) const COMPLETIONS_QUEUE_MAX: usize = 16_384;

/// Writes completion marks, every mark waiting in one statement, until the sender is dropped.
pub(crate) async fn write_completions(
    db: storage::Db,
    mut marks: tokio::sync::mpsc::Receiver<String>,
) -> anyhow::Result<()> {
    let mut batch = Vec::with_capacity(512);
    while marks.recv_many(&mut batch, 512).await > 0 {
        let mut update = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "UPDATE decisions SET completed = 1 WHERE tx_id IN (",
        );
        let mut ids = update.separated(", ");
        for tx_id in &batch {
            ids.push_bind(tx_id);
        }
        update.push(")");
        if let Err(error) = update.build().execute(&db.write).await {
            tracing::warn!(%error, marks = batch.len(), "cannot mark decisions completed");
        }
        batch.clear();
    }
    Ok(())
}

/// Internal: `GET /internal/2pc/{tx_id}/outcome`, for participants in doubt.
pub(crate) fn router(orders: Orders) -> Router {
    Router::new()
        .route("/internal/2pc/{tx_id}/outcome", get(outcome))
        .with_state(orders)
}

/// Answers from the log. With no decision logged, logs `abort` first: from then on the
/// coordinator cannot log `commit` for this transaction (the primary key), so the participant
/// that asked and the coordinator can never disagree.
async fn outcome(
    State(orders): State<Orders>,
    Path(tx_id): Path<String>,
) -> Result<ApiJson<OutcomeBody>, ApiError> {
    let mut tx = orders.db.write.begin().await?;
    sqlx::query(
        "INSERT INTO decisions (tx_id, outcome, decided_at_ms, completed) VALUES (?, 'abort', ?, 1)
         ON CONFLICT (tx_id) DO NOTHING",
    )
    .bind(&tx_id)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    let logged: String = sqlx::query_scalar("SELECT outcome FROM decisions WHERE tx_id = ?")
        .bind(&tx_id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    let outcome = Outcome::parse(&logged)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("bad outcome {logged:?} in the log")))?;
    Ok(ApiJson(OutcomeBody { outcome }))
}

/// At start-up, before serving: an idempotency key left without an answer by a crash gets the
/// answer of its order if the order committed, and is forgotten if it did not (so the
/// client's retry places it).
pub(crate) async fn recover_keys(orders: &Orders) -> anyhow::Result<()> {
    let pending: Vec<(String, String)> =
        sqlx::query_as("SELECT key, order_id FROM idempotency_keys WHERE response IS NULL")
            .fetch_all(&orders.db.write)
            .await?;
    for (key, order_id) in pending {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM orders WHERE id = ?"))
            .bind(&order_id)
            .fetch_optional(&orders.db.write)
            .await?;
        match row {
            Some(row) => {
                let body = serde_json::to_string(&order_from(&row))?;
                sqlx::query(
                    "UPDATE idempotency_keys SET status_code = 201, response = ? WHERE key = ?",
                )
                .bind(body)
                .bind(&key)
                .execute(&orders.db.write)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM idempotency_keys WHERE key = ?")
                    .bind(&key)
                    .execute(&orders.db.write)
                    .await?;
            }
        }
    }
    Ok(())
}

/// Finishes what the coordinator owes: every `commit` logged but not applied everywhere (a
/// crash after the decision, or a participant that was down) is sent again until every
/// participant has it. Runs at start-up and then periodically.
pub(crate) async fn complete_decisions(
    orders: Orders,
    in_doubt_after: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let period = (in_doubt_after / 2).max(Duration::from_millis(50));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut first = true;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = ticks.tick() => {}
        }
        // At start-up everything incomplete is owed; later, only what the request path has
        // had time to finish and did not.
        let before = if first {
            i64::MAX
        } else {
            now_ms() - in_doubt_after.as_millis() as i64
        };
        first = false;
        let owed: Vec<String> = match sqlx::query_scalar(
            "SELECT tx_id FROM decisions WHERE completed = 0 AND outcome = 'commit' AND decided_at_ms < ?
             ORDER BY decided_at_ms LIMIT 100",
        )
        .bind(before)
        .fetch_all(&orders.db.read)
        .await
        {
            Ok(owed) => owed,
            Err(error) => {
                tracing::warn!(%error, "cannot read the decision log");
                continue;
            }
        };
        for tx_id in owed {
            match coordinator::commit_all(&orders.participants[..], &tx_id).await {
                Ok(()) => {
                    tracing::info!(tx_id, "completed a logged commit");
                    mark_completed(&orders, &tx_id);
                }
                Err(error) => tracing::warn!(tx_id, %error, "commit still not applied everywhere"),
            }
        }
    }
}
