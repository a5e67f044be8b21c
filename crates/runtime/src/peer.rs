//! Calls to another service. Every call has a timeout and carries the internal secret; the
//! configured network delay is added before it leaves.

use std::time::Duration;

use contracts::internal::SECRET_HEADER;
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
    /// A timeout, an unreachable peer or a 5xx may go away; a 4xx or a body we cannot read
    /// will come back the same.
    pub fn is_retryable(&self) -> bool {
        match self {
            CallError::Timeout { .. } | CallError::Unreachable { .. } => true,
            CallError::Status { status, .. } => *status >= 500,
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

/// Another service, as seen from this one.
#[derive(Debug, Clone)]
pub struct Peer {
    service: String,
    base_url: String,
    http: reqwest::Client,
    secret: String,
    timeout: Duration,
    network_delay: Duration,
}

impl Peer {
    pub fn new(
        service: impl Into<String>,
        base_url: impl Into<String>,
        http: reqwest::Client,
        secret: impl Into<String>,
        timeout: Duration,
        network_delay: Duration,
    ) -> Self {
        Self {
            service: service.into(),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
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
        self.call(self.http.get(self.url(path)), self.timeout).await
    }

    /// A GET that may legitimately take longer than the usual timeout (a long poll).
    pub async fn get_waiting<T: DeserializeOwned>(
        &self,
        path: &str,
        wait: Duration,
    ) -> Result<T, CallError> {
        self.call(self.http.get(self.url(path)), self.timeout + wait)
            .await
    }

    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, CallError> {
        self.call(self.http.post(self.url(path)).json(body), self.timeout)
            .await
    }

    /// A POST with a JSON body whose answer has no body (`204`).
    pub async fn post_body<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<(), CallError> {
        let response = self
            .send(self.http.post(self.url(path)).json(body), self.timeout)
            .await?;
        self.check(response).await.map(drop)
    }

    /// A POST whose answer has no body (`204`).
    pub async fn post_empty(&self, path: &str) -> Result<(), CallError> {
        let response = self
            .send(self.http.post(self.url(path)), self.timeout)
            .await?;
        self.check(response).await.map(drop)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<T, CallError> {
        let response = self.send(request, timeout).await?;
        let response = self.check(response).await?;
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

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<reqwest::Response, CallError> {
        if !self.network_delay.is_zero() {
            tokio::time::sleep(self.network_delay).await;
        }
        request
            .header(SECRET_HEADER, &self.secret)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    self.timeout_error(timeout)
                } else {
                    CallError::Unreachable {
                        service: self.service.clone(),
                        reason: error_chain(&e),
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
