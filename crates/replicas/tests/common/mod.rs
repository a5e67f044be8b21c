//! What every test against a real cluster shares: finding PostgreSQL (a failure under CI, a
//! skip elsewhere), a throw-away primary with standbys, connections, and the lab's table.

#![allow(dead_code)] // each test binary uses its own part

use std::path::PathBuf;
use std::time::Duration;

use replicas::cluster::{OwnedCluster, PgBin};
use replicas::db;
use tokio_postgres::Client;

/// The server programs, or `None` (skip) when they are missing outside CI. Under CI a missing
/// PostgreSQL is a failure: the tests of each policy must run there.
pub fn pg_bin() -> Option<PgBin> {
    let explicit = std::env::var_os("CONVERGE_PG_BIN").map(PathBuf::from);
    match PgBin::find(explicit.as_deref()) {
        Ok(bin) => Some(bin),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("under CI PostgreSQL is required: {e}")
        }
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

/// A fresh primary with `standbys` hot standbys, on free ports in a temporary directory,
/// stopped and removed when dropped. `None`: PostgreSQL is missing (see [`pg_bin`]).
pub async fn cluster(standbys: usize) -> Option<OwnedCluster> {
    let bin = pg_bin()?;
    let cluster =
        tokio::task::spawn_blocking(move || OwnedCluster::temporary(bin, standbys, false))
            .await
            .unwrap()
            .expect("a temporary cluster starts");
    cluster
        .wait_streaming(Duration::from_secs(30))
        .await
        .expect("the standbys stream");
    Some(cluster)
}

/// A connection to node `i` (0 is the primary).
pub async fn connect(cluster: &OwnedCluster, i: usize) -> Client {
    db::connect(&cluster.conninfo(i)).await.expect("connects")
}

/// Creates the counters table on the primary and waits until every standby has it.
pub async fn counters(cluster: &OwnedCluster) {
    let primary = connect(cluster, 0).await;
    primary
        .batch_execute(
            "CREATE TABLE counters (id int PRIMARY KEY, n bigint NOT NULL);
             INSERT INTO counters VALUES (1, 0);",
        )
        .await
        .unwrap();
    catch_up(cluster).await;
}

/// Waits until every standby has replayed what the primary has written.
pub async fn catch_up(cluster: &OwnedCluster) {
    let primary = connect(cluster, 0).await;
    let target = replicas::read::wal_lsn(&primary).await.unwrap();
    for i in 1..cluster.nodes.len() {
        let standby = connect(cluster, i).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while replicas::read::replay_lsn(&standby).await.unwrap() < target {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} caught up",
                cluster.nodes[i].name
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Adds one to the counter on the primary; returns the new value and the write's token.
pub async fn bump(primary: &Client) -> (i64, replicas::Lsn) {
    let n: i64 = primary
        .query_one(
            "UPDATE counters SET n = n + 1 WHERE id = 1 RETURNING n",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    (n, replicas::read::write_token(primary).await.unwrap())
}

/// The counter as `client`'s node sees it.
pub async fn counter(client: &Client) -> Result<i64, tokio_postgres::Error> {
    Ok(client
        .query_one("SELECT n FROM counters WHERE id = 1", &[])
        .await?
        .get(0))
}

/// Pauses (`true`) or resumes replay on a standby: a standby that stays behind on purpose.
pub async fn pause_replay(standby: &Client, pause: bool) {
    let sql = if pause {
        "SELECT pg_wal_replay_pause()"
    } else {
        "SELECT pg_wal_replay_resume()"
    };
    standby.execute(sql, &[]).await.unwrap();
}
