//! The one error type handlers return, and how it becomes an answer.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contracts::ValidationError;
use contracts::api::Refusal;

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
    /// A service this request needs did not answer in time, or its database is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// The server is handling as many requests as it may; try again in a moment.
    #[error("the service is busy; try again")]
    Overloaded,
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    /// An answer with more to say than a message: the status, the message, and fields that
    /// go beside `error` in the body (e.g. an order's id and whether its outcome is known).
    #[error("{1}")]
    Detailed(
        StatusCode,
        String,
        serde_json::Map<String, serde_json::Value>,
    ),
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
            ApiError::Unavailable(_) | ApiError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Detailed(status, _, _) => *status,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        ApiError::NotFound(format!("{what} {id} not found"))
    }

    /// The JSON body users see: `{"error": …}` and, for a detailed error, its other fields.
    pub fn body(&self) -> serde_json::Value {
        match self {
            ApiError::Detailed(_, error, fields) => {
                let mut fields = fields.clone();
                fields.insert("error".into(), error.as_str().into());
                serde_json::Value::Object(fields)
            }
            other => serde_json::json!({ "error": other.to_string() }),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(error: ValidationError) -> Self {
        ApiError::Invalid(error.0)
    }
}

/// A database that is busy, full or unreachable is a `503` (try again later); one whose
/// commit's answer was lost is a `503` that says the outcome is unknown; anything else is a
/// bug, a `500`.
impl From<storage::DbError> for ApiError {
    fn from(error: storage::DbError) -> Self {
        match error.kind() {
            storage::ErrorKind::Transient => {
                tracing::warn!(%error, "database unavailable");
                ApiError::Unavailable("the service's database is unavailable; try again".into())
            }
            storage::ErrorKind::Unknown => {
                tracing::warn!(%error, "outcome unknown");
                ApiError::Unavailable(
                    "the service lost the answer of its database; the outcome is unknown".into(),
                )
            }
            storage::ErrorKind::Constraint | storage::ErrorKind::Permanent => {
                ApiError::Internal(error.into())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            // Logged once, here at the edge, with its whole chain; the user sees no internals.
            tracing::error!(error = format!("{cause:#}"), "request failed");
        }
        let status = self.status();
        let mut response = (status, Json(self.body())).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Every 503 here passes by itself; say when to look again.
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}
