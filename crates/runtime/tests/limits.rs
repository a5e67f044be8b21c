//! The server's limits, against real connections: clients that stall half-way are cut off,
//! a flood of requests is shed with `503` and `Retry-After`, and connections past the limit
//! wait instead of being served or refused. The limits are shortened so that the test does not
//! wait out the real ones (seconds); the code is the one every service runs.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use runtime::ApiJson;
use runtime::http::{Limits, serve_with_limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// A server with `limits` and three routes: `POST /echo` reads a JSON body, `GET /hold` waits
/// until `gate` lets it go, `GET /` answers at once.
async fn server(limits: Limits, gate: Arc<Semaphore>) -> (String, CancellationToken) {
    let router = Router::new()
        .route("/", get(|| async { "ok" }))
        .route(
            "/echo",
            post(|ApiJson(body): ApiJson<serde_json::Value>| async move { ApiJson(body) }),
        )
        .route(
            "/hold",
            get(move || {
                let gate = gate.clone();
                async move {
                    let _permit = gate.acquire().await.expect("never closed");
                    "released"
                }
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(serve_with_limits(listener, router, limits, async move {
        stopped.cancelled().await;
    }));
    (addr, stop)
}

/// Reads until the server closes the connection (or `within` passes: `None`); what it sent.
async fn read_until_closed(socket: &mut TcpStream, within: Duration) -> Option<String> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&received).into_owned())
}

const STALLERS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_stall_half_way_are_answered_and_cut_off() {
    let limits = Limits {
        header_timeout: Duration::from_millis(300),
        body_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let (addr, stop) = server(limits, Arc::new(Semaphore::new(0))).await;

    // Half a body: the headers promise 100 bytes, 10 arrive, then nothing.
    let mut half_bodies = Vec::new();
    for _ in 0..STALLERS {
        let mut socket = TcpStream::connect(&addr).await.unwrap();
        socket
            .write_all(
                b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                  content-length: 100\r\n\r\n{\"half\": ",
            )
            .await
            .unwrap();
        half_bodies.push(socket);
    }
    // Half the headers, then nothing.
    let mut half_headers = Vec::new();
    for _ in 0..STALLERS {
        let mut socket = TcpStream::connect(&addr).await.unwrap();
        socket.write_all(b"GET / HTTP/1.1\r\nhost:").await.unwrap();
        half_headers.push(socket);
    }
    // Connected, and never a byte.
    let mut silent = Vec::new();
    for _ in 0..STALLERS {
        silent.push(TcpStream::connect(&addr).await.unwrap());
    }

    // Every one is closed by the server, long before the test gives up on it; a stalled body
    // is told why, as JSON.
    let bound = Duration::from_secs(20);
    for mut socket in half_bodies {
        let answer = read_until_closed(&mut socket, bound)
            .await
            .expect("a stalled body is cut off");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("application/json"), "{answer}");
    }
    for mut socket in half_headers.into_iter().chain(silent) {
        read_until_closed(&mut socket, bound)
            .await
            .expect("stalled headers and silent connections are closed");
    }

    // And the server still serves everyone else.
    let mut socket = TcpStream::connect(&addr).await.unwrap();
    socket
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut socket, bound).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_the_limit_are_shed_with_retry_after_and_nothing_waits_unbounded() {
    let limits = Limits {
        requests_in_flight_max: 4,
        ..Limits::default()
    };
    let gate = Arc::new(Semaphore::new(0));
    let (addr, stop) = server(limits, gate.clone()).await;
    let client = reqwest::Client::new();

    // Four requests held in the handler fill the limit.
    let held: Vec<_> = (0..4)
        .map(|_| {
            let (client, url) = (client.clone(), format!("http://{addr}/hold"));
            tokio::spawn(async move { client.get(url).send().await.unwrap().status() })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let shed = loop {
        let response = client.get(format!("http://{addr}/")).send().await.unwrap();
        if response.status() == 503 {
            break response;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a request past the limit is shed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(shed.headers()["retry-after"], "1");
    let body: serde_json::Value = shed.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");

    // Once the held requests finish, requests are served again.
    gate.add_permits(4);
    for request in held {
        assert_eq!(request.await.unwrap(), 200);
    }
    let response = client.get(format!("http://{addr}/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_wait_until_one_closes() {
    let limits = Limits {
        connections_max: 4,
        ..Limits::default()
    };
    let (addr, stop) = server(limits, Arc::new(Semaphore::new(0))).await;
    // Four idle connections take every slot.
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fifth = TcpStream::connect(&addr).await.unwrap();
    fifth
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        read_until_closed(&mut fifth, Duration::from_millis(500)).await,
        None,
        "a fifth connection waits in the backlog"
    );
    // One closes: the fifth is served.
    drop(idle.pop());
    let answer = read_until_closed(&mut fifth, Duration::from_secs(10))
        .await
        .expect("served once a slot frees");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    stop.cancel();
}
