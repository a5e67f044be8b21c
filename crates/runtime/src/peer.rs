//! Calls to another service. Every call has a timeout and carries the internal secret; the
//! configured network delay is added before it leaves.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use contracts::internal::SECRET_HEADER;
use reqwest::Method;

use crate::config::Delay;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a call to another service failed, and whether trying again can help.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("{service} did not answer within {timeout_ms} ms")]
    Timeout { service: String, timeout_ms: u128 },
    #[error("{service} is unreachable: {reason}")]
    Unreachable { service: String, reason: String },
    #[error("{service} answered {status}: {body}")]
    Status {
        service: String,
        status: u16,
        body: String,
    },
    #[error("{service} answered with a body that could not be read: {reason}")]
    Decode { service: String, reason: String },
}

impl CallError {
    /// A timeout, an unreachable peer, a 5xx, or a peer that refuses our credentials (an
    /// operator's typo, fixed by a restart) may go away; another 4xx or a body we cannot read
    /// will come back the same.
    pub fn is_retryable(&self) -> bool {
        match self {
            CallError::Timeout { .. } | CallError::Unreachable { .. } => true,
            CallError::Status { status, .. } => {
                *status >= 500 || *status == 401 || *status == 403 || *status == 429
            }
            CallError::Decode { .. } => false,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Another service, as seen from this one: one instance or several (calls go round them,
/// and on to the next one when an instance cannot be reached).
#[derive(Clone)]
pub struct Peer {
    service: String,
    base_urls: Arc<[String]>,
    /// The instance the next call goes to first.
    next: Arc<AtomicUsize>,
    http: reqwest::Client,
    secret: Arc<str>,
    timeout: Duration,
    network_delay: Delay,
}

/// Leaves the secret out, so that logging a peer never logs it.
impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("service", &self.service)
            .field("base_urls", &self.base_urls)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Peer {
    /// `base_urls` is one URL, or several separated by commas.
    pub fn new(
        service: impl Into<String>,
        base_urls: &str,
        http: reqwest::Client,
        secret: impl Into<Arc<str>>,
        timeout: Duration,
        network_delay: Delay,
    ) -> Self {
        let base_urls: Arc<[String]> = base_urls
            .split(',')
            .map(|url| url.trim().trim_end_matches('/').to_owned())
            .filter(|url| !url.is_empty())
            .collect();
        Self {
            service: service.into(),
            base_urls,
            next: Arc::new(AtomicUsize::new(0)),
            http,
            secret: secret.into(),
            timeout,
            network_delay,
        }
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CallError> {
        let response = self.send(Method::GET, path, None, self.timeout).await?;
        self.decode(response, self.timeout).await
    }

    /// A GET that may legitimately take longer than the usual timeout (a long poll).
    pub async fn get_waiting<T: DeserializeOwned>(
        &self,
        path: &str,
        wait: Duration,
    ) -> Result<T, CallError> {
        let timeout = self.timeout + wait;
        let response = self.send(Method::GET, path, None, timeout).await?;
        self.decode(response, timeout).await
    }

    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, CallError> {
        let body = serde_json::to_vec(body).expect("request bodies always serialize");
        let response = self
            .send(Method::POST, path, Some(body), self.timeout)
            .await?;
        self.decode(response, self.timeout).await
    }

    /// A POST with a JSON body whose answer has no body (`204`).
    pub async fn post_body<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<(), CallError> {
        let body = serde_json::to_vec(body).expect("request bodies always serialize");
        self.send(Method::POST, path, Some(body), self.timeout)
            .await
            .map(drop)
    }

    /// A POST whose answer has no body (`204`).
    pub async fn post_empty(&self, path: &str) -> Result<(), CallError> {
        self.send(Method::POST, path, None, self.timeout)
            .await
            .map(drop)
    }

    /// Sends to one instance after another until one can be reached; answers with the first
    /// response (whatever its status) or the last failure.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<reqwest::Response, CallError> {
        self.network_delay.pay().await;
        let count = self.base_urls.len().max(1);
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let mut last_error = None;
        for attempt in 0..count {
            let Some(base) = self.base_urls.get((first + attempt) % count) else {
                break;
            };
            let mut request = self
                .http
                .request(method.clone(), format!("{base}{path}"))
                .header(SECRET_HEADER, &*self.secret)
                .timeout(timeout);
            if let Some(body) = &body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            match request.send().await {
                Ok(response) => return self.check(response).await,
                // Only a refused connection is surely not delivered: anything else may have
                // reached the instance, and sending it again elsewhere would do it twice.
                Err(error) if error.is_connect() => last_error = Some(self.unreachable(&error)),
                Err(error) if error.is_timeout() => return Err(self.timeout_error(timeout)),
                Err(error) => return Err(self.unreachable(&error)),
            }
        }
        Err(last_error.unwrap_or_else(|| CallError::Unreachable {
            service: self.service.clone(),
            reason: "no address configured".into(),
        }))
    }

    async fn decode<T: DeserializeOwned>(
        &self,
        response: reqwest::Response,
        timeout: Duration,
    ) -> Result<T, CallError> {
        response.json::<T>().await.map_err(|e| {
            if e.is_timeout() {
                self.timeout_error(timeout)
            } else {
                CallError::Decode {
                    service: self.service.clone(),
                    reason: e.to_string(),
                }
            }
        })
    }

    async fn check(&self, response: reqwest::Response) -> Result<reqwest::Response, CallError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        Err(CallError::Status {
            service: self.service.clone(),
            status: status.as_u16(),
            body,
        })
    }

    fn unreachable(&self, error: &reqwest::Error) -> CallError {
        CallError::Unreachable {
            service: self.service.clone(),
            reason: error_chain(error),
        }
    }

    fn timeout_error(&self, timeout: Duration) -> CallError {
        CallError::Timeout {
            service: self.service.clone(),
            timeout_ms: timeout.as_millis(),
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The HTTP client every peer of a process shares: one connection pool, kept-alive
/// connections, no proxy from the environment (every peer is on this machine or a private
/// network, never behind a user's HTTP proxy).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_idle_timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .build()
        .expect("a client without TLS or proxy settings always builds")
}
