//! Serving HTTP: the JSON extractor, the internal-secret guard, and the server loop with its
//! limits.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{BoxError, Json, Router};
use contracts::internal::{
    CRASH_POINT_PATH, CrashPoint, METRICS_PATH, NETWORK_DELAY_PATH, PROCESSING_DELAY_MS_MAX,
    PROCESSING_DELAY_PATH, ProcessingDelay, SECRET_HEADER,
};
use contracts::limits::BODY_BYTES_MAX;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tower::ServiceBuilder;

use crate::config::Delay;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// The shortest shared secret accepted: 16 bytes resist guessing over the network for far
/// longer than anyone would try, and a typo'd short one is refused at start instead of later.
pub const SECRET_BYTES_MIN: usize = 16;

/// Connections served at once per server. Past this, new connections wait in the listen
/// backlog: a flood of idle or slow clients cannot exhaust file descriptors or memory.
pub const CONNECTIONS_MAX: usize = 4_096;

/// Requests handled at once per server. Past this, a request is answered `503` with
/// `Retry-After` at once rather than queued without bound. Above the load generator's
/// largest connection count, so the bench measures latency, not shedding.
pub const REQUESTS_IN_FLIGHT_MAX: usize = 2_048;

/// How long a client may take to send a request's headers, and how long a kept-alive
/// connection may sit idle before it is closed.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take to send a request's body (64 KiB at most).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest any request may take, answer included: above the longest legitimate one (a
/// long-polled feed page waits 10 s; a strong-mode order a few call timeouts).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a graceful shutdown waits for the requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

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
        other if other.status() == StatusCode::REQUEST_TIMEOUT || is_body_timeout(&other) => {
            ApiError::BodyTimeout
        }
        other => ApiError::BadRequest(other.body_text()),
    }
}

