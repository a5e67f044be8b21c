//! `check` against an address where nothing listens: an error naming the URL, not a report.

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
            assert!(url.starts_with(&format!("{base}/accounts?")), "{url}");
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
fn default_options_expect_a_settled_system_and_read_eight_accounts_at_a_time() {
    let options = CheckOptions::default();
    assert!(options.expect_settled);
    assert!(options.acknowledged.is_empty());
    assert_eq!(options.concurrency, 8);
}
