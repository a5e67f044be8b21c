//! The bench end to end, on a small load: what it measures reflects the system, and what it
//! writes is complete and self-contained.

mod common;

use std::time::Duration;

use converge::bench::{self, Plan};
use converge::settings::{BenchMode, Rate};
use converge::system::Delays;

fn small_plan(modes: Vec<BenchMode>, stats_delay_ms: u64) -> Plan {
    Plan {
        command: "converge bench (test)".into(),
        modes,
        rate: Rate::PerSecond(100),
        connections: 16,
        duration: Duration::from_secs(1),
        accounts: 8,
        seed: 11,
        stats_delays_ms: vec![stats_delay_ms],
        probe_per_s: 20,
        cron_interval: Duration::from_millis(200),
        call_timeout: Duration::from_secs(2),
        network_delay: Duration::ZERO,
        delays: Delays::default(),
        backends: vec![bench::Backends::embedded()],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stats_delay_shows_up_as_apply_lag() {
    const DELAY_MS: u64 = 60;
    let report = bench::run(&small_plan(vec![BenchMode::Queue], DELAY_MS))
        .await
        .unwrap();
    let run = &report.runs[0];
    assert!(run.acknowledged > 0, "{run:?}");
    let stats = run
        .apply_lag
        .iter()
        .find(|l| l.service == "stats")
        .expect("a Stats lag");
    // Every batch waits the delay before it applies: no order is applied sooner.
    assert!(
        stats.max_ms >= DELAY_MS as f64,
        "max lag {} ms",
        stats.max_ms
    );
    let below = stats
        .cdf
        .iter()
        .filter(|(le, _)| *le < DELAY_MS as f64)
        .map(|(_, f)| *f)
        .fold(0.0, f64::max);
    assert_eq!(
        below, 0.0,
        "no order applied by Stats within {DELAY_MS} ms: {:?}",
        stats.cdf
    );
    // Loyalty has no delay: it is not held back by Stats. (Compared with Stats rather than
    // with a number of milliseconds, which a loaded machine could exceed.)
    let loyalty = run
        .apply_lag
        .iter()
        .find(|l| l.service == "loyalty")
        .expect("a Loyalty lag");
    assert!(
        loyalty.lag.p50 < stats.lag.p50,
        "loyalty p50 {} ms, stats p50 {} ms",
        loyalty.lag.p50,
        stats.lag.p50
    );
    assert!(run.violations.is_empty(), "{:?}", run.violations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_has_every_section_and_no_outside_resource() {
    let report = bench::run(&small_plan(
        vec![BenchMode::Baseline, BenchMode::Strong, BenchMode::Queue],
        0,
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let page = bench::write(&report, dir.path()).unwrap();

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    for key in ["command", "started_at", "machine", "settings", "runs"] {
        assert!(json.get(key).is_some(), "report.json lacks {key}");
    }
    let modes: Vec<&str> = report.runs.iter().map(|r| r.mode.as_str()).collect();
    assert_eq!(modes, ["baseline", "strong", "queue"]);
    for run in &report.runs {
        assert_eq!(run.sent, 100, "{}: rate × duration", run.mode);
        assert!(
            run.ack_latency.count > 0 && !run.ack_latency_cdf.is_empty(),
            "{}",
            run.mode
        );
        assert!(!run.timeline.is_empty(), "{}", run.mode);
        let ratio = run.ratio_to_baseline.expect("a ratio to the baseline");
        assert!(ratio.p50 > 0.0);
        assert!(
            run.violations.is_empty(),
            "{}: {:?}",
            run.mode,
            run.violations
        );
    }
    for run in &report.runs[1..] {
        let services: Vec<&str> = run
            .visibility
            .curves
            .iter()
            .map(|c| c.service.as_str())
            .collect();
        for service in ["order", "payment", "loyalty", "stats"] {
            assert!(
                services.contains(&service),
                "{}: no {service} curve in {services:?}",
                run.mode
            );
        }
        assert!(run.visibility.samples > 0, "{}", run.mode);
        assert!(run.k_staleness.reads > 0, "{}", run.mode);
        let lagging: Vec<&str> = run.apply_lag.iter().map(|l| l.service.as_str()).collect();
        for service in ["payment", "loyalty", "stats"] {
            assert!(
                lagging.contains(&service),
                "{}: no {service} apply lag in {lagging:?}",
                run.mode
            );
        }
    }
    // Strong mode is the control: every service reflects the order when the 201 arrives.
    let strong = &report.runs[1];
    for curve in &strong.visibility.curves {
        assert_eq!(
            curve.probability[0], 1.0,
            "strong {} at t = 0",
            curve.service
        );
    }

    let html = std::fs::read_to_string(page).unwrap();
    assert!(html.matches("<svg").count() >= 4, "a chart per section");
    for outside in ["http://", "https://", "src=", "@import", "url("] {
        assert!(
            !html.contains(outside),
            "index.html refers outside: {outside}"
        );
    }
}