/// Whether a body failed because the client stopped sending it: axum reports it as a body it
/// could not buffer (a `400`), with tower-http's timeout as the cause.
fn is_body_timeout(rejection: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(rejection);
    while let Some(error) = cause {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// `axum::extract::Path`, answering a path that does not parse with a JSON `400`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}

/// `axum::extract::Query`, answering a query string that does not parse with a JSON `400`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// Rejects calls under `/internal/` that do not carry the shared secret, whether the route
/// exists or not: without the secret, the internal surface says nothing about itself.
async fn require_secret(secret: Arc<str>, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/internal/") {
        return next.run(req).await;
    }
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

/// Checks a shared secret before anything starts: an empty or short one would let anyone
/// who reaches a service call its internal routes.
pub fn check_secret(secret: &str) -> Result<(), String> {
    if secret.len() < SECRET_BYTES_MIN {
        return Err(format!(
            "the shared secret must be at least {SECRET_BYTES_MIN} bytes (got {})",
            secret.len()
        ));
    }
    Ok(())
}

/// Adds the service's processing delay to every request of a router: the knob that makes a
/// service slow, as "complex logic" would. Read at each request, so it can change at run time.
pub fn with_processing_delay(router: Router, delay: Delay) -> Router {
    router.layer(middleware::from_fn(move |req: Request, next: Next| {
        let delay = delay.clone();
        async move {
            delay.pay().await;
            next.run(req).await
        }
    }))
}

/// Assembles a service's router: its public routes, its internal routes behind the secret
/// (plus metrics and the processing-delay knob), `/health`, the body limit and a JSON 404 for
/// anything else.
pub fn service_router(
    public: Router,
    internal: Router,
    secret: &str,
    metrics: Metrics,
    delays: Knobs,
) -> Router {
    let Knobs {
        processing,
        network,
    } = delays;
    let secret: Arc<str> = secret.into();
    let internal = internal
        .route(METRICS_PATH, get(move || async move { metrics.render() }))
        .route(PROCESSING_DELAY_PATH, delay_route(processing, "processing"))
        .route(NETWORK_DELAY_PATH, delay_route(network, "network"));
    // Only builds with crash points can arm one: the drill's `crash` fault.
    let internal = if crate::CRASH_POINTS_BUILT {
        internal.route(
            CRASH_POINT_PATH,
            axum::routing::post(|ApiJson(point): ApiJson<CrashPoint>| async move {
                if crate::arm_crash_point(&point.name) {
                    tracing::warn!(point = point.name, "crash point armed");
                    Ok(StatusCode::NO_CONTENT)
                } else {
                    Err(ApiError::Invalid(format!("cannot arm {:?}", point.name)))
                }
            }),
        )
    } else {
        internal
    };
    let router = public
        .route(
            "/health",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .merge(internal)
        .fallback(|| async { ApiError::NotFound("no such route".into()) });
    behind_secret(router, secret).layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
}

/// Puts every route of `router` under `/internal/` behind the shared secret (`401` without
/// it, whether the route exists or not): a service's internal surface, or a supervisor's.
pub fn behind_secret(router: Router, secret: Arc<str>) -> Router {
    router.layer(middleware::from_fn(move |req: Request, next: Next| {
        require_secret(secret.clone(), req, next)
    }))
}

/// A service's delays that can change while it runs: its processing delay and the delay it
/// adds to its calls to others.
#[derive(Debug, Clone, Default)]
pub struct Knobs {
    pub processing: Delay,
    pub network: Delay,
}

/// `POST {"delay_ms": N}` sets `delay`; `GET` answers the delay in force, so that an operator
/// (the dashboard) shows it whoever set it: a start-up flag, or another operator.
fn delay_route(delay: Delay, which: &'static str) -> axum::routing::MethodRouter {
    let in_force = delay.clone();
    get(move || async move {
        Json(ProcessingDelay {
            delay_ms: in_force.get().as_millis() as u64,
        })
    })
    .post(move |ApiJson(body): ApiJson<ProcessingDelay>| async move {
        set_delay(&delay, which, body)
    })
}

fn set_delay(delay: &Delay, which: &str, body: ProcessingDelay) -> Result<StatusCode, ApiError> {
    if body.delay_ms > PROCESSING_DELAY_MS_MAX {
        return Err(ApiError::Invalid(format!(
            "delay_ms must be at most {PROCESSING_DELAY_MS_MAX}"
        )));
    }
    delay.set(Duration::from_millis(body.delay_ms));
    tracing::info!(delay_ms = body.delay_ms, which, "delay changed");
    Ok(StatusCode::NO_CONTENT)
}

/// The limits a server applies: how long a client may take, how many connections and
/// requests it serves at once. [`Limits::default`] is what every service and the gateway use;
/// tests shorten them.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// For a request's headers, and for an idle kept-alive connection.
    pub header_timeout: Duration,
    /// For a request's body, once the handler reads it.
    pub body_timeout: Duration,
    /// For a whole request, answer included.
    pub request_timeout: Duration,
    /// Connections served at once; past this, new ones wait in the listen backlog.
    pub connections_max: usize,
    /// Requests handled at once; past this, a `503` with `Retry-After` at once.
    pub requests_in_flight_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: HEADER_TIMEOUT,
            body_timeout: BODY_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            connections_max: CONNECTIONS_MAX,
            requests_in_flight_max: REQUESTS_IN_FLIGHT_MAX,
        }
    }
}

/// The limits every server applies around a router: a request timeout, a body timeout, and
/// load shedding past [`REQUESTS_IN_FLIGHT_MAX`].
pub fn with_limits(router: Router) -> Router {
    limits(router, &Limits::default())
}

fn limits(router: Router, limits: &Limits) -> Router {
    router.layer(
        ServiceBuilder::new()
            .layer(axum::error_handling::HandleErrorLayer::new(limit_answer))
            .load_shed()
            // Global: `Router::layer` makes one instance per route, and the limit is the
            // server's, not each route's.
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                limits.requests_in_flight_max,
            ))
            .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
                limits.body_timeout,
            ))
            // tower's timeout fails the request, so that `limit_answer` answers it like every
            // other error: a JSON 503 with `Retry-After` (tower-http's would be an empty body).
            .timeout(limits.request_timeout),
    )
}

