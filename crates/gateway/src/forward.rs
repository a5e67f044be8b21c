//! Passing a public request to the service that owns it, and the answer back, unchanged.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::HeaderName;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use contracts::ServiceName;
use contracts::limits::BODY_BYTES_MAX;
use runtime::ApiError;

use crate::{Gateway, unanswered};

/// The request headers a service needs. Everything else stays at the gateway: cookies, the
/// caller's `host`, and above all an `x-converge-secret` a user might try to slip through.
const FORWARDED_HEADERS: [HeaderName; 2] =
    [CONTENT_TYPE, HeaderName::from_static("idempotency-key")];

/// Forwards `request` to `service` and answers with the service's status, `content-type` and
/// body; a `503` if it does not answer, a `413` for a body over the limit.
pub async fn forward(gateway: Arc<Gateway>, service: ServiceName, request: Request) -> Response {
    match try_forward(&gateway, service, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn try_forward(
    gateway: &Gateway,
    service: ServiceName,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    // Read whole, up to the limit, so a too-large body is refused here and never reaches a
    // service. The only other way reading fails is a client that went away, who will not
    // see the answer anyway.
    let body = axum::body::to_bytes(body, BODY_BYTES_MAX)
        .await
        .map_err(|_| ApiError::TooLarge(BODY_BYTES_MAX))?;
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path(), |pq| pq.as_str());

    let mut outgoing = gateway
        .request(service, parts.method.clone(), path_and_query)
        .body(body);
    for name in FORWARDED_HEADERS {
        if let Some(value) = parts.headers.get(&name) {
            outgoing = outgoing.header(name, value);
        }
    }

    let answer = gateway.send(service, outgoing).await?;
    let status = answer.status();
    let content_type = answer.headers().get(CONTENT_TYPE).cloned();
    let body = answer.bytes().await.map_err(|e| unanswered(service, &e))?;

    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    if let Some(content_type) = content_type {
        response.headers_mut().insert(CONTENT_TYPE, content_type);
    }
    Ok(response)
}
