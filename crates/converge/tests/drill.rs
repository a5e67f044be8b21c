//! `converge drill` end to end on the default backends (SQLite files, the embedded feed): in
//! each mode, a few real faults with short windows (a crash point included: the test binary
//! has them). Nothing acknowledged is lost or counted
//! twice (0 violations), each fault was in force while it lasted, and after it the system
//! agreed again with no process restarted beyond the fault's own.

use std::time::Duration;

use contracts::{Mode, ServiceName};
use converge::drill::fault::{Fault, Kind};
use converge::drill::{self, Plan, Row};

fn plan(mode: Mode, faults: Vec<Fault>, out: &std::path::Path) -> Plan {
    Plan {
        command: "tests/drill.rs".into(),
        binary: env!("CARGO_BIN_EXE_converge").into(),
        modes: vec![mode],
        faults,
        rate: 40,
        accounts: 10,
        seed: 7,
        steady: Duration::from_millis(700),
        window: Duration::from_millis(2_000),
        agree_timeout: Duration::from_secs(60),
        backends: converge::settings::Backends::defaults(),
        args: vec![
            "--cron-interval-ms=200".into(),
            "--in-doubt-after-ms=500".into(),
            "--call-timeout-ms=1000".into(),
        ],
        out: out.to_owned(),
    }
}

const fn fault(kind: Kind, target: ServiceName) -> Fault {
    Fault { kind, target }
}

/// Runs the faults in `mode`, asserts what every fault must end with, and returns the rows.
async fn drill(mode: Mode, faults: Vec<Fault>) -> Vec<Row> {
    let out = tempfile::tempdir().unwrap();
    let report = drill::run(&plan(mode, faults.clone(), out.path()))
        .await
        .expect("the drill runs");
    let table = drill::output::table(&report);
    let page = drill::output::write(&report, out.path()).expect("the report is written");
    assert!(page.is_file() && out.path().join(format!("timeline-{mode}.svg")).is_file());
    let rows: Vec<Row> = report.rows().cloned().collect();
    assert_eq!(rows.len(), faults.len());
    for row in &rows {
        assert!(row.skipped.is_none(), "{table}");
        assert_eq!(row.error, None, "{table}");
        assert_eq!(
            row.violations,
            0,
            "{}\n{table}",
            row.violation_samples.join("\n")
        );
        assert!(
            row.agreed_after_s.is_some(),
            "the system agreed after {}:\n{table}",
            row.fault
        );
        assert!(row.died.is_empty(), "no process died on its own:\n{table}");
        assert_eq!(row.abandoned, 0, "every order got a final answer:\n{table}");
    }
    assert!(report.passed());
    rows
}

/// The attempts answered with a 5xx (or not at all) while the fault was in force.
fn failed(row: &Row) -> u64 {
    row.during.failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strong_mode_answers_honestly_through_a_kill_a_wrong_secret_a_full_disk_and_a_crash() {
    let rows = drill(
        Mode::Strong,
        vec![
            fault(Kind::Kill, ServiceName::Payment),
            fault(Kind::WrongSecret, ServiceName::Account),
            fault(Kind::DiskFull, ServiceName::Stats),
            fault(Kind::Crash, ServiceName::Order),
        ],
    )
    .await;
    // Every participant is on every order's path: while one is down, refused by its peers
    // or unable to write, orders fail (and are retried under their key).
    for row in &rows {
        assert!(
            failed(row) > 0,
            "{} was in force: {:?}",
            row.fault,
            row.during
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_mode_catches_up_after_a_kill_a_wrong_secret_a_full_disk_and_a_crash() {
    eventual(Mode::Queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_mode_catches_up_after_a_kill_a_wrong_secret_a_full_disk_and_a_crash() {
    eventual(Mode::Cron).await;
}

/// In the eventual modes orders are taken whatever happens behind Order: the fault shows as
/// work that lags, or a consumer stuck on the error, not retried into a dead letter.
async fn eventual(mode: Mode) {
    let rows = drill(
        mode,
        vec![
            fault(Kind::Kill, ServiceName::Stats),
            fault(Kind::WrongSecret, ServiceName::Account),
            fault(Kind::DiskFull, ServiceName::Stats),
            fault(Kind::Crash, ServiceName::Stats),
        ],
    )
    .await;
    let [kill, secret, disk, crash] = &rows[..] else {
        unreachable!("four rows")
    };
    // The crash point was reached (the drill says so otherwise) while orders were taken.
    assert!(crash.during.acked > 0, "{:?}", crash.during);
    assert!(
        kill.during.acked > 0,
        "Order takes orders while Stats is down"
    );
    assert!(kill.seen.unquiet > 0, "Stats' work lagged: {:?}", kill.seen);
    let stuck_at = |row: &Row, service| row.seen.stuck_at(service).unwrap_or_default().to_owned();
    assert!(
        stuck_at(secret, ServiceName::Payment).contains("401"),
        "Payment's consumer was stuck on Account's refusal: {:?}",
        secret.seen
    );
    assert!(
        stuck_at(disk, ServiceName::Stats).contains("I/O"),
        "Stats' consumer was stuck on its disk: {:?}",
        disk.seen
    );
}
