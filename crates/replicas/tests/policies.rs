//! Each replication policy against a real primary and standbys started by the test.

mod common;

use std::time::Duration;

use common::*;
use replicas::policy::{self, Policy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_commits_return_at_once_and_standby_reads_can_be_stale() {
    let Some(cluster) = cluster(1).await else {
        return;
    };
    counters(&cluster).await;
    let primary = connect(&cluster, 0).await;
    let standby = connect(&cluster, 1).await;
    policy::apply(&primary, Policy::Async, &cluster.standby_names())
        .await
        .unwrap();

    // A standby that does not replay (as a slow one would not yet have): the commit does not
    // wait for it, and a read there misses it.
    pause_replay(&standby, true).await;
    let (n, _) = bump(&primary).await;
    assert_eq!(n, 1);
    assert_eq!(
        counter(&standby).await.unwrap(),
        0,
        "the standby read is stale"
    );
    assert_eq!(counter(&primary).await.unwrap(), 1);
    pause_replay(&standby, false).await;
    catch_up(&cluster).await;
    assert_eq!(counter(&standby).await.unwrap(), 1, "and catches up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_apply_reads_on_the_standby_see_the_commit_at_once() {
    let Some(cluster) = cluster(1).await else {
        return;
    };
    counters(&cluster).await;
    let primary = connect(&cluster, 0).await;
    let standby = connect(&cluster, 1).await;
    policy::apply(&primary, Policy::Sync, &cluster.standby_names())
        .await
        .unwrap();
    for expected in 1..=50 {
        let (n, _) = bump(&primary).await;
        assert_eq!(n, expected);
        assert_eq!(
            counter(&standby).await.unwrap(),
            n,
            "read right after the commit returned"
        );
    }
}
