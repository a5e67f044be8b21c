//! The controls' way into the services: their internal admin routes, called with the shared
//! secret.
//!
//! Everything the page *shows* comes through the public API, as any client would see it;
//! what it *changes* cannot: a processing delay, pausing a consumer, replaying a dead letter
//! and reading a dead letter's body are operators' acts, behind `x-converge-secret` on each
//! service's own address. So a dashboard that has controls is given those addresses and the
//! secret ([`ServiceAdmin`]); one without them (a dashboard of a system it only watches)
//! shows the controls disabled, saying why.
//!
//! A service may run as several instances (addresses separated by commas, as `--stats-addr`
//! takes them). A processing delay and a pause belong to a process, so they go to every
//! instance, and the control succeeds only if each took it. Dead letters live in the
//! service's database, which its instances share, so those calls go to the first instance
//! that can be reached.

use std::sync::Arc;
use std::time::Duration;

use contracts::ServiceName;
use contracts::internal::{
    DEAD_LETTERS_PATH, DeadLetter, DeadLetterList, PAUSE_PATH, PROCESSING_DELAY_MS_MAX,
    PROCESSING_DELAY_PATH, ProcessAction, ProcessingDelay, RESUME_PATH, SECRET_HEADER, STATUS_PATH,
    ServiceStatus, discard_path, process_action_path, replay_path,
};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// How long a control may wait for a service. A replay is applied by the consumer between
/// its batches, so it can wait for a batch paying a processing delay; past this the page is
/// told the outcome is unknown. Below [`crate::peer::REQUEST_TIMEOUT`], so that a control
/// passed on to a compared system reports that system's answer, not the relay's timeout.
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(8);

/// How long a read for the snapshot (the delays in force) may take: as long as the
/// sampler's other reads.
pub const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// How long connecting to a service may take: it is on this machine or next to it, so
/// anything longer means it is not running.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Bytes of a service's error body kept for the page: an error is a sentence, and a page
/// should not be handed a service's whole answer.
const ERROR_CHARS_MAX: usize = 500;

/// The services' own addresses and the shared secret of their internal routes. Cloning
/// shares it.
#[derive(Clone)]
pub struct ServiceAdmin {
    /// Per service, in [`ServiceName::ALL`] order, the base URL of each of its instances.
    instances: Arc<[Vec<String>; 5]>,
    /// Sent only to the services' own addresses (and their supervisor's), never to the page
    /// or a compared system.
    secret: Arc<str>,
    /// The control routes of `converge up`'s supervisor, which can kill and restart a
    /// service's processes; `None` when the services do not run under one.
    supervisor: Option<Arc<str>>,
    http: reqwest::Client,
}

/// Leaves the secret out, so that logging a configuration never logs it.
impl std::fmt::Debug for ServiceAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAdmin")
            .field("instances", &self.instances)
            .field("supervisor", &self.supervisor)
            .finish_non_exhaustive()
    }
}

/// Why a control did not take effect, as the page is told it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The control does not apply to this service here (nothing to pause in strong mode).
    #[error("{0}")]
    NotApplicable(String),
    /// The service answered with an error of its own (a replay that failed again: `409`;
    /// an unknown dead letter: `404`), passed on with its status.
    #[error("{service} answered {status}: {message}")]
    Refused {
        service: ServiceName,
        status: u16,
        message: String,
    },
    /// The service could not be reached or did not answer in time.
    #[error("{0}")]
    Unreachable(String),
}

impl ControlError {
    /// The status the dashboard answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ControlError::NotApplicable(_) => StatusCode::CONFLICT,
            ControlError::Refused { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            ControlError::Unreachable(_) => StatusCode::BAD_GATEWAY,
        }
    }
}

impl ServiceAdmin {
    /// The services at `url_of(service)` (one base URL, or several separated by commas),
    /// reached with `secret`.
    pub fn new(secret: impl Into<String>, url_of: impl Fn(ServiceName) -> String) -> Self {
        let instances = ServiceName::ALL.map(|service| {
            url_of(service)
                .split(',')
                .map(|url| url.trim().trim_end_matches('/').to_owned())
                .filter(|url| !url.is_empty())
                .collect()
        });
        let secret: String = secret.into();
        Self {
            instances: Arc::new(instances),
            secret: secret.into(),
            supervisor: None,
            http: reqwest::Client::builder()
                .no_proxy()
                .connect_timeout(CONNECT_TIMEOUT)
                .tcp_nodelay(true)
                .build()
                .expect("a client without TLS or proxy settings always builds"),
        }
    }

