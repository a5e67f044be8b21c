//! The system as separate processes, as `converge up` runs it: several instances of every
//! service over one PostgreSQL database, under load, with instances killed (`SIGKILL`) and
//! started again. Clients retry every failed request under its `Idempotency-Key`, as the
//! answer contract tells them to. Afterwards the checker is clean, every acknowledged order
//! ended as it must, and every key has exactly one order.
//!
//! **Crashes that crash**: a process armed with a crash point (`FAILPOINTS`) aborts there, as
//! a power cut would stop it — before and after Order's prepare, its decision, its commit and
//! its outbox append; after a participant's prepare and commit; before and after a
//! consumer's apply — under a retrying load; restarted, the system ends with the checker
//! clean and one order per key. Each point fires after a number of passes drawn from a seed:
//! `CONVERGE_CRASH_SEEDS=N` runs N seeds per point (CI runs one).
//!
//! Also `converge up`'s supervisor: a service killed from the dashboard stays down (orders
//! are still acknowledged in queue mode) until it is restarted from the dashboard, and then
//! catches up with nothing lost.

mod common;

use std::time::Duration;

use common::retrying::{Load, accounts, assert_outcomes};
use common::*;
use contracts::internal::{
    PROCESSES_PATH, ProcessAction, ProcessStatus, SECRET_HEADER, process_action_path,
};
use contracts::{Mode, ServiceName};
use converge::supervisor::Supervisor;
use converge::up::{Cluster, Part, Plan};
use converge::workload::Client;

/// A cluster of `instances` processes per service on the running test's backends.
async fn start(
    mode: Mode,
    instances: usize,
) -> (Cluster, tempfile::TempDir, converge::system::SystemConfig) {
    let (plan, dir, config) = plan(mode, instances);
    let cluster = Cluster::start(plan).await.expect("every process starts");
    (cluster, dir, config)
}

