//! Strong mode: the Order service coordinates a two-phase commit per order.
//!
//! The decision log is the `decisions` table, one row per transaction that every attempt (and
//! a participant that asks) races for: `commit` is logged in the same local transaction as
//! the confirmed order, so "the order exists" and "the decision is commit" are one fact; an
//! abort is logged before any participant is told to abort, so that no other attempt can
//! commit what was aborted. Whoever finds a row follows it.
//!
//! The answer contract (also in the README): every order has an `Idempotency-Key` (the
//! client's, or one made up and returned in the `Idempotency-Key` header), bound to one
//! transaction at a time. `201` means every service has applied the order. A `4xx` is a final
//! refusal, and the same request with the same key gets it again. A `503` says what is known
//! in its `outcome` field: `not_placed` (nothing was placed; a retry tries again),
//! `confirmed_pending` (the order is confirmed and will be applied everywhere; a retry gets
//! the `201` once it is), or `unknown` (the answer was lost; a retry finds out). A retry with
//! the key always learns the final answer: it waits for an attempt still running here, or
//! drives the same transaction to its end (after a crash, too), and never meets the funds its
//! own earlier attempt holds: it is the same transaction, or that one was aborted everywhere
//! first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use contracts::api::{Order, OrderStatus};
use contracts::ids::OrderId;
use contracts::internal::{Outcome, OutcomeBody, PrepareRequest};
use contracts::now_ms;
use contracts::order::NewOrder;
use runtime::idempotency::Claim;
use runtime::{ApiError, ApiJson, ApiPath, crash_point};
use storage::DbError;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use twophase::coordinator::{self, Votes};

use crate::{Orders, Reply, idempotency as keys, store};

/// Tries of the commit phase while the user waits. A participant that misses all three is
/// left to recovery: the decision is logged and cannot change.
const COMMIT_ATTEMPTS_MAX: u32 = 3;

/// Attempts at one key within one request: the first transaction, and at most one fresh one
/// after finding the first aborted. More would be another attempt racing this one.
const ROUNDS_MAX: usize = 2;

/// The attempts running in this process, by key: a retry that arrives while its key's
/// attempt is still running waits for that attempt's answer instead of starting another.
#[derive(Clone, Default)]
pub(crate) struct Running(Arc<Mutex<HashMap<String, watch::Receiver<Option<Reply>>>>>);

pub(crate) async fn place(orders: &Orders, order: NewOrder, claim: Claim) -> Reply {
    let key = claim.key.as_str().to_owned();
    let (answer, first) = {
        let mut running = orders.running.0.lock().expect("never poisoned");
        match running.get(&key) {
            Some(answer) => (answer.clone(), false),
            None => {
                let (tell, answer) = watch::channel(None);
                running.insert(key.clone(), answer.clone());
                let orders = orders.clone();
                // The two-phase commit runs in its own task: a client that hangs up must not
                // cut it short between two steps.
                tokio::spawn(async move {
                    let reply = drive(&orders, &order, &claim).await;
                    orders
                        .running
                        .0
                        .lock()
                        .expect("never poisoned")
                        .remove(&key);
                    let _ = tell.send(Some(reply));
                });
                (answer, true)
            }
        }
    };
    let mut answer = answer;
    match answer.wait_for(Option::is_some).await {
        Ok(reply) => reply.clone().expect("waited for an answer"),
        Err(_) if first => Reply::error(&ApiError::Internal(anyhow::anyhow!(
            "order placement ended without an answer"
        ))),
        Err(_) => Reply::error(&ApiError::Conflict(
            "a request with this Idempotency-Key ended without an answer; retry".into(),
        )),
    }
}

/// Everything one request does for its key: claim it, then drive its transaction to a final
/// answer (or say honestly why there is none yet).
async fn drive(orders: &Orders, order: &NewOrder, claim: &Claim) -> Reply {
    let fresh = OrderId::generate().to_string();
    let stored = {
        let (claim, fresh) = (claim.clone(), fresh.clone());
        orders
            .db
            .write(move |tx| keys::claim(tx, &claim, &fresh))
            .await
    };
    let stored = match stored {
        Ok(stored) => stored,
        Err(error) => return unsettled(&error, None),
    };
    if stored.request_hash != claim.request_hash {
        return Reply::error(&runtime::idempotency::conflict());
    }
    if let Some((status, body)) = stored.answer {
        return Reply::new(status, body);
    }
    let mut tx_id = stored.order_id;
    for _ in 0..ROUNDS_MAX {
        let logged = {
            let id = tx_id.clone();
            orders.db.read(move |tx| store::decision(tx, &id)).await
        };
        match logged {
            Err(error) => return unsettled(&error, Some(&tx_id)),
            Ok(Some(Outcome::Commit)) => return finish_commit(orders, &tx_id, None).await,
            Ok(Some(Outcome::Abort)) => match start_afresh(orders, claim, &tx_id).await {
                Ok(next) => tx_id = next,
                Err(reply) => return reply,
            },
            Ok(None) => return attempt(orders, order, claim, &tx_id).await,
        }
    }
    Reply::error(&ApiError::Conflict(
        "another attempt with this Idempotency-Key is running; retry".into(),
    ))
}

