//! Passing a public request to the service that owns it, and the answer back, unchanged.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::HeaderName;
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::response::{IntoResponse, Response};
use contracts::ServiceName;
use contracts::limits::BODY_BYTES_MAX;
use runtime::ApiError;

use crate::{Gateway, unanswered};

/// The request headers a service needs. Everything else stays at the gateway: cookies, the
/// caller's `host`, and above all an `x-converge-secret` a user might try to slip through.
const FORWARDED_HEADERS: [HeaderName; 2] =
    [CONTENT_TYPE, HeaderName::from_static("idempotency-key")];

/// The answer headers a user needs: what the body is, when to try again after a `503`, and
/// the `Idempotency-Key` to retry under (Order makes one up for a request sent without).
/// Everything else is the service's own business.
const ANSWERED_HEADERS: [HeaderName; 3] = [
    CONTENT_TYPE,
    RETRY_AFTER,
    HeaderName::from_static("idempotency-key"),
];

/// Forwards `request` to `service` and answers with the service's status, body,
/// `content-type`, `Retry-After` and `Idempotency-Key`; a `503` if it does not answer, a `413`
/// for a body over the limit, a `408` for one that stalls.
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
    // Read whole, up to the limit, so a too-large or stalled body is refused here and never
    // ties up a service.
    let body = read_body(body).await?;
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path(), |pq| pq.as_str());

    // To the instance whose turn it is; on to the next only if one refused the connection
    // (the request surely did not arrive: anything else may have, and sending it again to
    // another instance could do it twice).
    let mut answer = None;
    for base in gateway.instances(service) {
        let mut outgoing = gateway
            .request_to(base, parts.method.clone(), path_and_query)
            .body(body.clone());
        for name in FORWARDED_HEADERS {
            if let Some(value) = parts.headers.get(&name) {
                outgoing = outgoing.header(name, value);
            }
        }
        match outgoing.send().await {
            Ok(response) => {
                answer = Some(Ok(response));
                break;
            }
            Err(error) if error.is_connect() => answer = Some(Err(error)),
            Err(error) => {
                answer = Some(Err(error));
                break;
            }
        }
    }
    let answer = match answer {
        Some(Ok(answer)) => answer,
        Some(Err(error)) => return Err(unanswered(service, &error)),
        None => return Err(ApiError::Unavailable(format!("{service} has no address"))),
    };
    let status = answer.status();
    let headers: Vec<_> = ANSWERED_HEADERS
        .into_iter()
        .filter_map(|name| Some((name.clone(), answer.headers().get(&name)?.clone())))
        .collect();
    let body = answer.bytes().await.map_err(|e| unanswered(service, &e))?;

    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().extend(headers);
    Ok(response)
}

/// The whole body, or why not: over [`BODY_BYTES_MAX`] is a `413`; a client that stalls
/// past the server's body timeout is a `408`. The only other way reading fails is a client
/// that went away, who will not see the answer anyway.
async fn read_body(body: Body) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, BODY_BYTES_MAX)
        .await
        .map_err(|error| {
            if caused_by::<tower_http::timeout::TimeoutError>(&error) {
                ApiError::BodyTimeout
            } else {
                ApiError::TooLarge(BODY_BYTES_MAX)
            }
        })
}

/// Whether `E` is anywhere in the chain of `error`: the body's own error arrives wrapped by
/// each layer it came through.
fn caused_by<E: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |e| e.source()).any(|e| e.is::<E>())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::StatusCode;
    use tower_http::timeout::TimeoutBody;

    use super::*;

    #[tokio::test]
    async fn a_body_that_stalls_is_a_408() {
        let stalled = Body::from_stream(futures::stream::pending::<
            Result<axum::body::Bytes, std::io::Error>,
        >());
        let body = Body::new(TimeoutBody::new(Duration::from_millis(10), stalled));
        let error = read_body(body).await.unwrap_err();
        assert_eq!(error.status(), StatusCode::REQUEST_TIMEOUT);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_a_413_and_one_at_it_is_read() {
        let error = read_body(Body::from(vec![b' '; BODY_BYTES_MAX + 1]))
            .await
            .unwrap_err();
        assert_eq!(error.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body = read_body(Body::from(vec![b' '; BODY_BYTES_MAX]))
            .await
            .unwrap();
        assert_eq!(body.len(), BODY_BYTES_MAX);
    }
}
