//! Session guarantees against a real primary and asynchronous standbys: each holds with the
//! token, and without it the violation happens and is detected.

mod common;

use std::time::Duration;

use common::*;
use futures::future::BoxFuture;
use replicas::policy::{self, Policy};
use replicas::read::{self, Nodes, Served};
use replicas::{Guarantees, ReadFrom, ReadPolicy, Session, Target};
use tokio_postgres::Client;

/// Reads the counter under `session`.
async fn read_counter(
    nodes: &Nodes,
    policy: &ReadPolicy,
    session: &mut Session,
    turn: usize,
) -> Served<i64> {
    read::read(
        nodes,
        policy,
        session,
        turn,
        |c: &Client| -> BoxFuture<'_, _> { Box::pin(counter(c)) },
    )
    .await
    .unwrap()
}

async fn nodes(cluster: &replicas::cluster::OwnedCluster) -> Nodes {
    let mut standbys = Vec::new();
    for i in 1..cluster.nodes.len() {
        standbys.push(connect(cluster, i).await);
    }
    Nodes::new(connect(cluster, 0).await, standbys)
}

fn waiting_up_to(ms: u64) -> ReadPolicy {
    ReadPolicy {
        from: ReadFrom::Replicas,
        wait_max: Duration::from_millis(ms),
        poll_interval: Duration::from_millis(1),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_your_writes_holds_with_the_token_and_is_violated_without() {
    let Some(cluster) = cluster(1).await else {
        return;
    };
    counters(&cluster).await;
    let primary = connect(&cluster, 0).await;
    policy::apply(&primary, Policy::Async, &cluster.standby_names())
        .await
        .unwrap();
    let standby = connect(&cluster, 1).await;
    pause_replay(&standby, true).await;
    let (n, token) = bump(&primary).await;

    // Without the guarantee the read goes to the standby, which lacks the write.
    let mut off = Session::new(Guarantees::NONE);
    off.wrote(token);
    let served = read_counter(&nodes(&cluster).await, &waiting_up_to(50), &mut off, 0).await;
    assert_eq!(served.target, Target::Replica(0));
    assert!(
        served.value < n,
        "a read-your-writes violation, detected: {} < {n}",
        served.value
    );

    // With it, the standby does not get there within the bound: the primary answers.
    let ryw = Guarantees {
        read_your_writes: true,
        monotonic_reads: false,
    };
    let mut on = Session::new(ryw);
    on.wrote(token);
    let served = read_counter(&nodes(&cluster).await, &waiting_up_to(50), &mut on, 0).await;
    assert_eq!(
        (served.target, served.value, served.fell_back),
        (Target::Primary, n, true)
    );
    assert!(
        served.waited >= Duration::from_millis(50),
        "waited its bound: {:?}",
        served.waited
    );

    // And when the standby catches up within the bound, it serves the read after the wait.
    // Replay resumes once the read has found the standby behind (it has polled it).
    let nodes = std::sync::Arc::new(nodes(&cluster).await);
    let reader = nodes.clone();
    let read =
        tokio::spawn(
            async move { read_counter(&reader, &waiting_up_to(30_000), &mut on, 0).await },
        );
    while nodes.views()[0].replayed.is_none() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    pause_replay(&standby, false).await;
    let served = read.await.unwrap();
    assert_eq!((served.target, served.value), (Target::Replica(0), n));
    assert!(served.polls > 1 && !served.waited.is_zero(), "{served:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monotonic_reads_hold_across_replicas_with_the_token() {
    let Some(cluster) = cluster(2).await else {
        return;
    };
    counters(&cluster).await;
    let primary = connect(&cluster, 0).await;
    policy::apply(&primary, Policy::Async, &cluster.standby_names())
        .await
        .unwrap();
    let behind = connect(&cluster, 2).await;
    pause_replay(&behind, true).await;
    let (n, token) = bump(&primary).await;
    // The first standby has the write, the second does not.
    let ahead = connect(&cluster, 1).await;
    while read::replay_lsn(&ahead).await.unwrap() < token {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    // Without the guarantee: the first read (standby 1) sees it, the next (standby 2) does not.
    let nodes_off = nodes(&cluster).await;
    let mut off = Session::new(Guarantees::NONE);
    let first = read_counter(&nodes_off, &waiting_up_to(50), &mut off, 0).await;
    let second = read_counter(&nodes_off, &waiting_up_to(50), &mut off, 1).await;
    assert_eq!((first.target, first.value), (Target::Replica(0), n));
    assert_eq!(second.target, Target::Replica(1));
    assert!(
        second.value < first.value,
        "a monotonic-read violation, detected"
    );

    // With it (and no write of its own), the second read may not go back in time.
    let mr = Guarantees {
        read_your_writes: false,
        monotonic_reads: true,
    };
    let nodes_on = nodes(&cluster).await;
    let mut on = Session::new(mr);
    let first = read_counter(&nodes_on, &waiting_up_to(50), &mut on, 0).await;
    assert!(
        on.last_read().is_some_and(|l| l >= token),
        "the session carries what it saw"
    );
    let second = read_counter(&nodes_on, &waiting_up_to(50), &mut on, 1).await;
    assert_eq!(first.value, n);
    assert_eq!(
        (second.target, second.value),
        (Target::Primary, n),
        "not the stale standby"
    );

    pause_replay(&behind, false).await;
}