/// An earlier attempt with this key was aborted without a final answer (it failed, or a
/// crash cut it short): make sure every participant has let go of it, then bind the key to a
/// fresh transaction.
async fn start_afresh(orders: &Orders, claim: &Claim, aborted: &str) -> Result<String, Reply> {
    if let Err(error) = coordinator::abort_all_confirmed(&orders.participants[..], aborted).await {
        return Err(not_placed(
            &format!("{error}; the earlier attempt could not be released yet"),
            aborted,
        ));
    }
    let next = OrderId::generate().to_string();
    let (key, from, to) = (
        claim.key.as_str().to_owned(),
        aborted.to_owned(),
        next.clone(),
    );
    match orders
        .db
        .write(move |tx| keys::rebind(tx, &key, &from, &to))
        .await
    {
        Ok(true) => Ok(next),
        // Another attempt moved the key first: follow it on the next round.
        Ok(false) => Err(Reply::error(&ApiError::Conflict(
            "another attempt with this Idempotency-Key is running; retry".into(),
        ))),
        Err(error) => Err(unsettled(&error, Some(aborted))),
    }
}

/// One two-phase commit of transaction `tx_id`.
async fn attempt(orders: &Orders, order: &NewOrder, claim: &Claim, tx_id: &str) -> Reply {
    let participants = &orders.participants[..];
    let request = PrepareRequest {
        tx_id: tx_id.to_owned(),
        account_id: order.account_id().to_string(),
        total_cents: order.total().get(),
        points: order.total().points(),
        started_at_ms: now_ms(),
    };
    crash_point("order::before-prepare");
    let votes = coordinator::prepare_all(participants, &request).await;
    crash_point("order::after-prepare");
    match votes {
        Votes::AllYes => {
            let confirmed = store::new_order(
                &OrderId::parse(tx_id).unwrap_or_else(|_| OrderId::generate()),
                order,
                OrderStatus::Confirmed,
                now_ms(),
            );
            let logged = {
                let confirmed = confirmed.clone();
                orders
                    .db
                    .write(move |tx| {
                        if runtime::failing_point("order::decision-write") {
                            return Err(DbError::new(
                                storage::ErrorKind::Transient,
                                "the decision log refused the write (failure injected)",
                            ));
                        }
                        let outcome = store::decide(tx, &confirmed.id, Outcome::Commit, now_ms())?;
                        if outcome == Outcome::Commit && store::find(tx, &confirmed.id)?.is_none() {
                            store::insert_all(tx, &[&confirmed])?;
                        }
                        Ok::<_, DbError>(outcome)
                    })
                    .await
            };
            crash_point("order::after-decision");
            match logged {
                Ok(Outcome::Commit) => finish_commit(orders, tx_id, Some(confirmed)).await,
                // A participant tired of waiting asked first and was told abort.
                Ok(Outcome::Abort) => {
                    coordinator::abort_all(participants, tx_id).await;
                    not_placed("the two-phase commit timed out at a participant", tx_id)
                }
                // The commit is known not to be logged: log abort before any participant is
                // told to abort (if that fails too, those in doubt will ask, and the first to
                // ask logs it).
                Err(error) if error.kind() != storage::ErrorKind::Unknown => {
                    let logged = log_abort(orders, tx_id).await;
                    abort_or_follow(orders, tx_id, logged, unsettled(&error, Some(tx_id))).await
                }
                // The commit may be logged: nothing may be aborted; a retry finds out.
                Err(error) => unsettled(&error, Some(tx_id)),
            }
        }
        Votes::Refused(reason) => {
            let refusal = ApiError::Refused(reason);
            let answer = Reply::error(&refusal);
            let logged = {
                let (id, key, answer) = (
                    tx_id.to_owned(),
                    claim.key.as_str().to_owned(),
                    answer.clone(),
                );
                orders
                    .db
                    .write(move |tx| {
                        let outcome = store::decide(tx, &id, Outcome::Abort, now_ms())?;
                        if outcome == Outcome::Abort {
                            // A refusal stands: the same request gets the same answer.
                            keys::answer(tx, &key, answer.status, &answer.body)?;
                        }
                        Ok::<_, DbError>(outcome)
                    })
                    .await
            };
            abort_or_follow(orders, tx_id, logged, answer).await
        }
        Votes::Failed(error) => {
            let logged = log_abort(orders, tx_id).await;
            let answer = not_placed(&error.to_string(), tx_id);
            abort_or_follow(orders, tx_id, logged, answer).await
        }
    }
}

