//! A realistic report built by hand: a baseline, strong and queue at Stats delays 0 and 20 ms
//! (a sweep), and a cron run, with figures of the magnitudes a bench on a laptop gives.

#![allow(dead_code)]

use report::model::{
    Cdf, KStaleness, Machine, MemoryUse, Percentiles, Ratio, Report, Run, ServiceLag, Settings,
    TimelinePoint, Visibility, VisibilityCurve,
};

pub const DELAYS_MS: [f64; 11] = [
    0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0,
];

pub fn percentiles(p50: f64, p99: f64, p999: f64, max: f64) -> Percentiles {
    Percentiles {
        count: 15_000,
        mean: p50 * 1.2,
        p50,
        p90: (p50 + p99) / 2.0,
        p99,
        p999,
        max,
    }
}

/// A plausible CDF through the given percentiles.
pub fn cdf(p: &Percentiles) -> Cdf {
    vec![
        (p.p50 * 0.4, 0.01),
        (p.p50 * 0.8, 0.25),
        (p.p50, 0.5),
        (p.p90, 0.9),
        (p.p99, 0.99),
        (p.p999, 0.999),
        (p.max, 1.0),
    ]
}

pub fn lag(service: &str, p50: f64, p99: f64, max: f64) -> ServiceLag {
    let lag = percentiles(p50, p99, (p99 + max) / 2.0, max);
    ServiceLag {
        service: service.to_string(),
        cdf: cdf(&lag),
        lag,
        max_ms: max,
    }
}

/// Visibility curves: each service is visible with a probability that rises from `start` at
/// delay 0 to 1 at `full_ms`.
pub fn visibility(curves: &[(&str, f64, f64)]) -> Visibility {
    Visibility {
        delays_ms: DELAYS_MS.to_vec(),
        curves: curves
            .iter()
            .map(|(service, start, full_ms)| VisibilityCurve {
                service: service.to_string(),
                probability: DELAYS_MS
                    .iter()
                    .map(|d| (start + (1.0 - start) * d / full_ms).min(1.0))
                    .collect(),
            })
            .collect(),
        samples: 600,
    }
}

