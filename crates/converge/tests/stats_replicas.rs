//! Stats reading from a PostgreSQL hot standby, against a real primary and standby: a
//! strong-mode order's answer carries a read token, and a Stats read that presents it sees the
//! order even while the standby is behind (read-your-writes); a read that presents the token
//! of an earlier read never sees less (monotonic reads). Without a token, a lagging standby
//! answers stale: the reason for the token.

mod common;

use std::time::Duration;

use contracts::Mode;
use contracts::internal::{READ_TOKEN_HEADER, SERVED_BY_HEADER};
use replicas::cluster::{OwnedCluster, PgBin};
use storage::replication::{ReadFrom, ReadPolicy};

/// A primary with one standby, or `None` (skip) when PostgreSQL's programs are missing outside
/// CI; under CI their absence is a failure.
async fn cluster() -> Option<OwnedCluster> {
    let bin = match PgBin::find(None) {
        Ok(bin) => bin,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("under CI PostgreSQL is required: {e}")
        }
        Err(e) => {
            eprintln!("skipped: {e}");
            return None;
        }
    };
    let cluster = tokio::task::spawn_blocking(move || OwnedCluster::temporary(bin, 1, false))
        .await
        .unwrap()
        .expect("a primary and a standby start");
    cluster
        .wait_streaming(Duration::from_secs(30))
        .await
        .expect("the standby streams");
    Some(cluster)
}

/// Runs `sql` on node `i` of the cluster.
async fn on_node(cluster: &OwnedCluster, i: usize, sql: &str) {
    let client = replicas::db::connect(&cluster.conninfo(i))
        .await
        .expect("connects");
    client.batch_execute(sql).await.expect("runs");
}

/// What a Stats read answered: the status, the node that served it and the token it carries.
struct Read {
    status: u16,
    served_by: String,
    token: Option<String>,
}

async fn read_order(system: &common::TestSystem, order_id: &str, token: Option<&str>) -> Read {
    let mut request = system
        .client
        .http()
        .get(format!("{}/stats/orders/{order_id}", system.client.base()));
    if let Some(token) = token {
        request = request.header(READ_TOKEN_HEADER, token);
    }
    let response = request.send().await.expect("Stats answers");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Read {
        status: response.status().as_u16(),
        served_by: header(SERVED_BY_HEADER).unwrap_or_default(),
        token: header(READ_TOKEN_HEADER),
    }
}

/// Places a strong-mode order and returns its id and the read token of its answer.
async fn place(system: &common::TestSystem, account_id: &str) -> (String, String) {
    let response = system
        .client
        .http()
        .post(format!("{}/orders", system.client.base()))
        .json(&common::order_request(account_id, &[("soup", 1, 500)]))
        .send()
        .await
        .expect("Order answers");
    assert_eq!(
        response.status().as_u16(),
        201,
        "a strong-mode order is placed"
    );
    let token = response
        .headers()
        .get(READ_TOKEN_HEADER)
        .expect("a strong-mode answer carries Stats' read token when Stats has standbys")
        .to_str()
        .unwrap()
        .to_owned();
    let order: contracts::api::Order = response.json().await.unwrap();
    (order.id, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_token_gives_read_your_writes_and_monotonic_reads_on_a_lagging_standby() {
    let Some(cluster) = cluster().await else {
        return;
    };
    let (mut config, dir) = common::config(Mode::Strong);
    config.location = storage::Location::Postgres {
        url: cluster.url(0),
        schema_prefix: common::unique_prefix(),
    };
    config.stats_standbys = vec![cluster.url(1)];
    config.stats_read_policy = ReadPolicy {
        from: ReadFrom::Replicas,
        wait_max: Duration::from_millis(100),
        ..ReadPolicy::default()
    };
    let system = common::spawn_with(config, Some(dir)).await;
    let account = system.account_with(100_000).await;

    // With the standby replaying, a read with the order's token is served there and sees it.
    let (first, token) = place(&system, &account.id).await;
    let read = read_order(&system, &first, Some(&token)).await;
    assert_eq!(read.status, 200, "read-your-writes: the order is seen");
    assert_eq!(
        read.served_by, "standby-0",
        "a standby that keeps up serves it"
    );

    // The standby stops replaying: it falls behind every write from now on.
    on_node(&cluster, 1, "SELECT pg_wal_replay_pause()").await;
    let (second, token) = place(&system, &account.id).await;

    // Without a token, the standby answers what it has: not yet the order.
    let stale = read_order(&system, &second, None).await;
    assert_eq!(
        stale.status, 404,
        "a lagging standby does not have the order yet"
    );
    assert_eq!(stale.served_by, "standby-0");

    // With the token, the read waits its bound for the standby, then goes to the primary.
    let read = read_order(&system, &second, Some(&token)).await;
    assert_eq!(read.status, 200, "read-your-writes on a lagging standby");
    assert_eq!(read.served_by, "primary");
    let seen = read
        .token
        .expect("a read answers with the token of what it reflects");

    // Monotonic reads: the token of that read keeps the next one from going back in time.
    let again = read_order(&system, &second, Some(&seen)).await;
    assert_eq!(
        again.status, 200,
        "a later read never sees less than an earlier one"
    );

    // Replay resumes: the standby catches up and serves token-carrying reads again.
    on_node(&cluster, 1, "SELECT pg_wal_replay_resume()").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let read = read_order(&system, &second, Some(&seen)).await;
        assert_eq!(read.status, 200);
        if read.served_by == "standby-0" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the standby takes reads again once it has caught up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A token that is not one is refused, with a reason.
    let bad = system
        .client
        .http()
        .get(format!("{}/stats", system.client.base()))
        .header(READ_TOKEN_HEADER, "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert!(
        body.to_string().contains(READ_TOKEN_HEADER),
        "the error names the header: {body}"
    );

    system.stop().await;
}