/// Logs `abort` for `tx_id`, unless another attempt logged a decision first (returned).
async fn log_abort(orders: &Orders, tx_id: &str) -> Result<Outcome, DbError> {
    let id = tx_id.to_owned();
    orders
        .db
        .write(move |tx| store::decide(tx, &id, Outcome::Abort, now_ms()))
        .await
}

/// After logging an abort: tell the participants and answer; or, if another attempt logged
/// commit first, follow it.
async fn abort_or_follow(
    orders: &Orders,
    tx_id: &str,
    logged: Result<Outcome, DbError>,
    answer: Reply,
) -> Reply {
    match logged {
        Ok(Outcome::Abort) => {
            coordinator::abort_all(&orders.participants[..], tx_id).await;
            answer
        }
        Ok(Outcome::Commit) => finish_commit(orders, tx_id, None).await,
        // Nothing logged (or unknown): participants in doubt will ask, and the first to ask
        // logs abort (presumed abort).
        Err(error) => unsettled(&error, Some(tx_id)),
    }
}

/// The commit phase of a logged commit: every participant must apply it before the `201`.
async fn finish_commit(orders: &Orders, tx_id: &str, confirmed: Option<Order>) -> Reply {
    let mut attempt = 1;
    let committed = loop {
        let error = match coordinator::commit_all(&orders.participants[..], tx_id).await {
            Ok(committed) => break committed,
            Err(error) => error,
        };
        if attempt >= COMMIT_ATTEMPTS_MAX {
            let mut fields = serde_json::Map::new();
            fields.insert("order_id".into(), tx_id.into());
            fields.insert("outcome".into(), "confirmed_pending".into());
            return Reply::error(&ApiError::Detailed(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "order {tx_id} is confirmed, but {error}; it will be applied there \
                     automatically: retry with the same Idempotency-Key for the final answer"
                ),
                fields,
            ));
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
    };
    crash_point("order::after-commit");
    let confirmed = match confirmed {
        Some(order) => order,
        None => {
            let id = tx_id.to_owned();
            match orders.db.read(move |tx| store::find(tx, &id)).await {
                Ok(Some(order)) => order,
                Ok(None) => {
                    return Reply::error(&ApiError::Internal(anyhow::anyhow!(
                        "order {tx_id} is committed but not stored"
                    )));
                }
                Err(error) => return unsettled(&error, Some(tx_id)),
            }
        }
    };
    let body = serde_json::to_string(&confirmed).expect("an order always serializes");
    mark_completed(orders, tx_id, &body);
    Reply {
        read_token: committed.into_iter().find_map(|c| c.read_token),
        ..Reply::new(StatusCode::CREATED, body)
    }
}

/// `503` with `outcome: not_placed`: nothing was placed; a retry with the key tries again.
fn not_placed(cause: &str, tx_id: &str) -> Reply {
    let mut fields = serde_json::Map::new();
    fields.insert("order_id".into(), tx_id.into());
    fields.insert("outcome".into(), "not_placed".into());
    Reply::error(&ApiError::Detailed(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("{cause}; the order was not placed: retry with the same Idempotency-Key"),
        fields,
    ))
}

/// `503` for a database that failed under us: `not_placed` if it answered (nothing was
/// written), `unknown` if its answer was lost.
fn unsettled(error: &DbError, tx_id: Option<&str>) -> Reply {
    tracing::warn!(%error, tx_id, "order placement interrupted");
    let mut fields = serde_json::Map::new();
    if let Some(tx_id) = tx_id {
        fields.insert("order_id".into(), tx_id.into());
    }
    let (outcome, message) = match error.kind() {
        storage::ErrorKind::Unknown => (
            "unknown",
            "the order's outcome is unknown (its database's answer was lost): retry with the same Idempotency-Key to learn it",
        ),
        _ => (
            "not_placed",
            "the order service's database is unavailable; the order was not placed: retry with the same Idempotency-Key",
        ),
    };
    fields.insert("outcome".into(), outcome.into());
    Reply::error(&ApiError::Detailed(
        StatusCode::SERVICE_UNAVAILABLE,
        message.into(),
        fields,
    ))
}

