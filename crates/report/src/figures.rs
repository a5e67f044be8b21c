//! How numbers are written, and the summary figures of each run: one [`Summary`] feeds both
//! the terminal table and the HTML table, so they always agree.
//!
//! Every formatter writes `-` for a value that is missing, NaN or infinite.

use crate::model::{Ratio, Report, Run};

/// The delays after the acknowledgement at which the summary shows Stats visibility, ms.
pub const VISIBILITY_DELAYS_MS: [f64; 3] = [1.0, 10.0, 100.0];

/// The service whose visibility the summary shows: the slowest to reflect an order.
pub const VISIBILITY_SERVICE: &str = "stats";

/// What a missing or non-finite figure is written as.
pub const MISSING: &str = "-";

/// Milliseconds: 2 decimals below 10, 1 below 100, none above (`1.23`, `12.3`, `123`).
pub fn ms(v: f64) -> String {
    if !v.is_finite() {
        return MISSING.to_string();
    }
    let a = v.abs();
    if a < 10.0 {
        format!("{v:.2}")
    } else if a < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// A duration given in ms, with its unit: `850 ms`, `1.25 s`, `12.5 s`.
pub fn duration_ms(v: f64) -> String {
    if !v.is_finite() {
        return MISSING.to_string();
    }
    if v.abs() < 1000.0 {
        return format!("{} ms", ms(v));
    }
    let s = v / 1000.0;
    if s.abs() < 10.0 {
        format!("{s:.2} s")
    } else if s.abs() < 100.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.0} s")
    }
}

/// A fraction in `[0, 1]` as a percentage: `50%`, `2.5%`, `0.2%`, `99.9%` (one decimal below
/// 10 % and above 99 %). A fraction strictly between 0 and 1 never shows as `0%` or `100%`.
pub fn percent(fraction: f64) -> String {
    if !fraction.is_finite() {
        return MISSING.to_string();
    }
    let v = fraction * 100.0;
    if v <= 0.0 {
        format!("{v:.0}%")
    } else if v < 1.0 {
        format!("{:.1}%", (v * 10.0).ceil() / 10.0)
    } else if v < 10.0 {
        format!("{v:.1}%")
    } else if v > 99.0 && v < 100.0 {
        format!("{:.1}%", (v * 10.0).floor() / 10.0)
    } else {
        format!("{v:.0}%")
    }
}

/// A rate per second: no decimals from 100 up, one below.
pub fn rate(v: f64) -> String {
    if !v.is_finite() {
        return MISSING.to_string();
    }
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// An offered rate: the number, or `max` for `--rate max`.
pub fn offered(rate: Option<u64>) -> String {
    rate.map_or_else(|| "max".to_string(), |r| r.to_string())
}

/// A ratio to the baseline: `1.52×`.
pub fn ratio(v: f64) -> String {
    if !v.is_finite() {
        return MISSING.to_string();
    }
    format!("{v:.2}×")
}

/// Mebibytes: one decimal below 100, none above.
pub fn mib(v: f64) -> String {
    if !v.is_finite() {
        return MISSING.to_string();
    }
    if v.abs() < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// A column of the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// The short header of the terminal table.
    pub header: String,
    /// What the column means, for the HTML page.
    pub description: String,
    /// Right-aligned (a number) or left-aligned (a name).
    pub numeric: bool,
    /// Columns of the same group sit closer together in the terminal table.
    pub group: u8,
}

/// The summary figures: one row of cells per run, already formatted.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub columns: Vec<Column>,
    /// One row per run, in the order of [`Report::runs`]; each row has one cell per column.
    pub rows: Vec<Vec<String>>,
}

fn column(header: &str, description: &str, numeric: bool, group: u8) -> Column {
    Column {
        header: header.to_string(),
        description: description.to_string(),
        numeric,
        group,
    }
}

/// The label of the visibility column at `delay_ms`, e.g. `vis@10ms`.
fn visibility_header(delay_ms: f64) -> String {
    format!("vis@{delay_ms}ms")
}

