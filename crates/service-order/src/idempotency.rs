//! `Idempotency-Key`: a retried `POST /orders` gets the first answer back, and never places a
//! second order. A key is bound to the request it first came with: the same key with another
//! body is a client bug, answered `409`.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use contracts::api::PlaceOrderRequest;
use contracts::ids::IdempotencyKey;
use contracts::now_ms;
use runtime::ApiError;
use sha2::{Digest, Sha256};
use sqlx::SqliteConnection;

pub(crate) const HEADER: &str = "idempotency-key";

/// A key and the fingerprint of the request that carries it.
#[derive(Debug, Clone)]
pub(crate) struct Claim {
    pub key: IdempotencyKey,
    /// SHA-256 of the request as parsed and re-serialized, so that two bodies that differ only
    /// in whitespace or field order are the same request.
    pub request_hash: String,
}

impl Claim {
    /// Reads the header, if any. A key that is present but unreadable is a bad request: going
    /// on without it could place the order twice.
    pub fn from_headers(
        headers: &HeaderMap,
        request: &PlaceOrderRequest,
    ) -> Result<Option<Self>, ApiError> {
        let Some(value) = headers.get(HEADER) else {
            return Ok(None);
        };
        let text = value
            .to_str()
            .map_err(|_| ApiError::BadRequest("Idempotency-Key must be ASCII".into()))?;
        let key = IdempotencyKey::parse(text).map_err(|e| ApiError::BadRequest(e.0))?;
        let canonical = serde_json::to_vec(request).expect("a parsed request always serializes");
        let request_hash = format!("{:x}", Sha256::digest(&canonical));
        Ok(Some(Self { key, request_hash }))
    }
}

/// What an earlier request with the same key left.
pub(crate) enum Earlier {
    /// It was answered: answer the same.
    Answered(Response),
    /// It is still in its two-phase commit.
    InProgress,
}

/// Looks the key up inside the caller's transaction.
pub(crate) async fn find(
    conn: &mut SqliteConnection,
    claim: &Claim,
) -> Result<Option<Earlier>, ApiError> {
    let row: Option<(String, Option<i64>, Option<String>)> = sqlx::query_as(
        "SELECT request_hash, status_code, response FROM idempotency_keys WHERE key = ?",
    )
    .bind(claim.key.as_str())
    .fetch_optional(conn)
    .await?;
    let Some((request_hash, status, response)) = row else {
        return Ok(None);
    };
    if request_hash != claim.request_hash {
        return Err(ApiError::Conflict(
            "Idempotency-Key was already used with a different request".into(),
        ));
    }
    Ok(Some(match (status, response) {
        (Some(status), Some(body)) => Earlier::Answered(stored_response(status, body)),
        _ => Earlier::InProgress,
    }))
}

fn stored_response(status: i64, body: String) -> Response {
    let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// Inserts the key inside the caller's transaction, with its answer if it is already known.
pub(crate) async fn insert(
    conn: &mut SqliteConnection,
    claim: &Claim,
    order_id: &str,
    answer: Option<(StatusCode, &str)>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO idempotency_keys (key, request_hash, order_id, status_code, response, created_at_ms)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(claim.key.as_str())
    .bind(&claim.request_hash)
    .bind(order_id)
    .bind(answer.map(|(status, _)| i64::from(status.as_u16())))
    .bind(answer.map(|(_, body)| body))
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the answer of a key inserted without one.
pub(crate) async fn answer(
    conn: &mut SqliteConnection,
    claim: &Claim,
    status: StatusCode,
    body: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE idempotency_keys SET status_code = ?, response = ? WHERE key = ?")
        .bind(i64::from(status.as_u16()))
        .bind(body)
        .bind(claim.key.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

/// Forgets a key whose request failed in a way a retry may fix (a participant that did not
/// answer), so that the retry is tried for real.
pub(crate) async fn forget(conn: &mut SqliteConnection, claim: &Claim) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM idempotency_keys WHERE key = ?")
        .bind(claim.key.as_str())
        .execute(conn)
        .await?;
    Ok(())
}
