//! `Idempotency-Key`: a retried request gets the first answer back and never does its work
//! twice. A key is bound to the request it first came with: the same key with another body is
//! a client bug, answered `409`. Each service stores its keys beside what they protect; what
//! they share is how a key is read and how a request is fingerprinted.

use axum::http::HeaderMap;
use contracts::ids::IdempotencyKey;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::ApiError;

/// The header, lower-cased as HTTP/1 carries it here.
pub const HEADER: &str = "idempotency-key";

/// A key and the fingerprint of the request that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub key: IdempotencyKey,
    /// SHA-256 of the request as parsed and re-serialized, so that two bodies that differ only
    /// in whitespace or field order are the same request. Hex.
    pub request_hash: String,
}

impl Claim {
    /// Reads the header, if any. A key that is present but unreadable is a bad request: going
    /// on without it could do the work twice.
    pub fn from_headers<R: Serialize>(
        headers: &HeaderMap,
        request: &R,
    ) -> Result<Option<Self>, ApiError> {
        let Some(value) = headers.get(HEADER) else {
            return Ok(None);
        };
        let text = value
            .to_str()
            .map_err(|_| ApiError::BadRequest("Idempotency-Key must be ASCII".into()))?;
        let key = IdempotencyKey::parse(text).map_err(|e| ApiError::BadRequest(e.0))?;
        Ok(Some(Self::new(key, request)))
    }

    pub fn new<R: Serialize>(key: IdempotencyKey, request: &R) -> Self {
        let canonical = serde_json::to_vec(request).expect("a parsed request always serializes");
        Self {
            key,
            request_hash: format!("{:x}", Sha256::digest(&canonical)),
        }
    }
}

/// The answer to a key reused with another request.
pub fn conflict() -> ApiError {
    ApiError::Conflict("Idempotency-Key was already used with a different request".into())
}
