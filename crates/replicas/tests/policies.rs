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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_policy_gives_the_standbys_their_roles() {
    let Some(cluster) = cluster(2).await else {
        return;
    };
    let primary = connect(&cluster, 0).await;
    let names = cluster.standby_names();
    for p in Policy::ALL {
        policy::apply(&primary, p, &names).await.unwrap();
        let states = policy::sync_states(&primary).await.unwrap();
        let expected: Vec<(String, String)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), p.expected_state(i).to_string()))
            .collect();
        assert_eq!(states, expected, "{p}");
        let commit: String = primary
            .query_one("SHOW synchronous_commit", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(commit, p.synchronous_commit(), "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_commits_wait_for_any_one_standby() {
    let Some(cluster) = cluster(2).await else {
        return;
    };
    counters(&cluster).await;
    let primary = connect(&cluster, 0).await;
    let (one, two) = (connect(&cluster, 1).await, connect(&cluster, 2).await);
    policy::apply(&primary, Policy::Quorum, &cluster.standby_names())
        .await
        .unwrap();

    // One standby holds back: the other one's apply answers the commit, and reads there see it.
    pause_replay(&one, true).await;
    let (n, _) = bump(&primary).await;
    assert_eq!(
        counter(&two).await.unwrap(),
        n,
        "the standby that applied it sees it"
    );
    assert_eq!(
        counter(&one).await.unwrap(),
        n - 1,
        "the one held back does not"
    );

    // Both hold back: nobody can answer, the commit waits (here, past a client's bound).
    pause_replay(&two, true).await;
    let waited = tokio::time::timeout(Duration::from_millis(300), bump(&primary)).await;
    assert!(
        waited.is_err(),
        "a quorum commit with no standby applying must wait"
    );
    pause_replay(&one, false).await;
    pause_replay(&two, false).await;
    catch_up(&cluster).await;
    let on_primary = counter(&connect(&cluster, 0).await).await.unwrap();
    assert_eq!(
        on_primary,
        n + 1,
        "the waiting commit was on the primary all along"
    );
}
