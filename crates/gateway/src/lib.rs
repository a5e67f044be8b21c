//! The user-facing address of Converge.
//!
//! The gateway is only routing. It owns no data and makes no business decision: each public
//! request is forwarded to the one service that owns what it asks about — method, path, query,
//! body, `content-type` and `Idempotency-Key` unchanged — and the service's answer comes back
//! with its status, body, `content-type`, `Retry-After` and `Idempotency-Key` unchanged. Users
//! therefore see exactly the errors the services give, plus three of the gateway's own: `503`
//! when the owning service does not answer in time, `413` for a body over
//! [`BODY_BYTES_MAX`](contracts::limits::BODY_BYTES_MAX) and `408` for one that stalls, both
//! refused before anything is sent on.
//!
//! What it answers itself is the view across all five services that no single one can give:
//! `/health`, `/metrics`, `/dead-letters`, `/progress` and `/openapi.json`.
//!
//! Internal routes (`/internal/*`: two-phase commit, event feeds, account eligibility, status)
//! are unreachable through it. Only the routes of [`routes::ROUTES`] exist here, none of them
//! internal, and everything else is a JSON `404`. The gateway does call internal routes, with
//! the shared secret, to build its aggregate answers, but it never passes a user's request to
//! one, and it never passes a user's `x-converge-secret` header on.
//!
//! A tour:
//! - [`routes`]: the one table of every route and who answers it. The router and the OpenAPI
//!   test both read it, so a route cannot be added without being documented.
//! - [`forward`]: passing a request to its service and its answer back.
//! - [`aggregate`]: the answers built from every service.
//! - [`progress`]: when the system is quiet, as a pure function.

pub mod aggregate;
pub mod forward;
pub mod progress;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use contracts::ServiceName;
use contracts::api::ErrorBody;
use contracts::internal::SECRET_HEADER;
use runtime::{ApiError, Peers};
use serde::de::DeserializeOwned;

use crate::routes::{Own, ROUTES, Target};

/// The OpenAPI 3.1 document of the public API, served at `GET /openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// What the gateway needs to reach the services. Shared by every request behind an `Arc`.
pub struct Gateway {
    peers: Peers,
    /// Each service's instances (base URLs), in [`ServiceName::ALL`] order. Requests go round
    /// them; the answers about the whole system ask every one.
    instances: [Vec<String>; 5],
    /// The instance each service's next request goes to first.
    next: [std::sync::atomic::AtomicUsize; 5],
    /// One client, so every request to a service reuses the same pool of kept-alive connections.
    http: reqwest::Client,
    /// Sent only on the gateway's own calls to `/internal/*`, never on a forwarded request.
    secret: String,
    /// Longest wait for a service, whole answer included, before it counts as not answering.
    call_timeout: Duration,
}

