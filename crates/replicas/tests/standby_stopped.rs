//! Availability against consistency: a standby stopped under each policy.

mod common;

use std::time::Duration;

use common::*;
use replicas::cluster::StopMode;
use replicas::policy::{self, Policy};
use tokio_postgres::NoTls;

async fn stop(cluster: &replicas::cluster::OwnedCluster, i: usize) {
    let c = (**cluster).clone();
    tokio::task::spawn_blocking(move || c.stop_node(i, StopMode::Fast))
        .await
        .unwrap()
        .unwrap();
}

async fn start(cluster: &replicas::cluster::OwnedCluster, i: usize) {
    let c = (**cluster).clone();
    tokio::task::spawn_blocking(move || c.start_node(i))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_standby_makes_synchronous_commits_wait_and_async_ones_go_on() {
    let Some(cluster) = cluster(1).await else {
        return;
    };
    counters(&cluster).await;
    let primary = connect(&cluster, 0).await;
    let names = cluster.standby_names();
    policy::apply(&primary, Policy::Sync, &names).await.unwrap();
    stop(&cluster, 1).await;

    // Synchronous: the commit waits for the standby; the client gives up after its bound and
    // cancels. The commit is on the primary all the same, never confirmed replicated.
    let writer = connect(&cluster, 0).await;
    let cancel = writer.cancel_token();
    let write = writer.query_one(
        "UPDATE counters SET n = n + 1 WHERE id = 1 RETURNING n",
        &[],
    );
    tokio::pin!(write);
    let bounded = tokio::time::timeout(Duration::from_millis(500), &mut write).await;
    assert!(
        bounded.is_err(),
        "a synchronous commit without its standby must wait"
    );
    cancel.cancel_query(NoTls).await.unwrap();
    let after_cancel = write
        .await
        .expect("the cancelled wait returns the local commit");
    assert_eq!(after_cancel.get::<_, i64>(0), 1);
    assert_eq!(
        counter(&primary).await.unwrap(),
        1,
        "committed on the primary"
    );

    // Asynchronous: the same stopped standby holds nobody up.
    policy::apply(&primary, Policy::Async, &names)
        .await
        .unwrap();
    for expected in 2..=21 {
        let answered = tokio::time::timeout(Duration::from_secs(5), bump(&primary)).await;
        assert_eq!(answered.expect("an async commit does not wait").0, expected);
    }

    // Restarted, the standby catches up through its slot: nothing acknowledged is lost.
    start(&cluster, 1).await;
    catch_up(&cluster).await;
    assert_eq!(counter(&connect(&cluster, 1).await).await.unwrap(), 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_and_first_go_on_with_one_standby_stopped() {
    let Some(cluster) = cluster(2).await else {
        return;
    };
    counters(&cluster).await;
    let primary = connect(&cluster, 0).await;
    let names = cluster.standby_names();
    stop(&cluster, 1).await;
    let mut expected = 0;
    for p in [Policy::Quorum, Policy::First] {
        policy::apply(&primary, p, &names).await.unwrap();
        for _ in 0..10 {
            expected += 1;
            let answered = tokio::time::timeout(Duration::from_secs(5), bump(&primary)).await;
            assert_eq!(
                answered.expect("the other standby answers").0,
                expected,
                "{p}"
            );
            // ... and having applied it, it shows it.
            assert_eq!(
                counter(&connect(&cluster, 2).await).await.unwrap(),
                expected,
                "{p}"
            );
        }
    }
    start(&cluster, 1).await;
    catch_up(&cluster).await;
    assert_eq!(
        counter(&connect(&cluster, 1).await).await.unwrap(),
        expected
    );
}
