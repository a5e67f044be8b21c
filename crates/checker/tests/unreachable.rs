//! `check` and `wait_quiet` against an address where nothing listens: an error naming the
//! URL, not a report.

use std::time::Duration;

use checker::{CheckError, CheckOptions, check};

#[tokio::test]
async fn an_unreachable_system_is_an_error_naming_the_url() {
    // Bind then drop a listener: the port is free and, for a moment, nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let result = check(&reqwest::Client::new(), &base, &CheckOptions::default()).await;
    match result {
        Err(CheckError::Unreachable { url, detail }) => {
            // The first read is /progress, before any account.
            assert_eq!(url, format!("{base}/progress"));
            assert!(!detail.is_empty());
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_bad_base_url_is_an_error_before_any_request() {
    let result = check(
        &reqwest::Client::new(),
        "not a url",
        &CheckOptions::default(),
    )
    .await;
    assert!(
        matches!(result, Err(CheckError::BaseUrl { ref url, .. }) if url == "not a url"),
        "{result:?}"
    );
}

#[test]
fn default_options_expect_a_settled_system_read_at_once_eight_accounts_at_a_time() {
    let options = CheckOptions::default();
    assert!(options.expect_settled);
    assert!(options.acknowledged.is_empty());
    assert_eq!(options.concurrency, 8);
    assert!(options.top_ups.is_empty());
    assert_eq!(options.wait_quiet, None);
}

#[tokio::test]
async fn waiting_for_quiet_on_an_unreachable_system_names_why_when_the_time_is_up() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let result =
        checker::wait_quiet(&reqwest::Client::new(), &base, Duration::from_millis(50)).await;
    match result {
        Err(error @ CheckError::NotQuiet { .. }) => {
            let shown = error.to_string();
            assert!(
                shown.starts_with("the system did not become quiet within "),
                "{shown}"
            );
            assert!(shown.contains("/progress did not answer"), "{shown}");
        }
        other => panic!("expected NotQuiet, got {other:?}"),
    }
}
