//! The live dashboard of a Converge system, at `/dashboard` on the user-facing address.
//!
//! It watches the system from outside, as a user would: everything it shows comes from the
//! gateway's public routes (`/progress`, `/metrics`, `/dead-letters` and the per-order reads),
//! and its load is ordinary `POST /orders` on the seeded workload. It depends on no service
//! and not on the gateway, so it shows what any client could see, and it can follow a second
//! system on another address beside the first (modes side by side). Its other controls —
//! a service's processing delay, pausing its consumers, dead letters — are operators' acts
//! that no public route offers: for those it is given the services' own addresses and the
//! shared secret ([`admin`]), and it calls their internal routes.
//!
//! A tour:
//! - [`router`]: the page, its assets, the event stream and the control routes.
//! - [`sampler`]: the loop that reads the system and pushes a [`snapshot::Snapshot`] to
//!   every open page, [`snapshot::SNAPSHOT_INTERVAL`] apart.
//! - [`admin`]: the services' internal routes, for the controls (and the delays in force).
//! - [`readings`]: what the gateway's answers mean — backlog, consumer state, windows over
//!   cumulative metrics — as pure, tested functions.
//! - [`load`]: the open-loop generator behind the page's slider.
//! - [`visibility`]: the live t-visibility curve, from the bench's own probe.
//! - [`timeline`]: one order's life, service by service.
//! - [`peer`]: following a second system through this server.
//! - [`token`]: what control requests must carry.
//!
//! The page itself (`assets/`) is plain HTML, CSS and JavaScript modules, compiled into the
//! binary with `include_str!`: no CDN, no build step, nothing fetched at run time, and a
//! `Content-Security-Policy` that lets the browser load nothing from elsewhere.

pub mod admin;
pub mod assets;
mod controls;
pub mod load;
pub mod peer;
pub mod readings;
pub mod sampler;
pub mod snapshot;
pub mod timeline;
pub mod token;
pub mod visibility;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::{CancellationToken, DropGuard};

pub use admin::ServiceAdmin;
pub use token::Token;

use loadgen::workload::Client;

/// Pages that may watch at once. Each holds a connection open for as long as it is shown;
/// a bound keeps a script that opens streams in a loop from holding every socket.
pub const EVENT_STREAMS_MAX: usize = 32;

/// Bytes of a control request's body at most: a control body is a number or two.
pub const CONTROL_BODY_BYTES_MAX: usize = 4 * 1024;

/// How the browser should wait before reconnecting a dropped event stream, in ms: soon
/// enough to follow a restarted system, slow enough not to hammer a stopped one.
const EVENT_RETRY_MS: u64 = 2_000;

/// What the dashboard needs to know.
#[derive(Clone)]
pub struct DashboardConfig {
    /// The system's user-facing address, e.g. `http://127.0.0.1:8080`: everything is read
    /// through it.
    pub gateway_url: String,
    /// Shown on the page to tell systems apart: the mode (`strong`, `queue`, `cron`).
    pub label: String,
    /// What control requests must carry (see [`token`]).
    pub token: Token,
    /// Seed of the load's workload: the same seed offers the same orders.
    pub seed: u64,
    /// The services' own addresses and the secret of their internal routes, for the
    /// controls that no public route offers (delays, pausing consumers, dead letters).
    /// `None`: those controls are shown disabled, saying why.
    pub services: Option<ServiceAdmin>,
    /// Cancelled when the server shuts down: event streams end and background tasks stop,
    /// so that a graceful shutdown is not held open by a page still watching.
    pub shutdown: CancellationToken,
}

impl DashboardConfig {
    /// A dashboard of the system at `gateway_url`, with seed 7 (the demo's) and a shutdown
    /// token that is never cancelled unless replaced.
    pub fn new(gateway_url: impl Into<String>, label: impl Into<String>, token: Token) -> Self {
        Self {
            gateway_url: gateway_url.into().trim_end_matches('/').to_owned(),
            label: label.into(),
            token,
            seed: 7,
            services: None,
            shutdown: CancellationToken::new(),
        }
    }

