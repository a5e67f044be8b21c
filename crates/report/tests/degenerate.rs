//! Empty and broken data render without panicking, and never write NaN or inf into the page.

mod common;

use common::sample;
use report::model::{Report, Run, TimelinePoint, Visibility, VisibilityCurve};
use report::{html, table};

fn assert_clean(page: &str) {
    for bad in ["NaN", "inf\"", "inf,", "inf "] {
        assert!(!page.contains(bad), "the page contains {bad:?}");
    }
    assert_eq!(page.matches("<svg").count(), page.matches("</svg>").count());
}

#[test]
fn no_runs() {
    let mut report = sample();
    report.runs.clear();
    let table = table::render(&report);
    assert_eq!(table.lines().count(), 1, "{table}");
    assert!(table.starts_with("mode"));
    assert_eq!(table::render_violations(&report), "");
    let page = html::render(&report);
    assert_clean(&page);
    assert!(page.contains("no runs"));
    // Still one (empty) chart per chart section.
    for id in ["latency", "visibility", "apply-lag", "timeline", "sweep"] {
        let start = page.find(&format!("<section id=\"{id}\"")).unwrap();
        let end = start + page[start..].find("</section>").unwrap();
        assert!(page[start..end].contains("<svg"), "{id}");
    }
}

fn empty_run(mut run: Run) -> Run {
    run.ack_latency_cdf.clear();
    run.timeline.clear();
    run.visibility = Visibility::default();
    run.apply_lag.clear();
    run
}

#[test]
fn runs_without_data() {
    let mut report = sample();
    report.runs = report.runs.into_iter().map(empty_run).collect();
    let page = html::render(&report);
    assert_clean(&page);
    assert!(page.matches(">no data<").count() >= 4, "{page}");
    let table = table::render(&report);
    assert_eq!(table.lines().count(), report.runs.len() + 1);
    // No visibility, no apply lag: those columns read "-".
    let line: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&line[14..18], ["-", "-", "-", "-"], "{table}");
}

#[test]
fn nan_and_infinite_values() {
    let mut report = sample();
    let run = &mut report.runs[3];
    run.achieved_rate = f64::NAN;
    run.ack_latency.p50 = f64::NAN;
    run.ack_latency.p99 = f64::INFINITY;
    run.ack_latency.max = f64::NEG_INFINITY;
    run.converged_after_ms = f64::NAN;
    run.rss_mib.max = f64::INFINITY;
    run.ratio_to_baseline = Some(report::model::Ratio {
        p50: f64::NAN,
        p99: f64::INFINITY,
    });
    run.ack_latency_cdf[0].0 = f64::NAN;
    run.ack_latency_cdf[2].1 = f64::INFINITY;
    run.apply_lag[1].lag.p99 = f64::NAN;
    run.apply_lag[2].max_ms = f64::INFINITY;
    run.visibility.delays_ms[3] = f64::NAN;
    run.visibility.curves[2].probability[4] = f64::NAN;
    run.timeline[5].acknowledged_per_s = f64::NAN;
    run.timeline[6].stats_backlog = f64::INFINITY;
    run.timeline[7].t_s = f64::NEG_INFINITY;
    run.k_staleness.mean = f64::NAN;
    let page = html::render(&report);
    assert_clean(&page);
    let table = table::render(&report);
    let line: Vec<&str> = table.lines().nth(4).unwrap().split_whitespace().collect();
    assert_eq!(line[0], "queue");
    assert_eq!(line[3], "-", "achieved rate: {table}");
    assert_eq!(&line[8..14], ["-", "-", "5.20", "-", "-", "-"], "{table}");
}

#[test]
fn all_nan_everywhere() {
    let mut report = sample();
    for run in &mut report.runs {
        for p in &mut run.ack_latency_cdf {
            *p = (f64::NAN, f64::NAN);
        }
        for p in &mut run.timeline {
            p.acknowledged_per_s = f64::NAN;
            p.stats_backlog = f64::NAN;
            p.ack_p99_ms = f64::NAN;
            p.rss_mib = f64::NAN;
        }
        for l in &mut run.apply_lag {
            l.lag.p50 = f64::NAN;
            l.lag.p99 = f64::NAN;
            l.max_ms = f64::NAN;
        }
        run.visibility.delays_ms.fill(f64::NAN);
        run.ack_latency.p50 = f64::NAN;
        run.ack_latency.p99 = f64::NAN;
        run.converged_after_ms = f64::NAN;
    }
    let page = html::render(&report);
    assert_clean(&page);
    assert!(page.matches(">no data<").count() >= 8);
}

#[test]
fn zeros_single_points_and_odd_shapes() {
    let mut report = sample();
    let zero = TimelinePoint {
        t_s: 0.0,
        acknowledged_per_s: 0.0,
        ack_p99_ms: 0.0,
        stats_backlog: 0.0,
        rss_mib: 0.0,
    };
    for run in &mut report.runs {
        run.ack_latency_cdf = vec![(0.0, 0.0)];
        run.timeline = vec![zero];
        run.converged_after_ms = 0.0;
        run.visibility = Visibility {
            delays_ms: vec![0.0],
            curves: vec![
                VisibilityCurve {
                    service: "stats".to_string(),
                    probability: vec![0.0, 1.0, 1.0], // longer than the delays
                },
                VisibilityCurve {
                    service: "payment".to_string(),
                    probability: vec![], // shorter
                },
            ],
            samples: 0,
        };
        for l in &mut run.apply_lag {
            l.lag.p50 = -1.0; // cannot be drawn on a log axis
        }
    }
    let page = html::render(&report);
    assert_clean(&page);
    let table = table::render(&report);
    assert_eq!(table.lines().count(), report.runs.len() + 1);
}

#[test]
fn huge_and_tiny_values() {
    let mut report = sample();
    let run = &mut report.runs[0];
    run.ack_latency_cdf = vec![(1e-12, 0.1), (1e300, 1.0)];
    run.timeline[0].acknowledged_per_s = f64::MAX;
    run.timeline[1].acknowledged_per_s = -f64::MAX;
    run.visibility.delays_ms = vec![f64::MIN_POSITIVE, 1e308];
    let page = html::render(&report);
    assert_clean(&page);
    let _ = table::render(&report);
}

#[test]
fn a_sweep_with_one_run() {
    let mut report = Report {
        runs: vec![sample().runs.remove(2)],
        ..sample()
    };
    report.settings.stats_delays_ms = vec![0, 20, 100];
    let page = html::render(&report);
    assert_clean(&page);
    assert!(page.contains("<section id=\"sweep\""));
}
