//! The controls that act on the services, past the load slider: a service's processing
//! delay, pausing and resuming its consumers, reading, replaying and discarding its dead
//! letters. Each needs the token, then goes to the services' internal routes through
//! [`ServiceAdmin`]; the answer says what was done, or passes on why not with the status
//! that fits (the service's own, such as `409` for a replay that failed again).
//!
//! Killing and restarting a service's processes go to `converge up`'s supervisor, through
//! the same [`ServiceAdmin`]; without one they answer `501` (see
//! [`snapshot::KILL_DISABLED_REASON`]).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use contracts::ServiceName;
use contracts::internal::{PROCESSING_DELAY_MS_MAX, ProcessAction};
use serde::{Deserialize, Serialize};

use crate::admin::ControlError;
use crate::{AppState, Inner, ServiceAdmin, check_token, error, snapshot};

/// A control refused before it reached a service: its status and why.
#[derive(Debug)]
pub(crate) struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

impl From<ControlError> for Refused {
    fn from(e: ControlError) -> Self {
        Refused(e.status(), e.to_string())
    }
}

/// What a control acts on, once the token is checked and the service named: the services'
/// admin routes, or why there is none.
fn admin_for(
    inner: &Inner,
    headers: &HeaderMap,
    service: &str,
) -> Result<(ServiceAdmin, ServiceName), Refused> {
    check_token(inner, headers)
        .map_err(|_| Refused(StatusCode::UNAUTHORIZED, crate::UNAUTHORIZED.to_owned()))?;
    let service: ServiceName = service
        .parse()
        .map_err(|e: contracts::ValidationError| Refused(StatusCode::NOT_FOUND, e.0))?;
    let admin = inner.config.services.clone().ok_or_else(|| {
        Refused(
            StatusCode::NOT_IMPLEMENTED,
            snapshot::NO_SERVICES_REASON.to_owned(),
        )
    })?;
    Ok((admin, service))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DelayRequest {
    delay_ms: u64,
}

#[derive(Debug, Serialize)]
struct DelayAnswer {
    service: ServiceName,
    delay_ms: u64,
}

/// `POST /dashboard/api/services/{service}/delay {"delay_ms": N}`: on every instance.
pub(crate) async fn set_delay(
    State(state): State<AppState>,
    Path(service): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refused> {
    let (admin, service) = admin_for(&state.inner, &headers, &service)?;
    let invalid = |why: String| Refused(StatusCode::UNPROCESSABLE_ENTITY, why);
    let DelayRequest { delay_ms } = serde_json::from_slice(&body)
        .map_err(|e| invalid(format!("expected {{\"delay_ms\": N}}: {e}")))?;
    if delay_ms > PROCESSING_DELAY_MS_MAX {
        return Err(invalid(format!(
            "delay_ms is at most {PROCESSING_DELAY_MS_MAX}, got {delay_ms}"
        )));
    }
    admin.set_delay(service, delay_ms).await?;
    tracing::info!(%service, delay_ms, "dashboard: processing delay set");
    Ok(axum::Json(DelayAnswer { service, delay_ms }).into_response())
}

#[derive(Debug, Serialize)]
struct PauseAnswer {
    service: ServiceName,
    paused: bool,
}

/// `POST /dashboard/api/services/{service}/pause`.
pub(crate) async fn pause(
    State(state): State<AppState>,
    Path(service): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Refused> {
    set_paused(&state.inner, &headers, &service, true).await
}

/// `POST /dashboard/api/services/{service}/resume`.
pub(crate) async fn resume(
    State(state): State<AppState>,
    Path(service): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Refused> {
    set_paused(&state.inner, &headers, &service, false).await
}

async fn set_paused(
    inner: &Inner,
    headers: &HeaderMap,
    service: &str,
    paused: bool,
) -> Result<Response, Refused> {
    let (admin, service) = admin_for(inner, headers, service)?;
    admin.set_paused(service, paused).await?;
    tracing::info!(%service, paused, "dashboard: consumers paused or resumed");
    Ok(axum::Json(PauseAnswer { service, paused }).into_response())
}

/// `POST /dashboard/api/services/{service}/kill`: `SIGKILL` of every process of the service,
/// through `converge up`'s supervisor. It stays down until restarted.
pub(crate) async fn kill(
    State(state): State<AppState>,
    Path(service): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Refused> {
    act_on_processes(&state.inner, &headers, &service, ProcessAction::Kill).await
}

/// `POST /dashboard/api/services/{service}/restart`: every process of the service started
/// again (killed first if it runs); answered once each is healthy.
pub(crate) async fn restart(
    State(state): State<AppState>,
    Path(service): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Refused> {
    act_on_processes(&state.inner, &headers, &service, ProcessAction::Restart).await
}

/// What a kill or restart answers.
#[derive(Debug, Serialize)]
struct ProcessAnswer {
    service: ServiceName,
    action: ProcessAction,
}

async fn act_on_processes(
    inner: &Inner,
    headers: &HeaderMap,
    service: &str,
    action: ProcessAction,
) -> Result<Response, Refused> {
    let (admin, service) = admin_for(inner, headers, service)?;
    if !admin.has_supervisor() {
        return Err(Refused(
            StatusCode::NOT_IMPLEMENTED,
            snapshot::KILL_DISABLED_REASON.to_owned(),
        ));
    }
    admin.act_on_processes(service, action).await?;
    tracing::info!(%service, action = action.as_str(), "dashboard: processes killed or restarted");
    Ok(axum::Json(ProcessAnswer { service, action }).into_response())
}

/// A dead letter's handle from the path: the service's own id for it.
fn dead_letter_id(raw: &str) -> Result<i64, Refused> {
    raw.parse::<i64>().map_err(|_| {
        Refused(
            StatusCode::BAD_REQUEST,
            format!("{raw:?} is not a dead letter's id (a number)"),
        )
    })
}

/// `GET /dashboard/api/dead-letters/{service}/{id}`: the letter with its event's body. The
/// public listing leaves bodies out (they are for operators), so this needs the token.
pub(crate) async fn dead_letter_body(
    State(state): State<AppState>,
    Path((service, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Refused> {
    let (admin, service) = admin_for(&state.inner, &headers, &service)?;
    let letter = admin.dead_letter(service, dead_letter_id(&id)?).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], axum::Json(letter)).into_response())
}

/// What an operator does with a dead letter.
#[derive(Debug, Clone, Copy)]
enum LetterAct {
    Replay,
    Discard,
}

impl LetterAct {
    fn done(self) -> &'static str {
        match self {
            LetterAct::Replay => "replayed",
            LetterAct::Discard => "discarded",
        }
    }
}

#[derive(Debug, Serialize)]
struct DeadLetterAnswer {
    service: ServiceName,
    id: i64,
    outcome: &'static str,
}

/// `POST /dashboard/api/dead-letters/{service}/{id}/replay`: `200` once it applied (it left
/// the list); the service's `409` with its error when it failed again.
pub(crate) async fn replay(
    State(state): State<AppState>,
    Path((service, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Refused> {
    act_on_dead_letter(&state.inner, &headers, &service, &id, LetterAct::Replay).await
}

/// `POST /dashboard/api/dead-letters/{service}/{id}/discard`.
pub(crate) async fn discard(
    State(state): State<AppState>,
    Path((service, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Refused> {
    act_on_dead_letter(&state.inner, &headers, &service, &id, LetterAct::Discard).await
}

async fn act_on_dead_letter(
    inner: &Inner,
    headers: &HeaderMap,
    service: &str,
    id: &str,
    act: LetterAct,
) -> Result<Response, Refused> {
    let (admin, service) = admin_for(inner, headers, service)?;
    let id = dead_letter_id(id)?;
    let result = match act {
        LetterAct::Replay => admin.replay(service, id).await,
        LetterAct::Discard => admin.discard(service, id).await,
    };
    let outcome = act.done();
    if let Err(e) = &result {
        tracing::info!(%service, id, error = %e, ?act, "dashboard: dead letter left as it was");
    }
    result?;
    tracing::info!(%service, id, outcome, "dashboard: dead letter");
    Ok(axum::Json(DeadLetterAnswer {
        service,
        id,
        outcome,
    })
    .into_response())
}
