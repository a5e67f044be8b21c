//! The system as separate processes, as `converge up` runs it: several instances of every
//! service over one PostgreSQL database, under load, with instances killed (`SIGKILL`) and
//! started again. Clients retry every failed request under its `Idempotency-Key`, as the
//! answer contract tells them to. Afterwards the checker is clean, every acknowledged order
//! ended as it must, and every key has exactly one order.

mod common;

use std::time::Duration;

use common::retrying::{Load, accounts, assert_outcomes};
use common::*;
use contracts::{Mode, ServiceName};
use converge::up::{Cluster, Part, Plan};
use converge::workload::Client;

/// A cluster of `instances` processes per service on the running test's backends.
async fn start(
    mode: Mode,
    instances: usize,
) -> (Cluster, tempfile::TempDir, converge::system::SystemConfig) {
    let (config, dir) = common::config(mode);
    let mut args = vec![
        "--cron-interval-ms=200".to_owned(),
        "--in-doubt-after-ms=500".to_owned(),
        "--call-timeout-ms=2000".to_owned(),
    ];
    let mut env = vec![(
        "CONVERGE_DATA_DIR".to_owned(),
        dir.path().join("data").display().to_string(),
    )];
    if let storage::Location::Postgres { url, schema_prefix } = &config.location {
        env.push(("CONVERGE_DATABASE_URL".to_owned(), url.clone()));
        args.push(format!("--database-schema-prefix={schema_prefix}"));
    }
    if let runtime::Transport::Nats { url, prefix } = &config.transport {
        env.push(("CONVERGE_NATS_URL".to_owned(), url.clone()));
        args.push("--transport=nats".to_owned());
        args.push(format!("--nats-prefix={prefix}"));
    }
    let plan = Plan {
        binary: env!("CARGO_BIN_EXE_converge").into(),
        mode,
        instances,
        listen: "127.0.0.1:0".parse().unwrap(),
        secret: config.secret.clone(),
        dashboard_token: "a-dashboard-token-for-tests".into(),
        run_dir: dir.path().join("run"),
        args,
        env,
    };
    let cluster = Cluster::start(plan).await.expect("every process starts");
    (cluster, dir, config)
}

/// Two instances of every service under load; one instance of Order, Payment and Stats is
/// killed in the middle, and started again a second later.
async fn two_instances_survive_kills(mode: Mode) {
    let (mut cluster, _dir, config) = start(mode, 2).await;
    let client = Client::new(cluster.url());
    let ids = accounts(&client, 8, 60_000).await;
    let load = Load::start(&client, &ids, 12, Some(240));
    tokio::time::sleep(Duration::from_millis(700)).await;
    let victims = [
        (Part::Service(ServiceName::Order), 0),
        (Part::Service(ServiceName::Payment), 1),
        (Part::Service(ServiceName::Stats), 0),
    ];
    for (part, index) in victims {
        cluster.kill(part, index).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    for (part, index) in victims {
        cluster.restart(part, index, Vec::new()).await.unwrap();
    }
    let outcomes = load.finish().await;
    assert_eq!(outcomes.answered(), 240, "every order got a final answer");
    assert!(!outcomes.acknowledged.is_empty());
    assert_outcomes(&client, mode, &outcomes).await;
    cluster.stop().await;
    clean_up(&config).await;
}

mod two_instances_of_every_service_survive_kills_under_load {
    use super::*;

    macro_rules! on {
        ($name:ident, $backends:ident, $mode:expr) => {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                with_backends(Backends::$backends, two_instances_survive_kills($mode)).await
            }
        };
    }

    on!(strong_postgres, PostgresEmbedded, Mode::Strong);
    on!(queue_postgres_embedded, PostgresEmbedded, Mode::Queue);
    on!(queue_postgres_nats, PostgresNats, Mode::Queue);
    on!(cron_postgres_nats, PostgresNats, Mode::Cron);
}