/// What [`start`] starts.
fn plan(mode: Mode, instances: usize) -> (Plan, tempfile::TempDir, converge::system::SystemConfig) {
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
    (plan, dir, config)
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

/// `POST` to the dashboard's control route `path`, with the control token.
async fn control(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
) -> reqwest::StatusCode {
    http.post(format!("{base}{path}"))
        .header(dashboard::token::TOKEN_HEADER, token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("the gateway answers")
        .status()
}

/// The supervisor's view of every process, read with `secret`.
async fn processes(http: &reqwest::Client, supervisor: &str, secret: &str) -> Vec<ProcessStatus> {
    let response = http
        .get(format!("{supervisor}{PROCESSES_PATH}"))
        .header(SECRET_HEADER, secret)
        .send()
        .await
        .expect("the supervisor answers");
    assert_eq!(response.status(), 200);
    response.json().await.expect("a list of processes")
}

fn stats_pid(processes: &[ProcessStatus]) -> Option<u32> {
    processes
        .iter()
        .find(|p| p.part == "stats")
        .expect("stats is supervised")
        .pid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_killed_from_the_dashboard_stays_down_until_restarted_from_it() {
    let (plan, _dir, _config) = plan(Mode::Queue, 1);
    let (token, secret) = (plan.dashboard_token.clone(), plan.secret.clone());
    let supervisor = Supervisor::start(plan).await.expect("every process starts");
    let url = supervisor.cluster().lock().await.url();
    let http = reqwest::Client::new();

    // The supervisor's routes need the shared secret; the gateway is not killable.
    let anonymous = http
        .get(format!("{}{PROCESSES_PATH}", supervisor.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let before = processes(&http, supervisor.url(), &secret).await;
    assert_eq!(before.len(), 6, "five services and the gateway: {before:?}");
    assert!(before.iter().all(|p| p.pid.is_some()), "{before:?}");
    let gateway = http
        .post(format!(
            "{}{}",
            supervisor.url(),
            process_action_path("gateway", 0, ProcessAction::Kill)
        ))
        .header(SECRET_HEADER, &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(gateway.status(), 409);

    // Killed from the dashboard (the token is needed), Stats stays down while orders are
    // still acknowledged: queue mode does not wait for it.
    let kill = "/dashboard/api/services/stats/kill";
    assert_eq!(control(&http, &url, kill, "not-the-token").await, 401);
    assert_eq!(control(&http, &url, kill, &token).await, 200);
    assert_eq!(
        stats_pid(&processes(&http, supervisor.url(), &secret).await),
        None
    );
    let client = Client::new(&url);
    let ids = accounts(&client, 3, 60_000).await;
    let outcomes = Load::start(&client, &ids, 3, Some(30)).finish().await;
    assert_eq!(outcomes.acknowledged.len(), 30, "{:?}", outcomes.refused);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        stats_pid(&processes(&http, supervisor.url(), &secret).await),
        None,
        "nothing restarts a killed process but a restart"
    );

    // Restarted from the dashboard, it answers at once and catches up: nothing lost.
    let restart = "/dashboard/api/services/stats/restart";
    assert_eq!(control(&http, &url, restart, &token).await, 200);
    assert!(stats_pid(&processes(&http, supervisor.url(), &secret).await).is_some());
    assert_outcomes(&client, Mode::Queue, &outcomes).await;
    supervisor.stop().await;
}

/// How many seeds each crash point runs (`CONVERGE_CRASH_SEEDS`, 1 by default).
fn crash_seeds() -> u64 {
    std::env::var("CONVERGE_CRASH_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// `service`'s process, armed to abort at `point` after `seed`-many passes, under a retrying
/// load: it must abort there (`SIGABRT`), and once restarted, every key has exactly one
/// order, every acknowledged order settles, and the checker is clean.
async fn crash_at(mode: Mode, service: ServiceName, point: &str) {
    for seed in 0..crash_seeds() {
        let (mut cluster, _dir, config) = start(mode, 1).await;
        let part = Part::Service(service);
        let passes = seed % 3;
        let armed = format!("{point}={passes}*off->return");
        cluster
            .restart(part, 0, vec![("FAILPOINTS".to_owned(), armed.clone())])
            .await
            .expect("the armed process starts");
        let client = Client::new(cluster.url());
        let ids = accounts(&client, 4, 60_000).await;
        let load = Load::start(&client, &ids, 4, None);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = cluster.exited(part, 0).unwrap() {
                break status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{service} armed with {armed} never reached it"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(nix::sys::signal::Signal::SIGABRT as i32),
            "{service} stopped at {point}, not otherwise: {status}"
        );
        cluster
            .restart(part, 0, Vec::new())
            .await
            .expect("it starts again");
        let before = load.acknowledged();
        load.wait_acknowledged(before + 20, "orders after the restart")
            .await;
        let outcomes = load.stop().await;
        assert_outcomes(&client, mode, &outcomes).await;
        cluster.stop().await;
        clean_up(&config).await;
    }
}

mod crashes_that_crash {
    use super::*;

    macro_rules! at {
        ($name:ident, $mode:ident, $service:ident, $point:literal) => {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                crash_at(Mode::$mode, ServiceName::$service, $point).await
            }
        };
    }

    at!(
        strong_order_before_prepare,
        Strong,
        Order,
        "order::before-prepare"
    );
    at!(
        strong_order_after_prepare,
        Strong,
        Order,
        "order::after-prepare"
    );
    at!(
        strong_order_after_decision,
        Strong,
        Order,
        "order::after-decision"
    );
    at!(
        strong_order_after_commit,
        Strong,
        Order,
        "order::after-commit"
    );
    at!(
        strong_payment_after_prepare,
        Strong,
        Payment,
        "participant::after-prepare"
    );
    at!(
        strong_stats_after_commit,
        Strong,
        Stats,
        "participant::after-commit"
    );
    at!(
        queue_order_after_outbox_append,
        Queue,
        Order,
        "order::after-placement"
    );
    at!(
        queue_payment_before_apply,
        Queue,
        Payment,
        "payment::before-apply"
    );
    at!(queue_stats_after_apply, Queue, Stats, "stats::after-apply");
    at!(
        queue_order_after_applying_verdicts,
        Queue,
        Order,
        "order::after-apply"
    );
    at!(
        cron_loyalty_after_apply,
        Cron,
        Loyalty,
        "loyalty::after-apply"
    );
    at!(
        cron_order_after_outbox_append,
        Cron,
        Order,
        "order::after-placement"
    );
}
