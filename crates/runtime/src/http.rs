//! Serving HTTP: the JSON extractor, the internal-secret guard and the server loop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use contracts::internal::{METRICS_PATH, SECRET_HEADER};
use contracts::limits::BODY_BYTES_MAX;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;

use crate::error::ApiError;
use crate::metrics::Metrics;

/// `axum::Json`, but every way a body can be wrong becomes an [`ApiError`] with a JSON body:
/// 400 not JSON, 422 JSON of the wrong shape, 413 too large, 415 not declared as JSON.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(rejection_to_error(rejection)),
        }
    }
}

fn rejection_to_error(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::Invalid(e.body_text()),
        JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest(e.body_text()),
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::TooLarge(BODY_BYTES_MAX)
        }
        other => ApiError::BadRequest(other.body_text()),
    }
}

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// Rejects internal calls that do not carry the shared secret.
async fn require_secret(secret: Arc<str>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !constant_time_eq(given, secret.as_bytes()) {
        return ApiError::Unauthorized.into_response();
    }
    next.run(req).await
}

/// Compares without returning early, so the time taken does not tell how much of a guessed
/// secret was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Adds the service's processing delay to every request of a router: the knob that makes a
/// service slow, as "complex logic" would.
pub fn with_processing_delay(router: Router, delay: Duration) -> Router {
    if delay.is_zero() {
        return router;
    }
    router.layer(middleware::from_fn(
        move |req: Request, next: Next| async move {
            tokio::time::sleep(delay).await;
            next.run(req).await
        },
    ))
}

/// Assembles a service's router: its public routes, its internal routes behind the secret,
/// `/health`, metrics, the body limit and a JSON 404 for anything else.
pub fn service_router(public: Router, internal: Router, secret: &str, metrics: Metrics) -> Router {
    let secret: Arc<str> = secret.into();
    let internal = internal
        .route(METRICS_PATH, get(move || async move { metrics.render() }))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            require_secret(secret.clone(), req, next)
        }));
    public
        .route(
            "/health",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .merge(internal)
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
}

/// Serves `router` on an already bound listener until `shutdown` completes, then lets the
/// requests in flight finish. Taking a bound listener lets tests and the CLI choose the port,
/// port 0 included, and know it before the server starts.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The task that serves a service's router until the app shuts down.
pub fn serve_task(
    listener: TcpListener,
    router: Router,
    shutdown: tokio_util::sync::CancellationToken,
) -> crate::Task {
    crate::Task::new("http server", async move {
        serve(listener, router, async move { shutdown.cancelled().await }).await?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn secrets_compare_by_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"abc"));
    }
}
