//! What the drill leaves behind: the table on stdout, and in the output directory
//! `drill.json` (every figure), `timeline-<mode>.svg` (acknowledgements per second with the
//! fault windows shaded, as Jepsen draws them) and `index.html` showing both.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use report::html::escape;
use report::svg::{Axis, Band, LineChart, Series};

use super::{ModeRun, Report, Row};

/// One row as the progress line and the table show it.
pub fn line(row: &Row) -> String {
    format!(
        "{:<20} {:>6} {:>7} {:>6} {:>12} {:>10}  {}",
        row.fault.to_string(),
        row.during.acked,
        row.during.refused,
        row.during.failed,
        agreed(row),
        verdict(row),
        remark(row)
    )
}

fn agreed(row: &Row) -> String {
    match (&row.skipped, row.agreed_after_s) {
        (Some(_), _) => "-".into(),
        (None, Some(s)) => format!("{s:.2} s"),
        (None, None) => "never".into(),
    }
}

fn verdict(row: &Row) -> String {
    if row.skipped.is_some() {
        "-".into()
    } else {
        row.violations.to_string()
    }
}

/// What the drill saw, or why it could not run the fault, or what went wrong.
fn remark(row: &Row) -> String {
    let mut remark = match &row.skipped {
        Some(reason) => return reason.clone(),
        None => row.seen.summary(),
    };
    if !row.died.is_empty() {
        let _ = write!(remark, "; died: {}", row.died.join(", "));
    }
    if row.abandoned > 0 {
        let _ = write!(remark, "; {} orders without an answer", row.abandoned);
    }
    if let Some(error) = &row.error {
        let _ = write!(remark, "; error: {error}");
    }
    remark
}

/// The whole table: a row per fault and mode.
pub fn table(report: &Report) -> String {
    let mut out = format!(
        "{:<6} {:<20} {:>6} {:>7} {:>6} {:>12} {:>10}  {}\n",
        "mode",
        "fault",
        "acked",
        "refused",
        "failed",
        "agreed after",
        "violations",
        "seen during the fault"
    );
    for row in report.rows() {
        let _ = writeln!(out, "{:<6} {}", row.mode.to_string(), line(row));
    }
    out
}

/// Writes `drill.json`, a timeline per mode and `index.html` into `out`; returns the page.
pub fn write(report: &Report, out: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let json = serde_json::to_string_pretty(report)?;
    std::fs::write(out.join("drill.json"), json)?;
    let mut figures = String::new();
    for run in &report.runs {
        let chart = timeline(run);
        let name = format!("timeline-{}.svg", run.mode);
        std::fs::write(out.join(&name), report::svg::standalone(&chart))?;
        let _ = writeln!(
            figures,
            "<figure><figcaption>{} (<a href=\"{name}\">{name}</a>)</figcaption>{chart}</figure>",
            run.mode
        );
    }
    let page = out.join("index.html");
    std::fs::write(&page, html(report, &figures))?;
    Ok(page)
}

/// Acknowledged and failed attempts per second, the fault windows shaded.
fn timeline(run: &ModeRun) -> String {
    let series = |label: &str, color: &str, pick: fn(&(u64, u64)) -> u64| Series {
        label: label.into(),
        color: color.into(),
        dash: None,
        points: run
            .per_second
            .iter()
            .enumerate()
            .map(|(second, counts)| (second as f64 + 0.5, pick(counts) as f64))
            .collect(),
    };
    let chart = LineChart {
        title: format!("{}: answers per second, fault windows shaded", run.mode),
        x: Axis::from_zero("seconds since the start"),
        y: Axis::from_zero("attempts per second"),
        series: vec![
            series("acknowledged", "#1f77b4", |c| c.0),
            series("failed (5xx, no answer)", "#d62728", |c| c.1),
        ],
        width: 960.0,
        height: 260.0,
    };
    let bands: Vec<Band> = run
        .rows
        .iter()
        .filter(|row| row.skipped.is_none())
        .map(|row| Band {
            from: row.from_s,
            to: row.to_s,
            label: row.fault.to_string(),
            color: "#ff7f0e".into(),
        })
        .collect();
    chart.render_with_bands(&bands)
}

fn html(report: &Report, figures: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <title>Converge drill</title>\n<style>body {{ font-family: sans-serif; margin: 2rem; }} \
         pre {{ font-size: 0.85rem; }}{}</style>\n</head>\n<body>\n\
         <h1>Converge drill</h1>\n<p><code>{}</code> at {} on {}: {} orders/s offered, faults of {} s, seed {}.</p>\n\
         <p>Per fault: the attempts answered while it was in force (acknowledged, refused with a 4xx, \
         failed with a 5xx or no answer: the clients retried those under their key), how long after it \
         ended every client had its final answer and the system was quiet, and the checker's violations \
         over everything acknowledged so far.</p>\n<pre>{}</pre>\n{figures}\
         <footer>Every figure comes from drill.json, written next to this page.</footer>\n</body>\n</html>\n",
        report::svg::STYLE,
        escape(&report.command),
        escape(&report.started_at),
        escape(&report.backends),
        report.rate,
        report.fault_s,
        report.seed,
        escape(&table(report)),
    )
}
