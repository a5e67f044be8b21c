//! Order's idempotency keys: every statement on them, for both engines. How a key is read
//! and a request fingerprinted is shared ([`runtime::idempotency`]).
//!
//! Every order has a key: the client's `Idempotency-Key`, or one made up for a request that
//! came without, returned in the answer's `Idempotency-Key` header. A key is bound to the
//! first request's fingerprint and to an order id; it gets the first *final* answer. In strong
//! mode a key without an answer means its order's two-phase commit has not finished: a retry
//! drives that same transaction to its end (see [`crate::strong`]).

use std::collections::HashMap;

use axum::http::StatusCode;
use contracts::now_ms;
use runtime::idempotency::Claim;
use storage::{DbError, Param, Tx, sql};

/// What a key holds: the request it is bound to, its order, and its answer once final.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub request_hash: String,
    pub order_id: String,
    pub answer: Option<(StatusCode, String)>,
}

type KeyRow = (String, String, String, Option<i64>, Option<String>);

fn stored((_, request_hash, order_id, status, response): KeyRow) -> Stored {
    Stored {
        request_hash,
        order_id,
        answer: match (status, response) {
            (Some(status), Some(body)) => Some((
                StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK),
                body,
            )),
            _ => None,
        },
    }
}

/// The keys among `keys` that exist, with what they hold: one lookup for a whole batch.
pub(crate) fn find_all(tx: &mut Tx<'_>, keys: &[&str]) -> Result<HashMap<String, Stored>, DbError> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let params: Vec<&dyn Param> = keys.iter().map(|k| k as &dyn Param).collect();
    let rows: Vec<KeyRow> = tx.query(
        &format!(
            "SELECT key, request_hash, order_id, status_code, response FROM idempotency_keys
             WHERE key IN ({})",
            sql::list(keys.len(), 1)
        ),
        &params,
    )?;
    Ok(rows
        .into_iter()
        .map(|row| (row.0.clone(), stored(row)))
        .collect())
}

/// A new key with its answer, for many orders at once: `(claim, order_id, status, body)`.
pub(crate) fn insert_all(
    tx: &mut Tx<'_>,
    keys: &[(&Claim, &str, StatusCode, &str)],
) -> Result<(), DbError> {
    if keys.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let statuses: Vec<i64> = keys.iter().map(|k| i64::from(k.2.as_u16())).collect();
    let names: Vec<&str> = keys.iter().map(|k| k.0.key.as_str()).collect();
    let mut params: Vec<&dyn Param> = Vec::with_capacity(keys.len() * 6);
    for (i, (claim, order_id, _, body)) in keys.iter().enumerate() {
        params.extend([
            &names[i] as &dyn Param,
            &claim.request_hash,
            order_id,
            &statuses[i],
            body,
            &now,
        ]);
    }
    tx.execute(
        &format!(
            "INSERT INTO idempotency_keys (key, request_hash, order_id, status_code, response, created_at_ms)
             VALUES {}",
            sql::values(keys.len(), 6)
        ),
        &params,
    )?;
    Ok(())
}

/// Claims a key for `order_id` if it is new; returns what the key holds (possibly another
/// order, claimed by an earlier attempt). Inserting first locks the key until this write
/// commits, so two attempts at once see one another.
pub(crate) fn claim(tx: &mut Tx<'_>, claim: &Claim, order_id: &str) -> Result<Stored, DbError> {
    tx.execute(
        "INSERT INTO idempotency_keys (key, request_hash, order_id, created_at_ms) VALUES ($1, $2, $3, $4)
         ON CONFLICT (key) DO NOTHING",
        &[&claim.key.as_str(), &claim.request_hash, &order_id, &now_ms()],
    )?;
    let row: KeyRow = tx.query_one(
        "SELECT key, request_hash, order_id, status_code, response FROM idempotency_keys
         WHERE key = $1",
        &[&claim.key.as_str()],
    )?;
    Ok(stored(row))
}

/// Binds a key whose order was aborted to a fresh order, for a new attempt; `false` if another
/// attempt moved it first.
pub(crate) fn rebind(
    tx: &mut Tx<'_>,
    key: &str,
    from_order: &str,
    to_order: &str,
) -> Result<bool, DbError> {
    Ok(tx.execute(
        "UPDATE idempotency_keys SET order_id = $3 WHERE key = $1 AND order_id = $2 AND response IS NULL",
        &[&key, &from_order, &to_order],
    )? == 1)
}

/// Records a key's final answer (the first one stands).
pub(crate) fn answer(
    tx: &mut Tx<'_>,
    key: &str,
    status: StatusCode,
    body: &str,
) -> Result<(), DbError> {
    tx.execute(
        "UPDATE idempotency_keys SET status_code = $2, response = $3 WHERE key = $1 AND response IS NULL",
        &[&key, &i64::from(status.as_u16()), &body],
    )?;
    Ok(())
}

/// Records the `201` of every key whose order is one of `order_ids` and has no answer yet.
pub(crate) fn answer_confirmed(
    tx: &mut Tx<'_>,
    confirmed: &[(String, String)],
) -> Result<(), DbError> {
    for (order_id, body) in confirmed {
        tx.execute(
            "UPDATE idempotency_keys SET status_code = 201, response = $2
             WHERE order_id = $1 AND response IS NULL",
            &[order_id, body],
        )?;
    }
    Ok(())
}

/// Keys older than `before_ms` go: a retry after that is a new order.
pub(crate) fn prune(tx: &mut Tx<'_>, before_ms: i64) -> Result<u64, DbError> {
    tx.execute(
        "DELETE FROM idempotency_keys WHERE created_at_ms < $1 AND response IS NOT NULL",
        &[&before_ms],
    )
}
