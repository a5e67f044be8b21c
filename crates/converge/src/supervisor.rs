//! `converge up`'s supervisor: the processes it started, under an operator's hand.
//!
//! The dashboard runs in the gateway, one of the processes; only the parent that started
//! them can stop one and start it again. So `converge up` serves a few internal routes on a
//! loopback address of its own, behind the shared secret, and tells the gateway where they
//! are (`CONVERGE_SUPERVISOR_URL`): the page's kill and restart buttons go there.
//!
//! - `GET /internal/processes`: every process, its address and its pid (none once killed).
//! - `POST /internal/processes/{part}/{index}/kill`: `SIGKILL`, as a crash would. It stays
//!   down: nothing restarts it but the next call, which is the point of the exercise.
//! - `POST /internal/processes/{part}/{index}/restart`: starts it again on the same address
//!   (killing it first if it runs) and answers once it is healthy.
//!
//! The gateway cannot be killed from here: it serves the page that asks (`409`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use contracts::internal::{PROCESSES_PATH, ProcessAction, ProcessStatus};
use runtime::ApiError;
use runtime::http::ApiJson;
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::up::{Cluster, Part, Plan};

/// The environment variable that gives the gateway the supervisor's address.
pub const SUPERVISOR_URL_ENV: &str = "CONVERGE_SUPERVISOR_URL";

/// A running [`Cluster`] with its control routes.
pub struct Supervisor {
    cluster: Arc<Mutex<Cluster>>,
    url: String,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// Binds the control address (a free loopback port), starts every process of `plan` with
    /// that address in the gateway's environment, then serves the routes.
    pub async fn start(mut plan: Plan) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let url = format!("http://{}", listener.local_addr()?);
        plan.env.push((SUPERVISOR_URL_ENV.to_owned(), url.clone()));
        let secret: Arc<str> = plan.secret.as_str().into();
        let cluster = Arc::new(Mutex::new(Cluster::start(plan).await?));
        let stop = CancellationToken::new();
        let routes = runtime::http::behind_secret(router(cluster.clone()), secret);
        let until = stop.clone();
        let server = tokio::spawn(async move {
            runtime::http::serve(listener, routes, async move { until.cancelled().await }).await
        });
        Ok(Self {
            cluster,
            url,
            stop,
            server,
        })
    }

    /// The control routes' base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The processes, for the caller's own use (the user-facing URL, say).
    pub fn cluster(&self) -> &Arc<Mutex<Cluster>> {
        &self.cluster
    }

    /// Stops serving, then stops every process.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.server.await;
        self.cluster.lock().await.stop_all().await;
    }
}

type Shared = Arc<Mutex<Cluster>>;

fn router(cluster: Shared) -> Router {
    Router::new()
        .route(PROCESSES_PATH, get(list))
        .route(
            &format!("{PROCESSES_PATH}/{{part}}/{{index}}/{{action}}"),
            post(act),
        )
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .with_state(cluster)
}

async fn list(State(cluster): State<Shared>) -> Result<ApiJson<Vec<ProcessStatus>>, ApiError> {
    let mut cluster = cluster.lock().await;
    let mut statuses = Vec::new();
    for (part, index) in cluster.processes() {
        statuses.push(status(&mut cluster, part, index)?);
    }
    Ok(ApiJson(statuses))
}

async fn act(
    State(cluster): State<Shared>,
    Path((part, index, action)): Path<(String, String, String)>,
) -> Result<ApiJson<ProcessStatus>, ApiError> {
    let action = match action.as_str() {
        "kill" => ProcessAction::Kill,
        "restart" => ProcessAction::Restart,
        other => {
            return Err(ApiError::NotFound(format!(
                "no action {other:?}: kill or restart"
            )));
        }
    };
    let part = Part::parse(&part)
        .ok_or_else(|| ApiError::NotFound(format!("no part {part:?}: a service or gateway")))?;
    let index: usize = index
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("{index:?} is not an instance number")))?;
    if part == Part::Gateway {
        return Err(ApiError::Conflict(
            "the gateway serves the dashboard that asks: stop the whole system with Ctrl-C".into(),
        ));
    }
    let mut cluster = cluster.lock().await;
    if cluster.addr(part, index).is_none() {
        return Err(ApiError::NotFound(format!("no process {part}-{index}")));
    }
    let outcome = match action {
        ProcessAction::Kill => cluster.kill(part, index).await,
        ProcessAction::Restart => cluster.restart(part, index, Vec::new()).await,
    };
    outcome
        .map_err(|e| ApiError::Unavailable(format!("{} {part}-{index}: {e:#}", action.as_str())))?;
    tracing::info!(%part, index, action = action.as_str(), "supervisor: done");
    Ok(ApiJson(status(&mut cluster, part, index)?))
}

fn status(cluster: &mut Cluster, part: Part, index: usize) -> Result<ProcessStatus, ApiError> {
    let addr = cluster
        .addr(part, index)
        .ok_or_else(|| ApiError::NotFound(format!("no process {part}-{index}")))?;
    let pid = cluster
        .running(part, index)
        .map_err(|e| ApiError::Unavailable(format!("{e:#}")))?;
    Ok(ProcessStatus {
        part: part.to_string(),
        index,
        addr: addr.to_string(),
        pid,
    })
}
