//! The terminal table: a header line, then one line per run, columns aligned (names to the left,
//! numbers to the right). The figures are those of [`figures::summary`], so the HTML table shows
//! the same ones.
//!
//! Columns: mode, Stats delay (when runs differ by it), offered and acknowledged orders/s,
//! acknowledged / refused / cancelled / failed, acknowledgement latency p50 / p99 / p99.9 / max
//! (ms), ratio to the baseline (p50×, p99×), the largest apply lag p99 over the services (ms),
//! the probability that a Stats read 1 / 10 / 100 ms after the acknowledgement reflects the
//! order, time to converge, peak RSS (MiB) and invariant violations.

use crate::figures::{self, Summary};
use crate::model::Report;

/// Spaces between two columns of the same group.
const GAP: usize = 1;
/// Spaces between two groups of columns.
const GROUP_GAP: usize = 2;

/// The table: a header line and one line per run, without a trailing newline after the last.
pub fn render(report: &Report) -> String {
    align(&figures::summary(report))
}

fn align(summary: &Summary) -> String {
    let widths: Vec<usize> = summary
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            summary
                .rows
                .iter()
                .filter_map(|row| row.get(i))
                .map(|cell| cell.chars().count())
                .chain([c.header.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let header: Vec<&str> = summary.columns.iter().map(|c| c.header.as_str()).collect();
    let mut lines = vec![line(summary, &widths, &header)];
    for row in &summary.rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        lines.push(line(summary, &widths, &cells));
    }
    lines.join("\n")
}

fn line(summary: &Summary, widths: &[usize], cells: &[&str]) -> String {
    let mut out = String::new();
    for (i, (col, width)) in summary.columns.iter().zip(widths).enumerate() {
        if i > 0 {
            let gap = if summary.columns[i - 1].group == col.group {
                GAP
            } else {
                GROUP_GAP
            };
            out.push_str(&" ".repeat(gap));
        }
        let cell = cells.get(i).copied().unwrap_or("");
        if col.numeric {
            out.push_str(&format!("{cell:>width$}"));
        } else {
            out.push_str(&format!("{cell:<width$}"));
        }
    }
    out.trim_end().to_string()
}

/// Each run's invariant violations, one per line under the run's name; an empty string when no
/// run has any.
pub fn render_violations(report: &Report) -> String {
    let mut out = String::new();
    for run in report.runs.iter().filter(|r| !r.violations.is_empty()) {
        let n = run.violations.len();
        out.push_str(&format!(
            "{}: {n} violation{}\n",
            report.run_label(run),
            if n == 1 { "" } else { "s" }
        ));
        for violation in &run.violations {
            out.push_str(&format!("  - {violation}\n"));
        }
    }
    out
}
