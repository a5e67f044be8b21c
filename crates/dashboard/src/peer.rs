//! Following a second system: `/dashboard?compare=http://127.0.0.1:8081`.
//!
//! The page asks its own server for everything, so it needs no cross-origin access: a request
//! to `/dashboard/events` or `/dashboard/api/…` with `?peer=URL` is passed on to the same
//! path on the other system's dashboard, and its answer (an event stream included, chunk by
//! chunk) comes back unchanged. The other system computes its own snapshots and runs its own
//! load, so the slider sets both and each measures itself.
//!
//! Only loopback addresses are followed (`127.0.0.0/8`, `::1`, `localhost`): the dashboard
//! is for systems on this machine, and a server that fetched any URL a page names would let
//! that page reach whatever the server can.
//!
//! The other system's control token is its own; the page sends it (`#compare_token=…`, or
//! the page's own token when both systems were started with the same
//! `CONVERGE_DASHBOARD_TOKEN`) and this server passes it on without reading it.

use std::net::IpAddr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use reqwest::Url;
use tokio_util::sync::CancellationToken;

use crate::token::TOKEN_HEADER;

/// How long connecting to the other system may take: it is on this machine, so anything
/// longer means it is not running.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a passed-on control or timeline request may take. Event streams have no such
/// limit: they last as long as the page is open.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Body of a passed-on request at most: control bodies are a few numbers.
pub const BODY_BYTES_MAX: usize = 4 * 1024;

/// The query parameter that names the other system.
pub const PEER_PARAM: &str = "peer";

/// The other system's base URL (`http://host:port`), if `raw` names a system on this
/// machine; otherwise why not.
pub fn parse_loopback(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if url.scheme() != "http" {
        return Err(format!(
            "{raw:?}: only http:// systems on this machine can be followed"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{raw:?}: a URL with credentials is not followed"));
    }
    if url.query().is_some() || url.fragment().is_some() || url.path() != "/" {
        return Err(format!(
            "{raw:?}: give the system's address only, like http://127.0.0.1:8081"
        ));
    }
    let loopback = url.host_str().is_some_and(|host| {
        host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    if !loopback {
        return Err(format!(
            "{raw:?}: only systems on this machine (127.0.0.1, ::1, localhost) can be followed"
        ));
    }
    Ok(url)
}

/// The HTTP client for the other system: no overall timeout (event streams are long), a
/// short connect timeout, no proxy (loopback only).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .build()
        .expect("a client without TLS or proxy settings always builds")
}

/// A request to pass on to the other system.
#[derive(Debug)]
pub struct Forward {
    pub method: Method,
    /// The path and query to ask for there, without [`PEER_PARAM`].
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// An event stream: no overall timeout.
    pub stream: bool,
}

/// Passes `forward` on to `peer` and streams the answer back. The answer's body ends when
/// `stop` is cancelled, so that a server shutting down is not held open by a page that is
/// still watching.
pub async fn pass_on(
    http: &reqwest::Client,
    peer: &Url,
    forward: Forward,
    stop: CancellationToken,
) -> Response {
    let base = peer.as_str().trim_end_matches('/');
    let mut request = http.request(forward.method, format!("{base}{}", forward.path_and_query));
    // Only what the dashboard's own routes read; never cookies or other credentials.
    for name in [
        TOKEN_HEADER,
        header::CONTENT_TYPE.as_str(),
        header::ACCEPT.as_str(),
    ] {
        if let Some(value) = forward.headers.get(name) {
            request = request.header(name, value);
        }
    }
    if !forward.stream {
        request = request.timeout(REQUEST_TIMEOUT);
    }
    let response = match request.body(forward.body).send().await {
        Ok(response) => response,
        Err(error) => {
            return crate::error(
                StatusCode::BAD_GATEWAY,
                format!("the compared system at {base} did not answer: {error}"),
            );
        }
    };
    let status =
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut answer = Response::builder().status(status);
    for name in [header::CONTENT_TYPE, header::CACHE_CONTROL] {
        let value = response
            .headers()
            .get(name.as_str())
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok());
        if let Some(value) = value {
            answer = answer.header(name, value);
        }
    }
    let chunks = futures::stream::unfold(response, |mut response| async move {
        match response.chunk().await {
            Ok(Some(chunk)) => Some((Ok::<Bytes, reqwest::Error>(chunk), response)),
            Ok(None) => None,
            Err(error) => Some((Err(error), response)),
        }
    })
    .take_until(stop.cancelled_owned());
    answer
        .body(Body::from_stream(chunks))
        .unwrap_or_else(|e| crate::error(StatusCode::BAD_GATEWAY, e.to_string()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systems_on_this_machine_are_followed() {
        for ok in [
            "http://127.0.0.1:8081",
            "http://127.0.0.1:8081/",
            "http://127.8.9.1:80",
            "http://localhost:8081",
            "http://[::1]:8081",
        ] {
            assert!(parse_loopback(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn anything_else_is_refused_with_a_reason() {
        for bad in [
            "http://10.0.0.1:8081",
            "http://example.com",
            "https://127.0.0.1:8081",
            "file:///etc/passwd",
            "http://user:pw@127.0.0.1:8081",
            "http://127.0.0.1:8081/internal/status",
            "http://127.0.0.1:8081?x=1",
            "127.0.0.1:8081",
            "http://localhost.example.com",
            "http://0.0.0.0:8081",
        ] {
            let error = parse_loopback(bad).expect_err(bad);
            assert!(!error.is_empty());
        }
    }
}