/// The answer to a request a limit stopped.
async fn limit_answer(error: BoxError) -> Response {
    if error.is::<tower::load_shed::error::Overloaded>() {
        ApiError::Overloaded.into_response()
    } else if error.is::<tower::timeout::error::Elapsed>() {
        ApiError::Unavailable("the request took too long to answer; try again".into())
            .into_response()
    } else {
        ApiError::Internal(anyhow::anyhow!("{error}")).into_response()
    }
}

/// Serves `router` on an already bound listener until `shutdown` completes, then lets the
/// requests in flight finish (up to a bound). Taking a bound listener lets tests and the CLI
/// choose the port, port 0 included, and know it before the server starts.
///
/// Each connection is HTTP/1.1 with [`HEADER_TIMEOUT`] for headers and idle keep-alive; at
/// most [`CONNECTIONS_MAX`] are served at once.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_limits(listener, router, Limits::default(), shutdown).await
}

/// [`serve`] under other [`Limits`].
pub async fn serve_with_limits(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = self::limits(router, &limits);
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.connections_max));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("never closed"),
            () = &mut shutdown => break,
        };
        let socket = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => socket,
                Err(error) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = socket.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection(TokioIo::new(socket), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight at shutdown were cut off");
    }
    Ok(())
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
    use super::*;

    #[test]
    fn secrets_compare_by_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"abc"));
    }

    #[tokio::test]
    async fn a_request_over_the_time_limit_is_a_json_503_with_retry_after() {
        use tower::ServiceExt;
        let slow = Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "too late"
            }),
        );
        let request = Request::get("/slow")
            .body(axum::body::Body::empty())
            .unwrap();
        let short = Limits {
            request_timeout: Duration::from_millis(20),
            ..Limits::default()
        };
        let response = limits(slow, &short).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "1");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).expect("a JSON body");
        assert!(
            body["error"].as_str().unwrap().contains("too long"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn the_processing_delay_is_set_and_read_behind_the_secret() {
        use tower::ServiceExt;

        let secret = "a-secret-of-sixteen-bytes";
        let router = service_router(
            Router::new(),
            Router::new(),
            secret,
            Metrics::new("stats"),
            Knobs {
                processing: Delay::new(Duration::from_millis(20)),
                network: Delay::default(),
            },
        );
        let call = |method: &str, body: Option<&str>, with_secret: bool| {
            let mut request = Request::builder().method(method).uri(PROCESSING_DELAY_PATH);
            if with_secret {
                request = request.header(SECRET_HEADER, secret);
            }
            let request = match body {
                Some(body) => request
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(body.to_owned())),
                None => request.body(axum::body::Body::empty()),
            };
            router.clone().oneshot(request.unwrap())
        };
        let read = |response: Response| async move {
            let bytes = axum::body::to_bytes(response.into_body(), 1024)
                .await
                .unwrap();
            serde_json::from_slice::<ProcessingDelay>(&bytes)
                .unwrap()
                .delay_ms
        };
        let now = call("GET", None, true).await.unwrap();
        assert_eq!(now.status(), StatusCode::OK);
        assert_eq!(read(now).await, 20);
        let set = call("POST", Some(r#"{"delay_ms": 70}"#), true)
            .await
            .unwrap();
        assert_eq!(set.status(), StatusCode::NO_CONTENT);
        assert_eq!(read(call("GET", None, true).await.unwrap()).await, 70);
        let too_long = format!(r#"{{"delay_ms": {}}}"#, PROCESSING_DELAY_MS_MAX + 1);
        let refused = call("POST", Some(&too_long), true).await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(read(call("GET", None, true).await.unwrap()).await, 70);
        let anonymous = call("GET", None, false).await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(check_secret("").is_err());
        assert!(check_secret("fifteen-bytes!!").is_err());
        assert!(check_secret("sixteen-bytes!!!").is_ok());
    }
}