    /// The same, with the supervisor whose control routes are at `url`.
    pub fn with_supervisor(mut self, url: &str) -> Self {
        self.supervisor = Some(url.trim_end_matches('/').into());
        self
    }

    /// Whether a supervisor can kill and restart the services' processes.
    pub fn has_supervisor(&self) -> bool {
        self.supervisor.is_some()
    }

    /// Kills (`SIGKILL`) or restarts every process of `service` through the supervisor. A
    /// restart answers once each process is healthy again; the call waits
    /// [`CONTROL_TIMEOUT`] for that (the supervisor allows a start 30 s), and past it the page
    /// is told the restart may still be under way.
    pub async fn act_on_processes(
        &self,
        service: ServiceName,
        action: ProcessAction,
    ) -> Result<(), ControlError> {
        let Some(supervisor) = self.supervisor.as_deref() else {
            return Err(ControlError::NotApplicable(
                "the services do not run under `converge up`'s supervisor".into(),
            ));
        };
        let calls = (0..self.instances(service).len()).map(|index| {
            let path = process_action_path(service.as_str(), index, action);
            async move {
                self.send(
                    service,
                    Method::POST,
                    supervisor,
                    &path,
                    None,
                    CONTROL_TIMEOUT,
                )
                .await
                .map(drop)
            }
        });
        futures::future::join_all(calls).await.into_iter().collect()
    }

    /// The base URLs of `service`'s instances.
    pub fn instances(&self, service: ServiceName) -> &[String] {
        &self.instances[index(service)]
    }

    /// Sets `service`'s processing delay on every instance.
    pub async fn set_delay(&self, service: ServiceName, delay_ms: u64) -> Result<(), ControlError> {
        if delay_ms > PROCESSING_DELAY_MS_MAX {
            return Err(ControlError::NotApplicable(format!(
                "a processing delay is at most {PROCESSING_DELAY_MS_MAX} ms"
            )));
        }
        let body = ProcessingDelay { delay_ms };
        self.on_every_instance(service, |base| {
            self.call(
                service,
                Method::POST,
                base,
                PROCESSING_DELAY_PATH,
                Some(&body),
            )
        })
        .await
    }

    /// The processing delay of each service, the largest among its instances; why not, for
    /// a service that did not answer. In [`ServiceName::ALL`] order.
    pub async fn delays(&self) -> Vec<Result<u64, String>> {
        futures::future::join_all(ServiceName::ALL.map(|service| async move {
            let mut largest = 0;
            for base in self.instances(service) {
                let delay: ProcessingDelay = self
                    .get(service, base, PROCESSING_DELAY_PATH, READ_TIMEOUT)
                    .await
                    .map_err(|e| format!("{service}'s processing delay: {e}"))?;
                largest = largest.max(delay.delay_ms);
            }
            Ok(largest)
        }))
        .await
    }

    /// Pauses (or resumes) `service`'s consumers on every instance. A service that consumes
    /// no feed here (Account; every service in strong mode) has nothing to pause: that is an
    /// error, not a silent `204`, so the page never shows a pause that did nothing.
    pub async fn set_paused(&self, service: ServiceName, paused: bool) -> Result<(), ControlError> {
        let path = if paused { PAUSE_PATH } else { RESUME_PATH };
        self.on_every_instance(service, |base| async move {
            let status: ServiceStatus = self
                .get(service, base, STATUS_PATH, CONTROL_TIMEOUT)
                .await?;
            if status.consumers.is_empty() {
                return Err(ControlError::NotApplicable(format!(
                    "{service} consumes no feed in this mode: there is nothing to pause"
                )));
            }
            self.call::<()>(service, Method::POST, base, path, None)
                .await
        })
        .await
    }

    /// Dead letter `id` of `service`, body included.
    pub async fn dead_letter(
        &self,
        service: ServiceName,
        id: i64,
    ) -> Result<DeadLetter, ControlError> {
        let list: DeadLetterList = self
            .on_first_instance(service, |base| {
                self.get(service, base, DEAD_LETTERS_PATH, CONTROL_TIMEOUT)
            })
            .await?;
        list.dead_letters
            .into_iter()
            .find(|letter| letter.id == id)
            .ok_or_else(|| ControlError::Refused {
                service,
                status: StatusCode::NOT_FOUND.as_u16(),
                message: format!("no dead letter {id}"),
            })
    }

    /// Applies dead letter `id` again; it leaves the list if it now applies.
    pub async fn replay(&self, service: ServiceName, id: i64) -> Result<(), ControlError> {
        let path = replay_path(id);
        self.on_first_instance(service, |base| {
            self.call::<()>(service, Method::POST, base, &path, None)
        })
        .await
    }