    /// The same, with the controls that act on the services through `services`.
    pub fn with_services(mut self, services: ServiceAdmin) -> Self {
        self.services = Some(services);
        self
    }

    /// The same, with `converge up`'s supervisor at `url`: kill and restart work (given
    /// [`DashboardConfig::services`], whose secret the supervisor shares).
    pub fn with_supervisor(mut self, url: &str) -> Self {
        self.services = self.services.map(|services| services.with_supervisor(url));
        self
    }

    /// The link to print: the page, with the control token in the fragment.
    pub fn link(&self) -> String {
        format!(
            "{}/dashboard#token={}",
            self.gateway_url,
            self.token.expose()
        )
    }
}

/// Leaves the token out (it is [`Token`]'s `Debug` too), so that logging a configuration
/// never logs it.
impl std::fmt::Debug for DashboardConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardConfig")
            .field("gateway_url", &self.gateway_url)
            .field("label", &self.label)
            .field("token", &self.token)
            .field("seed", &self.seed)
            .field("services", &self.services)
            .finish_non_exhaustive()
    }
}

/// What the handlers and the background tasks share. Background tasks hold this, never the
/// router's [`AppState`], so that dropping the router drops its guard and stops them.
pub(crate) struct Inner {
    config: DashboardConfig,
    client: Client,
    /// The latest snapshot as JSON, shared by every page. `None` before the first.
    snapshots: watch::Sender<Option<Arc<str>>>,
    /// Whether the sampler task runs (see [`sampler::ensure_running`]).
    sampler_running: AtomicBool,
    load: load::Load,
    visibility: Arc<visibility::Visibility>,
    /// Cancelled at shutdown or when the router is dropped.
    stop: CancellationToken,
    event_streams: Arc<Semaphore>,
    peer_http: reqwest::Client,
}

/// The router's state: the shared part, and the guard that stops the background tasks once
/// the last copy of the router is gone.
#[derive(Clone)]
struct AppState {
    inner: Arc<Inner>,
    _stop_on_drop: Arc<DropGuard>,
}