/// The summary of a report: the figures of the terminal and of the HTML table.
pub fn summary(report: &Report) -> Summary {
    let with_delay = report.shows_stats_delay();
    let with_backends = report.shows_backends();
    let mut columns = vec![column("mode", "consistency mode", false, 0)];
    if with_backends {
        columns.push(column(
            "backends",
            "database + event transport (the floor and the baseline: database)",
            false,
            0,
        ));
    }
    if with_delay {
        columns.push(column(
            "stats",
            "delay added to every Stats apply (the sweep), ms",
            true,
            0,
        ));
    }
    columns.extend([
        column(
            "offer/s",
            "orders per second offered (max: closed loop)",
            true,
            1,
        ),
        column(
            "acked/s",
            "orders per second acknowledged over the measured window",
            true,
            1,
        ),
        column("acked", "orders acknowledged (201 or 202)", true, 2),
        column(
            "refused",
            "orders refused before acknowledgement (4xx)",
            true,
            2,
        ),
        column("cancel", "orders acknowledged, then cancelled", true, 2),
        column("failed", "requests answered 5xx or not at all", true, 2),
        column("p50", "acknowledgement latency p50, ms", true, 3),
        column("p99", "acknowledgement latency p99, ms", true, 3),
        column("p99.9", "acknowledgement latency p99.9, ms", true, 3),
        column("max ms", "acknowledgement latency max, ms", true, 3),
        column("p50×", "p50 divided by the baseline's p50", true, 4),
        column("p99×", "p99 divided by the baseline's p99", true, 4),
        column(
            "lag p99",
            "largest apply lag p99 over the services, ms",
            true,
            5,
        ),
    ]);
    for delay in VISIBILITY_DELAYS_MS {
        columns.push(column(
            &visibility_header(delay),
            &format!(
                "probability that a Stats read {delay} ms after the acknowledgement reflects the order"
            ),
            true,
            6,
        ));
    }
    columns.extend([
        column(
            "converged",
            "from the last acknowledgement until every service applied every order",
            true,
            7,
        ),
        column("RSS MiB", "peak resident memory, MiB", true, 7),
        column("viol", "invariant violations (must be 0)", true, 7),
    ]);

    let rows = report
        .runs
        .iter()
        .map(|run| row(run, with_delay, with_backends))
        .collect();
    Summary { columns, rows }
}

fn row(run: &Run, with_delay: bool, with_backends: bool) -> Vec<String> {
    let mut cells = vec![run.mode.clone()];
    if with_backends {
        cells.push(run.backends.clone());
    }
    if with_delay {
        cells.push(run.stats_delay_ms.to_string());
    }
    let (ratio_p50, ratio_p99) = match run.ratio_to_baseline {
        Some(Ratio { p50, p99 }) => (ratio(p50), ratio(p99)),
        None => (MISSING.to_string(), MISSING.to_string()),
    };
    let lat = &run.ack_latency;
    cells.extend([
        offered(run.offered_rate),
        rate(run.achieved_rate),
        run.acknowledged.to_string(),
        run.refused.to_string(),
        run.cancelled.to_string(),
        run.failed.to_string(),
        ms(lat.p50),
        ms(lat.p99),
        ms(lat.p999),
        ms(lat.max),
        ratio_p50,
        ratio_p99,
        run.largest_apply_lag_p99()
            .map_or_else(|| MISSING.to_string(), |(_, p99)| ms(p99)),
    ]);
    for delay in VISIBILITY_DELAYS_MS {
        cells.push(
            run.visibility
                .probability_at(VISIBILITY_SERVICE, delay)
                .map_or_else(|| MISSING.to_string(), percent),
        );
    }
    cells.extend([
        duration_ms(run.converged_after_ms),
        mib(run.rss_mib.max),
        run.violations.len().to_string(),
    ]);
    cells
}