/// Notes that every participant has applied the transaction, with its key's final answer.
/// Written in batches by [`write_completions`], off the order's path: a mark that is lost
/// only means recovery sends the (idempotent) commit again, and a retry drives it again.
fn mark_completed(orders: &Orders, tx_id: &str, body: &str) {
    if let Some(marks) = &orders.completions
        && marks.try_send((tx_id.to_owned(), body.to_owned())).is_err()
    {
        tracing::debug!(
            tx_id,
            "completion mark dropped; recovery will complete it again"
        );
    }
}

/// Marks held for writing at most. A full queue drops marks, which costs only a repeated
/// commit during recovery.
pub(crate) const COMPLETIONS_QUEUE_MAX: usize = 16_384;

/// Marks written per statement batch at most.
const COMPLETIONS_BATCH_MAX: usize = 512;

/// Writes completion marks and the keys' `201`s, every mark waiting in one write, until the
/// sender is dropped.
pub(crate) async fn write_completions(
    db: storage::Db,
    mut marks: tokio::sync::mpsc::Receiver<(String, String)>,
) -> anyhow::Result<()> {
    let mut batch = Vec::with_capacity(COMPLETIONS_BATCH_MAX);
    while marks.recv_many(&mut batch, COMPLETIONS_BATCH_MAX).await > 0 {
        let completed = std::mem::take(&mut batch);
        let count = completed.len();
        let written = db
            .write(move |tx| {
                let tx_ids: Vec<String> = completed.iter().map(|(id, _)| id.clone()).collect();
                store::mark_completed(tx, &tx_ids)?;
                keys::answer_confirmed(tx, &completed)
            })
            .await;
        if let Err(error) = written {
            tracing::warn!(%error, marks = count, "cannot mark decisions completed");
        }
    }
    Ok(())
}

/// Internal: `GET /internal/2pc/{tx_id}/outcome`, for participants in doubt.
pub(crate) fn router(orders: Orders) -> Router {
    Router::new()
        .route("/internal/2pc/{tx_id}/outcome", get(outcome))
        .with_state(orders)
}

/// Answers from the log. With no decision logged, logs `abort` first: from then on no attempt
/// can log `commit` for this transaction (the primary key), so the participant that asked and
/// the coordinator can never disagree.
async fn outcome(
    State(orders): State<Orders>,
    ApiPath(tx_id): ApiPath<String>,
) -> Result<ApiJson<OutcomeBody>, ApiError> {
    let outcome = orders
        .db
        .write(move |tx| store::decide(tx, &tx_id, Outcome::Abort, now_ms()))
        .await?;
    Ok(ApiJson(OutcomeBody { outcome }))
}

/// Finishes what the coordinator owes: every `commit` logged but not applied everywhere (a
/// crash after the decision, or a participant that was down) is sent again until every
/// participant has it. Runs at start-up and then periodically; with several instances of the
/// service, only the holder of the recovery lease does it.
pub(crate) async fn complete_decisions(
    orders: Orders,
    lease: transport::lease::Lease,
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
        match lease.try_hold(&orders.db).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(error) => {
                tracing::warn!(%error, "cannot take the recovery lease");
                continue;
            }
        }
        // At start-up everything incomplete is owed; later, only what the request path has
        // had time to finish and did not.
        let before = if first {
            i64::MAX
        } else {
            now_ms() - in_doubt_after.as_millis() as i64
        };
        first = false;
        let owed = match orders.db.read(move |tx| store::owed(tx, before)).await {
            Ok(owed) => owed,
            Err(error) => {
                tracing::warn!(%error, "cannot read the decision log");
                continue;
            }
        };
        for tx_id in owed {
            match coordinator::commit_all(&orders.participants[..], &tx_id).await {
                Ok(_) => {
                    let id = tx_id.clone();
                    match orders.db.read(move |tx| store::find(tx, &id)).await {
                        Ok(Some(order)) => {
                            tracing::info!(tx_id, "completed a logged commit");
                            let body = serde_json::to_string(&order).expect("orders serialize");
                            mark_completed(&orders, &tx_id, &body);
                        }
                        Ok(None) => tracing::error!(tx_id, "a logged commit has no order"),
                        Err(error) => {
                            tracing::warn!(tx_id, %error, "cannot read a committed order")
                        }
                    }
                }
                Err(error) => tracing::warn!(tx_id, %error, "commit still not applied everywhere"),
            }
        }
    }
}
