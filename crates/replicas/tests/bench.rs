//! A short bench over two policies, drill included, on a cluster of its own: the report has
//! every section, and the properties that do not depend on speed hold.

mod common;

use std::time::Duration;

use replicas::bench::{self, BenchConfig};
use replicas::model::Report;
use replicas::render;
use replicas::{Policy, ReadFrom, ReadPolicy};

fn config() -> BenchConfig {
    BenchConfig {
        policies: vec![Policy::Async, Policy::Sync],
        rate: 100.0,
        duration: Duration::from_millis(1500),
        accounts: 8,
        seed: 7,
        writers: 4,
        probe_per_s: 40.0,
        probe_connections: 2,
        sessions: 1,
        session_pause: Duration::from_millis(20),
        read_policy: ReadPolicy {
            from: ReadFrom::Replicas,
            wait_max: Duration::from_millis(50),
            poll_interval: Duration::from_millis(1),
        },
        commit_timeout: Duration::from_millis(300),
        watch_interval: Duration::from_millis(2),
        drill: Duration::from_millis(3000),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_bench_reports_every_section_and_loses_nothing() {
    let Some(cluster) = common::cluster(2).await else {
        return;
    };
    let report = bench::run(&cluster, &config(), "test".into(), "test".into(), |_| {})
        .await
        .expect("the bench runs");
    let [async_run, sync_run] = report.policies.as_slice() else {
        panic!("two policies")
    };

    for run in &report.policies {
        let p = &run.policy;
        // Every write answered or timed out (speed decides which, so no count is asserted).
        assert_eq!(run.writes.offered, 150, "{p}");
        assert_eq!(run.writes.failed, 0, "{p}");
        assert_eq!(run.writes.acked + run.writes.timed_out, 150, "{p}");
        assert!(run.lost.nothing_lost(), "{p}: {:?}", run.lost);
        assert_eq!(run.replicas.len(), 2);
        for r in &run.replicas {
            assert!(r.probed > 0 && r.probe_errors == 0, "{p} {}: {r:?}", r.name);
            assert_eq!(r.visibility.len(), report.offsets_ms.len());
            assert_eq!(
                r.visibility.last(),
                Some(&1.0),
                "{p} {}: seen in the end",
                r.name
            );
            assert!(
                r.predicted.iter().all(|v| (0.0..=1.0).contains(v)),
                "{p}: {r:?}"
            );
        }
        let [off, on] = run.sessions.as_slice() else {
            panic!("{p}: sessions off and on")
        };
        assert_eq!(
            (off.guarantees.as_str(), on.guarantees.as_str()),
            ("off", "on")
        );
        assert!(on.reads > 0 && off.reads > 0);
        assert_eq!(
            (on.ryw_violations, on.mr_violations),
            (0, 0),
            "{p}: guarantees hold"
        );
        let drill = run.drill.as_ref().expect("a drill");
        assert!(drill.lost.nothing_lost(), "{p} drill: {:?}", drill.lost);
        assert!(
            drill.lost.timed_out_committed <= drill.lost.timed_out,
            "{p}"
        );
        assert!(drill.buckets.len() >= 6 && drill.stopped_at_s < drill.restarted_at_s);
    }

    // remote_apply on every standby: a read right after the commit returned sees it.
    for r in &sync_run.replicas {
        assert_eq!(r.visibility[0], 1.0, "sync, {}: seen at 0 ms", r.name);
    }
    let [off, _] = sync_run.sessions.as_slice() else {
        unreachable!()
    };
    assert_eq!(
        off.ryw_violations, 0,
        "nothing to violate when every standby applies first"
    );

    // The standby stopped: async commits go on, sync ones time out (and stay on the primary).
    let (a, s) = (
        async_run.drill.as_ref().unwrap(),
        sync_run.drill.as_ref().unwrap(),
    );
    // Every sync writer waits out its bound while the standby is down (a second, three
    // bounds); an async one waits for nobody, so only a stall of the machine could time it out.
    assert!(
        a.writes.timed_out < s.writes.timed_out,
        "async goes on: {:?}",
        a.writes
    );
    assert!(
        s.writes.timed_out > 0,
        "sync waits for the stopped standby: {:?}",
        s.writes
    );
    assert!(
        a.max_staleness_ms > 500.0,
        "the stopped standby falls behind: {a:?}"
    );
    assert!(a.recovered_after_ms.is_some() && s.recovered_after_ms.is_some());

    // The report: JSON round trip, a page that loads nothing, a table with every section.
    let json = serde_json::to_string(&report).unwrap();
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back.policies.len(), 2);
    let page = render::html(&report);
    for section in [
        "What the writer pays",
        "What a read on a standby sees",
        "Session guarantees",
        "a standby stopped under load",
        "Nothing lost",
        "<svg",
    ] {
        assert!(page.contains(section), "the page has {section}");
    }
    assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("src="));
    for (name, svg) in render::svg_files(&report) {
        assert!(
            svg.starts_with("<svg xmlns=") && svg.contains("</svg>"),
            "{name} stands alone"
        );
    }
    let table = render::table(&report);
    assert!(table.contains("async") && table.contains("replica2") && table.contains("drill"));
}