    /// Removes dead letter `id` unapplied.
    pub async fn discard(&self, service: ServiceName, id: i64) -> Result<(), ControlError> {
        let path = discard_path(id);
        self.on_first_instance(service, |base| {
            self.call::<()>(service, Method::POST, base, &path, None)
        })
        .await
    }

    /// Runs `call` on every instance at once; the first error, if any.
    async fn on_every_instance<'a, F, Fut>(
        &'a self,
        service: ServiceName,
        call: F,
    ) -> Result<(), ControlError>
    where
        F: Fn(&'a str) -> Fut,
        Fut: Future<Output = Result<(), ControlError>>,
    {
        let instances = self.instances(service);
        if instances.is_empty() {
            return Err(no_address(service));
        }
        futures::future::join_all(instances.iter().map(|base| call(base)))
            .await
            .into_iter()
            .collect()
    }

    /// Runs `call` on the first instance that can be reached.
    async fn on_first_instance<'a, T, F, Fut>(
        &'a self,
        service: ServiceName,
        call: F,
    ) -> Result<T, ControlError>
    where
        F: Fn(&'a str) -> Fut,
        Fut: Future<Output = Result<T, ControlError>>,
    {
        let mut last = no_address(service);
        for base in self.instances(service) {
            match call(base).await {
                Err(error @ ControlError::Unreachable(_)) => last = error,
                answered => return answered,
            }
        }
        Err(last)
    }

    async fn get<T: DeserializeOwned>(
        &self,
        service: ServiceName,
        base: &str,
        path: &str,
        timeout: Duration,
    ) -> Result<T, ControlError> {
        let response = self
            .send(service, Method::GET, base, path, None, timeout)
            .await?;
        response.json().await.map_err(|e| {
            ControlError::Unreachable(format!("{service} answered {path} unreadably: {e}"))
        })
    }

    /// A control call whose answer has no body that matters (`204`).
    async fn call<B: Serialize>(
        &self,
        service: ServiceName,
        method: Method,
        base: &str,
        path: &str,
        body: Option<&B>,
    ) -> Result<(), ControlError> {
        let body = body.map(|b| serde_json::to_vec(b).expect("control bodies always serialize"));
        self.send(service, method, base, path, body, CONTROL_TIMEOUT)
            .await
            .map(drop)
    }

    async fn send(
        &self,
        service: ServiceName,
        method: Method,
        base: &str,
        path: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<reqwest::Response, ControlError> {
        let mut request = self
            .http
            .request(method, format!("{base}{path}"))
            .header(SECRET_HEADER, &*self.secret)
            .timeout(timeout);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let response = request.send().await.map_err(|e| {
            ControlError::Unreachable(if e.is_timeout() {
                format!(
                    "{service} did not answer {path} within {} s; it may still act on it",
                    timeout.as_secs()
                )
            } else {
                format!("{service} is unreachable at {base}: {e}")
            })
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        // Services answer errors as `{"error": "..."}`; anything else is shown as it came.
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
            .unwrap_or(text);
        Err(ControlError::Refused {
            service,
            status: status.as_u16(),
            message: message.chars().take(ERROR_CHARS_MAX).collect(),
        })
    }
}

fn index(service: ServiceName) -> usize {
    ServiceName::ALL
        .iter()
        .position(|s| *s == service)
        .expect("ALL names every service")
}

fn no_address(service: ServiceName) -> ControlError {
    ControlError::Unreachable(format!("no address is configured for {service}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_instances_are_split_and_trimmed() {
        let admin = ServiceAdmin::new("a-secret-of-sixteen", |service| match service {
            ServiceName::Stats => "http://127.0.0.1:7005/, http://127.0.0.1:7015,".into(),
            _ => format!("http://127.0.0.1:7000/{service}"),
        });
        assert_eq!(
            admin.instances(ServiceName::Stats),
            ["http://127.0.0.1:7005", "http://127.0.0.1:7015"]
        );
        assert_eq!(
            admin.instances(ServiceName::Order),
            ["http://127.0.0.1:7000/order"]
        );
        assert!(!format!("{admin:?}").contains("secret"));
    }

    #[test]
    fn a_refusal_keeps_the_services_status() {
        let refused = ControlError::Refused {
            service: ServiceName::Stats,
            status: 409,
            message: "the event failed again".into(),
        };
        assert_eq!(refused.status(), StatusCode::CONFLICT);
        assert_eq!(
            ControlError::Unreachable("down".into()).status(),
            StatusCode::BAD_GATEWAY
        );
    }
}