pub fn timeline(rate: f64, backlog: f64, p99: f64) -> Vec<TimelinePoint> {
    (1..=30)
        .map(|t| TimelinePoint {
            t_s: t as f64,
            acknowledged_per_s: rate - (t % 3) as f64,
            ack_p99_ms: p99 + (t % 5) as f64 * 0.1,
            stats_backlog: backlog * ((t % 4) as f64 + 1.0) / 4.0,
            rss_mib: 48.0 + t as f64 * 0.01,
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
pub fn run(
    mode: &str,
    stats_delay_ms: u64,
    ack: Percentiles,
    ratio: Option<Ratio>,
    apply_lag: Vec<ServiceLag>,
    visibility: Visibility,
    backlog: f64,
    converged_after_ms: f64,
) -> Run {
    Run {
        mode: mode.to_string(),
        backends: "sqlite+embedded".into(),
        stats_delay_ms,
        offered_rate: Some(500),
        achieved_rate: 499.7,
        sent: 15_000,
        acknowledged: 14_890,
        refused: if mode == "strong" { 110 } else { 0 },
        failed: 0,
        cancelled: if mode == "queue" || mode == "cron" {
            104
        } else {
            0
        },
        ack_latency_cdf: cdf(&ack),
        ack_latency: ack,
        ratio_to_baseline: ratio,
        apply_lag,
        visibility,
        k_staleness: KStaleness {
            reads: 600,
            mean: backlog / 2.0,
            p99: backlog,
            max: backlog * 1.5,
        },
        timeline: timeline(499.0, backlog, ack.p99),
        converged_after_ms,
        violations: Vec::new(),
        rss_mib: MemoryUse {
            max: 61.3,
            start: 45.0,
            end: 52.5,
        },
    }
}

const ALL_AT_ONCE: [(&str, f64, f64); 4] = [
    ("order", 1.0, 1.0),
    ("payment", 1.0, 1.0),
    ("loyalty", 1.0, 1.0),
    ("stats", 1.0, 1.0),
];

/// baseline, strong (0 and 20 ms), queue (0 and 20 ms), cron; Stats delays `[0, 20]`.
pub fn sample() -> Report {
    let baseline = run(
        "baseline",
        0,
        percentiles(0.812, 2.345, 4.1, 12.7),
        None,
        vec![
            lag("order", 0.0, 0.0, 0.0),
            lag("payment", 0.01, 0.02, 0.05),
            lag("loyalty", 0.01, 0.02, 0.05),
            lag("stats", 0.01, 0.03, 0.06),
        ],
        visibility(&ALL_AT_ONCE),
        0.0,
        3.2,
    );
    let strong = run(
        "strong",
        0,
        percentiles(1.234, 5.678, 9.87, 45.6),
        Some(Ratio {
            p50: 1.52,
            p99: 2.42,
        }),
        vec![
            lag("order", 0.0, 0.0, 0.0),
            lag("payment", 0.0, 0.0, 0.0),
            lag("loyalty", 0.0, 0.0, 0.0),
            lag("stats", 0.0, 0.0, 0.0),
        ],
        visibility(&ALL_AT_ONCE),
        0.0,
        850.0,
    );
    let strong_20 = run(
        "strong",
        20,
        percentiles(21.9, 27.3, 35.5, 96.1),
        Some(Ratio {
            p50: 26.97,
            p99: 11.64,
        }),
        vec![
            lag("order", 0.0, 0.0, 0.0),
            lag("payment", 0.0, 0.0, 0.0),
            lag("loyalty", 0.0, 0.0, 0.0),
            lag("stats", 0.0, 0.0, 0.0),
        ],
        visibility(&ALL_AT_ONCE),
        0.0,
        910.0,
    );
    let queue = run(
        "queue",
        0,
        percentiles(0.95, 2.8, 5.2, 14.3),
        Some(Ratio {
            p50: 1.17,
            p99: 1.19,
        }),
        vec![
            lag("order", 0.0, 0.0, 0.0),
            lag("payment", 0.8, 3.1, 9.9),
            lag("loyalty", 0.9, 3.4, 11.2),
            lag("stats", 1.1, 4.2, 14.8),
        ],
        visibility(&[
            ("order", 1.0, 1.0),
            ("payment", 0.3, 4.0),
            ("loyalty", 0.25, 5.0),
            ("stats", 0.0, 100.0 / 0.99),
        ]),
        2.0,
        1500.0,
    );
    let queue_20 = run(
        "queue",
        20,
        percentiles(0.97, 2.9, 5.5, 15.0),
        Some(Ratio {
            p50: 1.19,
            p99: 1.24,
        }),
        vec![
            lag("order", 0.0, 0.0, 0.0),
            lag("payment", 0.8, 3.0, 9.8),
            lag("loyalty", 0.9, 3.3, 10.1),
            lag("stats", 21.2, 35.2, 60.4),
        ],
        visibility(&[
            ("order", 1.0, 1.0),
            ("payment", 0.3, 4.0),
            ("loyalty", 0.25, 5.0),
            ("stats", 0.0, 40.0),
        ]),
        12.0,
        2480.0,
    );
    let cron = run(
        "cron",
        0,
        percentiles(0.9, 2.7, 5.0, 13.9),
        Some(Ratio {
            p50: 1.11,
            p99: 1.15,
        }),
        vec![
            lag("order", 0.0, 0.0, 0.0),
            lag("payment", 251.0, 495.0, 512.0),
            lag("loyalty", 252.0, 496.0, 514.0),
            lag("stats", 253.0, 497.0, 530.0),
        ],
        visibility(&[
            ("order", 1.0, 1.0),
            ("payment", 0.0, 500.0),
            ("loyalty", 0.0, 500.0),
            ("stats", 0.0, 500.0),
        ]),
        250.0,
        12_345.0,
    );
    Report {
        command: "converge bench --rate 500 --duration 30s --stats-delay 0,20".to_string(),
        started_at: "2025-06-01T12:00:00+02:00".to_string(),
        machine: Machine {
            cores: 8,
            os: "linux".to_string(),
        },
        settings: Settings {
            rate: Some(500),
            connections: 64,
            duration_s: 30.0,
            accounts: 1000,
            seed: 42,
            cron_interval_ms: 500,
            stats_delays_ms: vec![0, 20],
        },
        runs: vec![baseline, strong, strong_20, queue, queue_20, cron],
    }
}

/// The same without a sweep: baseline, strong, queue, cron at Stats delay 0.
pub fn no_sweep() -> Report {
    let mut report = sample();
    report.settings.stats_delays_ms = vec![0];
    report.runs.retain(|r| r.stats_delay_ms == 0);
    report
}

/// The table's line of the run with this mode and delay, split on whitespace.
pub fn tokens<'a>(table: &'a str, report: &Report, mode: &str, delay: u64) -> Vec<&'a str> {
    let index = report
        .runs
        .iter()
        .position(|r| r.mode == mode && r.stats_delay_ms == delay)
        .expect("no such run");
    table
        .lines()
        .nth(index + 1)
        .expect("no such line")
        .split_whitespace()
        .collect()
}
