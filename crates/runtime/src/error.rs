//! The one error type handlers return, and how it becomes an answer.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contracts::ValidationError;
use contracts::api::{ErrorBody, Refusal};

/// An error as the user sees it: a status and a message. Server-side failures keep their
/// cause for the log and show the user only that something failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed request: not JSON, or a header that cannot be read.
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed JSON that breaks a rule: a wrong type, a missing field, a value out of range.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The order was refused by a participant (strong mode).
    #[error("{}", .0.message())]
    Refused(Refusal),
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("request body must be JSON (content-type: application/json)")]
    UnsupportedMediaType,
    #[error("missing or wrong internal secret")]
    Unauthorized,
    /// A service this request needs did not answer in time.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Refused(refusal) => StatusCode::from_u16(refusal.status_code())
                .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        ApiError::NotFound(format!("{what} {id} not found"))
    }
}

impl From<ValidationError> for ApiError {
    fn from(error: ValidationError) -> Self {
        ApiError::Invalid(error.0)
    }
}

impl From<sqlx_error::Error> for ApiError {
    fn from(error: sqlx_error::Error) -> Self {
        ApiError::Internal(error.into())
    }
}

// The store's error type, named through `storage` so services need not depend on sqlx for it.
mod sqlx_error {
    pub use storage::sqlx::Error;
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            // Logged once, here at the edge, with its whole chain; the user sees no internals.
            tracing::error!(error = format!("{cause:#}"), "request failed");
        }
        let body = ErrorBody {
            error: self.to_string(),
        };
        (self.status(), Json(body)).into_response()
    }
}
