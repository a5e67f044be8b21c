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

/// The answer headers a client needs: the key its order was placed under (made up when it
/// sent none) and when to try again after a `503`.
const RETURNED_HEADERS: [HeaderName; 3] = [
    CONTENT_TYPE,
    HeaderName::from_static("idempotency-key"),
    RETRY_AFTER,
];

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
    let headers: Vec<_> = RETURNED_HEADERS
        .iter()
        .filter_map(|name| Some((name.clone(), answer.headers().get(name)?.clone())))
        .collect();
    let body = answer.bytes().await.map_err(|e| unanswered(service, &e))?;

    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().extend(headers);
    Ok(response)
}