/// The dashboard's routes, to merge with the gateway's router on the user-facing address.
/// It has no fallback of its own, so it merges with one that has.
///
/// - `GET /dashboard`: the page; `GET /dashboard/assets/{file}`: its scripts and styles.
/// - `GET /dashboard/events`: Server-Sent Events, one `snapshot` event per
///   [`snapshot::SNAPSHOT_INTERVAL`].
/// - `GET /dashboard/api/auth`: `204` if the request carries the token, else `401`.
/// - `POST /dashboard/api/load` `{"rate_per_s": N}`: the offered load (token).
/// - `GET /dashboard/api/orders/{id}/timeline`: one order's life.
/// - `POST /dashboard/api/services/{service}/delay` `{"delay_ms": N}`: that service's
///   processing delay (token).
/// - `POST /dashboard/api/services/{service}/pause` and `…/resume`: its consumers (token).
/// - `GET /dashboard/api/dead-letters/{service}/{id}`: a dead letter with its event's body
///   (token: the public listing leaves bodies out); `POST …/{id}/replay` and `…/discard`.
/// - `POST /dashboard/api/services/{service}/kill` and `…/restart`: every process of the
///   service, through `converge up`'s supervisor (token); `501` without one (see
///   [`snapshot::KILL_DISABLED_REASON`]).
///
/// Without [`DashboardConfig::services`], the controls that need them answer `501`.
///
/// Every route but the page and its assets takes `?peer=http://127.0.0.1:PORT` to ask the
/// dashboard of another system on this machine instead (see [`peer`]).
///
/// Must be called inside a tokio runtime only once the first page connects; building the
/// router starts nothing.
pub fn router(config: DashboardConfig) -> Router {
    let stop = config.shutdown.child_token();
    let client = Client::new(config.gateway_url.clone());
    let visibility = Arc::new(visibility::Visibility::new(client.clone(), stop.clone()));
    let observer = visibility.clone();
    let load = load::Load::new(
        client.clone(),
        config.seed,
        move |ack| observer.observe(ack),
        stop.clone(),
    );
    let inner = Arc::new(Inner {
        config,
        client,
        snapshots: watch::Sender::new(None),
        sampler_running: AtomicBool::new(false),
        load,
        visibility,
        event_streams: Arc::new(Semaphore::new(EVENT_STREAMS_MAX)),
        peer_http: peer::client(),
        stop: stop.clone(),
    });
    let state = AppState {
        inner,
        _stop_on_drop: Arc::new(stop.drop_guard()),
    };
    let followable = Router::new()
        .route("/dashboard/events", get(events))
        .route("/dashboard/api/auth", get(auth))
        .route("/dashboard/api/load", post(set_load))
        .route("/dashboard/api/orders/{id}/timeline", get(order_timeline))
        .route(
            "/dashboard/api/services/{service}/delay",
            post(controls::set_delay),
        )
        .route(
            "/dashboard/api/services/{service}/pause",
            post(controls::pause),
        )
        .route(
            "/dashboard/api/services/{service}/resume",
            post(controls::resume),
        )
        .route(
            "/dashboard/api/services/{service}/kill",
            post(controls::kill),
        )
        .route(
            "/dashboard/api/services/{service}/restart",
            post(controls::restart),
        )
        .route(
            "/dashboard/api/dead-letters/{service}/{id}",
            get(controls::dead_letter_body),
        )
        .route(
            "/dashboard/api/dead-letters/{service}/{id}/replay",
            post(controls::replay),
        )
        .route(
            "/dashboard/api/dead-letters/{service}/{id}/discard",
            post(controls::discard),
        )
        .layer(middleware::from_fn_with_state(state.clone(), follow_peer));
    Router::new()
        .route("/dashboard", get(assets::page))
        .route("/dashboard/", get(assets::page))
        .route("/dashboard/assets/{file}", get(assets::asset))
        .merge(followable)
        .layer(DefaultBodyLimit::max(CONTROL_BODY_BYTES_MAX))
        .with_state(state)
}

/// `{"error": "..."}` with a status, as the rest of the API answers errors.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    #[derive(Serialize)]
    struct ErrorBody {
        error: String,
    }
    (
        status,
        axum::Json(ErrorBody {
            error: message.into(),
        }),
    )
        .into_response()
}

#[derive(Deserialize)]
struct PeerQuery {
    peer: Option<String>,
}

/// Sends a request with `?peer=` to that system's dashboard (see [`peer`]); lets the others
/// through.
async fn follow_peer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let query = request.uri().query().unwrap_or_default();
    let Ok(Query(PeerQuery { peer: Some(raw) })) = Query::<PeerQuery>::try_from_uri(request.uri())
    else {
        return next.run(request).await;
    };
    let peer = match peer::parse_loopback(&raw) {
        Ok(peer) => peer,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    // The same query without `peer`, so the other side answers for itself and never
    // follows a peer in turn.
    let peer_pair = format!("{}=", peer::PEER_PARAM);
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with(&peer_pair))
        .collect();
    let path = request.uri().path().to_owned();
    let path_and_query = if rest.is_empty() {
        path.clone()
    } else {
        format!("{path}?{}", rest.join("&"))
    };
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, peer::BODY_BYTES_MAX).await else {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "the body is over the limit");
    };
    let forward = peer::Forward {
        method: parts.method,
        stream: path == "/dashboard/events",
        path_and_query,
        headers: parts.headers,
        body,
    };
    peer::pass_on(
        &state.inner.peer_http,
        &peer,
        forward,
        state.inner.stop.clone(),
    )
    .await
}