/// Leaves the secret out, so that logging a gateway never logs it.
impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("peers", &self.peers)
            .field("call_timeout", &self.call_timeout)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    pub fn new(peers: Peers, secret: String, call_timeout: Duration) -> Self {
        let instances = ServiceName::ALL.map(|service| {
            peers
                .url(service)
                .split(',')
                .map(|url| url.trim().trim_end_matches('/').to_owned())
                .filter(|url| !url.is_empty())
                .collect()
        });
        Self {
            peers,
            instances,
            next: Default::default(),
            http: runtime::peer::http_client(),
            secret,
            call_timeout,
        }
    }

    /// The base URLs of `service`'s instances, starting with the one whose turn it is.
    fn instances(&self, service: ServiceName) -> Vec<&str> {
        let index = ServiceName::ALL
            .iter()
            .position(|s| *s == service)
            .expect("every service is in ALL");
        let all = &self.instances[index];
        let first = self.next[index].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (0..all.len())
            .map(|i| all[(first + i) % all.len()].as_str())
            .collect()
    }

    /// Every instance of `service`, in the order given.
    fn all_instances(&self, service: ServiceName) -> &[String] {
        let index = ServiceName::ALL
            .iter()
            .position(|s| *s == service)
            .expect("every service is in ALL");
        &self.instances[index]
    }

    /// A request to the instance at `base`, with the call timeout; `path_and_query` starts
    /// with `/`.
    fn request_to(
        &self,
        base: &str,
        method: Method,
        path_and_query: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{base}{path_and_query}"))
            .timeout(self.call_timeout)
    }

    /// Sends a request; a service that does not answer becomes a `503`.
    async fn send(
        &self,
        service: ServiceName,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ApiError> {
        request.send().await.map_err(|e| unanswered(service, &e))
    }

    /// `GET` an internal route of one instance of `service`, with the secret. Anything but a
    /// `2xx` is an error: the gateway has no use for a half answer.
    async fn get_internal(
        &self,
        service: ServiceName,
        base: &str,
        path: &str,
    ) -> Result<reqwest::Response, ApiError> {
        let request = self
            .request_to(base, Method::GET, path)
            .header(SECRET_HEADER, &self.secret);
        let response = self.send(service, request).await?;
        let status = response.status();
        if !status.is_success() {
            tracing::warn!(%service, path, %status, "internal call refused");
            return Err(ApiError::Unavailable(format!(
                "{service} service answered {status} to {path}"
            )));
        }
        Ok(response)
    }

    async fn get_internal_text(
        &self,
        service: ServiceName,
        base: &str,
        path: &str,
    ) -> Result<String, ApiError> {
        let response = self.get_internal(service, base, path).await?;
        response.text().await.map_err(|e| unanswered(service, &e))
    }

    async fn get_internal_json<T: DeserializeOwned>(
        &self,
        service: ServiceName,
        base: &str,
        path: &str,
    ) -> Result<T, ApiError> {
        let response = self.get_internal(service, base, path).await?;
        response.json().await.map_err(|e| {
            if e.is_decode() {
                ApiError::Unavailable(format!(
                    "{service} service answered {path} with a body that could not be read"
                ))
            } else {
                unanswered(service, &e)
            }
        })
    }
}

/// The `503` for a service that did not answer: too slow, or nothing listening.
fn unanswered(service: ServiceName, error: &reqwest::Error) -> ApiError {
    let what = if error.is_timeout() {
        "did not answer in time"
    } else {
        "is unreachable"
    };
    tracing::warn!(%service, error = %error, "service {what}");
    ApiError::Unavailable(format!("{service} service {what}"))
}

/// The gateway's router: every route of [`ROUTES`], a JSON `404` for any other path (all of
/// `/internal/*` included) and a JSON `405` for a known path with a method it does not take.
pub fn router(gateway: Gateway) -> Router {
    let mut router = Router::new();
    for route in ROUTES {
        let filter = MethodFilter::try_from(route.method.clone())
            .expect("the route table uses only standard methods");
        router = router.route(route.path, handler(filter, route.target));
    }
    router
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .with_state(Arc::new(gateway))
}

fn handler(filter: MethodFilter, target: Target) -> MethodRouter<Arc<Gateway>> {
    match target {
        Target::Service(service) => on(
            filter,
            move |State(gateway): State<Arc<Gateway>>, request: Request| {
                forward::forward(gateway, service, request)
            },
        ),
        Target::Gateway(Own::Health) => on(filter, aggregate::health),
        Target::Gateway(Own::Metrics) => on(filter, aggregate::metrics),
        Target::Gateway(Own::DeadLetters) => on(filter, aggregate::dead_letters),
        Target::Gateway(Own::Progress) => on(filter, aggregate::progress),
        Target::Gateway(Own::OpenApi) => on(filter, || async {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                OPENAPI_JSON,
            )
        }),
    }
}

/// `ApiError` has no variant for this: only a router can get it wrong, never a handler.
async fn method_not_allowed(method: Method) -> Response {
    let body = ErrorBody {
        error: format!("method {method} is not allowed on this route"),
    };
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}
