//! The terminal table: layout and the figures it shows.

mod common;

use common::{no_sweep, sample, tokens};
use report::table;

#[test]
fn one_line_per_run_plus_the_header() {
    let report = sample();
    let table = table::render(&report);
    assert_eq!(table.lines().count(), report.runs.len() + 1, "{table}");
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header[0], "mode");
    for (line, run) in table.lines().skip(1).zip(&report.runs) {
        assert!(line.starts_with(&run.mode), "{line}");
    }
}

#[test]
fn columns_are_aligned_and_fit_160_columns() {
    let table = table::render(&sample());
    let widths: Vec<usize> = table.lines().map(|l| l.chars().count()).collect();
    assert!(
        widths.iter().all(|w| *w == widths[0]),
        "ragged lines {widths:?}\n{table}"
    );
    assert!(widths[0] <= 160, "{} columns wide\n{table}", widths[0]);
    // The right end of each number column lines up with the right end of its header: the
    // header "p50" ends where every p50 figure ends.
    let header = table.lines().next().unwrap();
    let end = header.find(" p50 ").unwrap() + " p50".len();
    for line in table.lines().skip(1) {
        let before: String = line.chars().take(end).collect();
        let after = line.chars().nth(end).unwrap();
        assert!(!before.ends_with(' ') && after == ' ', "{line}");
    }
}

#[test]
fn shows_the_figures_given() {
    let report = sample();
    let table = table::render(&report);
    let strong = tokens(&table, &report, "strong", 0);
    // mode, delay, offered, achieved, acked, refused, cancelled, failed, p50, p99, p99.9, max,
    // p50×, p99×, lag p99, vis 1/10/100 ms, converged (2 tokens), RSS, violations.
    assert_eq!(
        strong,
        [
            "strong", "0", "500", "500", "14890", "110", "0", "0", "1.23", "5.68", "9.87", "45.6",
            "1.52×", "2.42×", "0.00", "100%", "100%", "100%", "850", "ms", "61.3", "0"
        ],
        "{table}"
    );
    let baseline = tokens(&table, &report, "baseline", 0);
    assert_eq!(&baseline[8..14], ["0.81", "2.35", "4.10", "12.7", "-", "-"]);
    let queue = tokens(&table, &report, "queue", 0);
    // The largest lag p99 is Stats' 4.2 ms; Stats is visible at 1 / 10 / 100 ms with 0.99 / 9.9 / 99 %.
    assert_eq!(&queue[14..18], ["4.20", "1.0%", "9.9%", "99%"], "{table}");
    assert_eq!(&queue[18..], ["1.50", "s", "61.3", "0"], "{table}");
    let queue_20 = tokens(&table, &report, "queue", 20);
    assert_eq!(queue_20[1], "20");
    assert_eq!(
        &queue_20[14..18],
        ["35.2", "2.5%", "25%", "100%"],
        "{table}"
    );
    let cron = tokens(&table, &report, "cron", 0);
    assert_eq!(
        &cron[14..20],
        ["497", "0.2%", "2.0%", "20%", "12.3", "s"],
        "{table}"
    );
}

#[test]
fn the_stats_delay_column_only_for_a_sweep() {
    let header = |table: &str| -> Vec<String> {
        let line = table.lines().next().unwrap();
        line.split_whitespace()
            .take(2)
            .map(str::to_string)
            .collect()
    };
    assert_eq!(header(&table::render(&sample())), ["mode", "stats"]);
    let report = no_sweep();
    let table = table::render(&report);
    assert_eq!(header(&table), ["mode", "offer/s"], "{table}");
    assert_eq!(tokens(&table, &report, "strong", 0)[1], "500");
}

#[test]
fn closed_loop_shows_max() {
    let mut report = no_sweep();
    report.settings.rate = None;
    for run in &mut report.runs {
        run.offered_rate = None;
    }
    let table = table::render(&report);
    assert_eq!(tokens(&table, &report, "queue", 0)[1], "max");
}

#[test]
fn violations_listed_per_run() {
    let mut report = sample();
    assert_eq!(table::render_violations(&report), "");
    report.runs[4]
        .violations
        .push("order 7 applied twice by loyalty".to_string());
    report.runs[4]
        .violations
        .push("account 3: balance -5".to_string());
    assert_eq!(
        table::render_violations(&report),
        "queue, stats 20 ms: 2 violations\n  - order 7 applied twice by loyalty\n  - account 3: balance -5\n"
    );
    let table = table::render(&report);
    assert_eq!(*tokens(&table, &report, "queue", 20).last().unwrap(), "2");
}