/// `GET /dashboard/events`: the latest snapshot at once, then each new one.
async fn events(State(state): State<AppState>) -> Response {
    let inner = &state.inner;
    let Ok(slot) = inner.event_streams.clone().try_acquire_owned() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{EVENT_STREAMS_MAX} pages are watching already; close one"),
        );
    };
    let receiver = inner.snapshots.subscribe();
    sampler::ensure_running(inner);
    // The first item is the snapshot at hand (if any); then one per change. The slot is
    // held by the stream, so it is freed when the page goes away.
    let stream = futures::stream::unfold(
        (receiver, true, slot),
        |(mut receiver, first, slot)| async move {
            loop {
                if !first || receiver.borrow().is_none() {
                    receiver.changed().await.ok()?;
                }
                let latest = receiver.borrow_and_update().clone();
                if let Some(json) = latest {
                    let event = Event::default().event("snapshot").data(&*json);
                    return Some((Ok::<Event, Infallible>(event), (receiver, false, slot)));
                }
            }
        },
    );
    let first = futures::stream::once(async {
        Ok(Event::default().retry(std::time::Duration::from_millis(EVENT_RETRY_MS)))
    });
    let stream = first
        .chain(stream)
        .take_until(inner.stop.clone().cancelled_owned());
    (
        [(header::CACHE_CONTROL, "no-store")],
        Sse::new(stream).keep_alive(KeepAlive::default()),
    )
        .into_response()
}

/// Why a control request without the token is refused.
const UNAUTHORIZED: &str = "controls need the dashboard token: open the dashboard link \
    `converge serve` or `converge up` printed (…/dashboard#token=…)";

/// The answer to a control request without the token.
struct Unauthorized;

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        error(StatusCode::UNAUTHORIZED, UNAUTHORIZED)
    }
}

/// Refuses a request that does not carry the token.
fn check_token(inner: &Inner, headers: &HeaderMap) -> Result<(), Unauthorized> {
    let given = headers
        .get(token::TOKEN_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if inner.config.token.matches(given) {
        Ok(())
    } else {
        Err(Unauthorized)
    }
}

/// `GET /dashboard/api/auth`: lets the page say whether its controls will work.
async fn auth(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match check_token(&state.inner, &headers) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(refused) => refused.into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadRequest {
    rate_per_s: u32,
}

#[derive(Debug, Serialize)]
struct LoadAnswer {
    rate_per_s: u32,
}

/// `POST /dashboard/api/load {"rate_per_s": N}`: 0 stops the load.
async fn set_load(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let inner = &state.inner;
    if let Err(refused) = check_token(inner, &headers) {
        return refused.into_response();
    }
    let request: LoadRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("expected {{\"rate_per_s\": N}}: {e}"),
            );
        }
    };
    if request.rate_per_s > load::RATE_MAX_PER_S {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "rate_per_s is at most {}, got {}",
                load::RATE_MAX_PER_S,
                request.rate_per_s
            ),
        );
    }
    let rate_per_s = inner.load.set_rate(request.rate_per_s);
    sampler::ensure_running(inner);
    tracing::info!(rate_per_s, "dashboard: load set");
    axum::Json(LoadAnswer { rate_per_s }).into_response()
}

/// `GET /dashboard/api/orders/{id}/timeline`.
async fn order_timeline(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match timeline::read(&state.inner.client, &id).await {
        Ok(timeline) => axum::Json(timeline).into_response(),
        Err(timeline::TimelineError::BadId) => error(StatusCode::BAD_REQUEST, "not an order id"),
        Err(timeline::TimelineError::UnknownOrder) => {
            error(StatusCode::NOT_FOUND, format!("no order {id}"))
        }
        Err(timeline::TimelineError::Unavailable(why)) => error(StatusCode::BAD_GATEWAY, why),
    }
}
