//! How a [`Report`] is shown: [`table`] for the terminal, [`html`] for a self-contained page
//! (inline CSS and SVG, nothing loaded, opens from disk). The charts are `crates/report`'s SVG
//! primitives, so both benches' pages look alike.

use report::figures::{MISSING, duration_ms, ms, percent};
use report::html::escape;
use report::svg::{Axis, Bar, BarChart, BarGroup, LegendItem, LineChart, Series};

use crate::model::{Drill, PolicyRun, Report};
use crate::stats::Summary;

/// The offsets (ms) the tables show visibility at: at once, and two that tell async apart.
const TABLE_OFFSETS_MS: [f64; 3] = [0.0, 1.0, 5.0];

/// A chart's width and plot height, px.
const WIDE: f64 = 760.0;
const TALL: f64 = 260.0;
const SMALL: f64 = 440.0;
const SHORT: f64 = 190.0;

/// Series colors, by standby.
const REPLICA_COLORS: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
];

/// A policy's color.
fn policy_color(policy: &str) -> &'static str {
    match policy {
        "async" => "#2ca02c",
        "sync" => "#1f77b4",
        "first" => "#9467bd",
        "quorum" => "#ff7f0e",
        _ => "#7f7f7f",
    }
}

fn replica_color(i: usize) -> &'static str {
    REPLICA_COLORS[i % REPLICA_COLORS.len()]
}

/// WAL bytes: `812 B`, `12.3 kB`, `4.1 MB`.
pub fn bytes(v: f64) -> String {
    if !v.is_finite() {
        return MISSING.to_string();
    }
    match v.abs() {
        a if a < 1e3 => format!("{v:.0} B"),
        a if a < 1e6 => format!("{:.1} kB", v / 1e3),
        _ => format!("{:.1} MB", v / 1e6),
    }
}

/// The share at offset `t` of a curve over `offsets`.
fn at(offsets: &[f64], curve: &[f64], t: f64) -> f64 {
    offsets
        .iter()
        .position(|o| *o == t)
        .and_then(|k| curve.get(k).copied())
        .unwrap_or(f64::NAN)
}

/// Rows of cells, columns padded to their widest cell.
fn grid(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, s)| format!("{s:<w$}", w = widths[c]))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// "153 → 0": a count without guarantees, then with.
fn off_on(run: &PolicyRun, pick: impl Fn(&crate::model::SessionRun) -> usize) -> String {
    match run.sessions.as_slice() {
        [off, on] => format!("{} → {}", pick(off), pick(on)),
        _ => MISSING.to_string(),
    }
}

fn lost(run: &PolicyRun) -> String {
    let mut missing = run.lost.missing_on_primary;
    missing += run
        .lost
        .missing_on_replicas
        .iter()
        .map(|(_, n)| n)
        .sum::<usize>();
    if run.lost.caught_up {
        missing.to_string()
    } else {
        format!("{missing} (not caught up)")
    }
}

/// The writers' rows.
fn writes_rows(report: &Report) -> Vec<Vec<String>> {
    let mut rows = vec![
        vec![
            "policy",
            "commit waits for",
            "acked",
            "timed out",
            "commit p50",
            "p99",
            "max",
            "RYW violations off → on",
            "MR violations off → on",
            "lost",
        ]
        .into_iter()
        .map(String::from)
        .collect(),
    ];
    for run in &report.policies {
        let l = &run.writes.latency_ms;
        rows.push(vec![
            run.policy.clone(),
            run.waits_for.clone(),
            run.writes.acked.to_string(),
            run.writes.timed_out.to_string(),
            duration_ms(l.p50),
            duration_ms(l.p99),
            duration_ms(l.max),
            off_on(run, |s| s.ryw_violations),
            off_on(run, |s| s.mr_violations),
            lost(run),
        ]);
    }
    rows
}

/// A visibility cell: measured / predicted.
fn visibility_cell(report: &Report, measured: &[f64], predicted: &[f64], t: f64) -> String {
    format!(
        "{} / {}",
        percent(at(&report.offsets_ms, measured, t)),
        percent(at(&report.offsets_ms, predicted, t))
    )
}

/// The standbys' rows.
fn replica_rows(report: &Report) -> Vec<Vec<String>> {
    let mut header = vec!["policy".to_string(), "replica".to_string()];
    header.extend(TABLE_OFFSETS_MS.iter().map(|t| format!("seen at {t} ms")));
    header.extend(
        [
            "apply lag p50",
            "staleness p99",
            "max",
            "WAL behind p99",
            "replay lag p99",
        ]
        .map(String::from),
    );
    let mut rows = vec![header];
    for run in &report.policies {
        for r in &run.replicas {
            let mut row = vec![run.policy.clone(), r.name.clone()];
            row.extend(
                TABLE_OFFSETS_MS
                    .iter()
                    .map(|t| visibility_cell(report, &r.visibility, &r.predicted, *t)),
            );
            row.extend([
                duration_ms(r.apply_lag_ms.p50),
                duration_ms(r.staleness_ms.p99),
                duration_ms(r.staleness_ms.max),
                bytes(r.staleness_bytes.p99),
                duration_ms(r.replay_lag_ms.p99),
            ]);
            rows.push(row);
        }
    }
    rows
}

/// The drills' rows.
fn drill_rows(report: &Report) -> Vec<Vec<String>> {
    let mut rows = vec![
        [
            "policy",
            "stopped",
            "acked",
            "timed out",
            "commit p99 while down",
            "stalest",
            "recovered after",
            "lost",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for run in &report.policies {
        let Some(d) = &run.drill else { continue };
        let missing: usize = d.lost.missing_on_primary
            + d.lost
                .missing_on_replicas
                .iter()
                .map(|(_, n)| n)
                .sum::<usize>();
        rows.push(vec![
            run.policy.clone(),
            format!(
                "{} {:.1}–{:.1} s",
                d.stopped, d.stopped_at_s, d.restarted_at_s
            ),
            d.writes.acked.to_string(),
            format!(
                "{} ({} committed)",
                d.writes.timed_out, d.lost.timed_out_committed
            ),
            duration_ms(d.latency_down_ms.p99),
            duration_ms(d.max_staleness_ms),
            d.recovered_after_ms
                .map_or(MISSING.to_string(), duration_ms),
            if d.lost.caught_up {
                missing.to_string()
            } else {
                format!("{missing} (not caught up)")
            },
        ]);
    }
    rows
}

/// The terminal table.
pub fn table(report: &Report) -> String {
    let mut out = grid(&writes_rows(report));
    out.push_str("\nwhat a read on each standby sees, measured / predicted (PBS)\n");
    out.push_str(&grid(&replica_rows(report)));
    if report.policies.iter().any(|p| p.drill.is_some()) {
        out.push_str("\nthe drill: a standby stopped under load, then restarted\n");
        out.push_str(&grid(&drill_rows(report)));
    }
    out
}

/// The page's style sheet: a system font stack, nothing loaded.
const CSS: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; margin: 0 auto;
  max-width: 1280px; padding: 1.5rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; margin: 0 0 .5rem; } h2 { font-size: 1.2rem; margin: 2rem 0 .5rem;
  border-bottom: 1px solid #ddd; padding-bottom: .2rem; } h3 { font-size: 1rem; margin: 1rem 0 .3rem; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .9em; background: #f4f4f4;
  padding: .1em .3em; border-radius: 3px; }
table { border-collapse: collapse; font-size: .85rem; font-variant-numeric: tabular-nums; }
th, td { padding: .25rem .55rem; border-bottom: 1px solid #e2e2e2; white-space: nowrap; text-align: left; }
th { background: #f6f6f6; } .scroll { overflow-x: auto; }
.lesson { background: #f6f9fc; border-left: 4px solid #1f77b4; padding: .5rem 1rem; max-width: 62rem; }
.multiples { display: flex; flex-wrap: wrap; gap: 1rem 2rem; } figure { margin: .5rem 0 1rem; }
figcaption { font-weight: 600; font-size: .9rem; margin-bottom: .2rem; }
p.howto { color: #444; font-size: .9rem; max-width: 62rem; }
svg.chart { max-width: 100%; height: auto; font-size: 11px; font-family: inherit; }
svg .grid { stroke: #e6e6e6; } svg .frame { fill: none; stroke: #999; } svg .frame.empty { stroke-dasharray: 4 3; }
svg .tick { fill: #555; } svg .axis-title { fill: #333; font-size: 12px; } svg .legend-label { fill: #333; }
svg .nodata { fill: #888; font-size: 14px; } svg .bar-value { fill: #333; font-size: 9px; }
footer { margin-top: 2rem; color: #777; font-size: .8rem; }
"#;

fn html_table(rows: &[Vec<String>]) -> String {
    let mut out = String::from("<div class=\"scroll\"><table>\n");
    for (k, row) in rows.iter().enumerate() {
        let tag = if k == 0 { "th" } else { "td" };
        out.push_str("<tr>");
        for cell in row {
            out.push_str(&format!("<{tag}>{}</{tag}>", escape(cell)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table></div>\n");
    out
}

fn figure(caption: &str, svg: String) -> String {
    format!(
        "<figure><figcaption>{}</figcaption>{svg}</figure>\n",
        escape(caption)
    )
}

/// Commit latency per policy: p50 and p99 bars.
fn latency_chart(report: &Report) -> String {
    let groups = report
        .policies
        .iter()
        .map(|run| {
            let color = policy_color(&run.policy).to_string();
            let bar = |v: f64, opacity: f64, what: &str| Bar {
                value: v,
                color: color.clone(),
                opacity,
                title: format!("{} {what}: {} ms", run.policy, ms(v)),
                text: ms(v),
            };
            BarGroup {
                label: run.policy.clone(),
                bars: vec![
                    bar(run.writes.latency_ms.p50, 1.0, "p50"),
                    bar(run.writes.latency_ms.p99, 0.45, "p99"),
                ],
            }
        })
        .collect();
    let legend = [("p50", 1.0), ("p99", 0.45)]
        .into_iter()
        .map(|(label, opacity)| LegendItem {
            label: label.to_string(),
            color: "#555".to_string(),
            dash: None,
            opacity,
            bar: true,
        })
        .collect();
    BarChart {
        title: "Commit latency per policy".to_string(),
        y: Axis::from_zero("commit latency (ms)"),
        groups,
        legend,
        width: WIDE,
        height: TALL,
    }
    .render()
}

/// One policy's t-visibility: per standby, measured (solid) and predicted (dashed).
fn visibility_chart(report: &Report, run: &PolicyRun) -> String {
    // Up to one offset past where every curve has reached 100 %: the rest is a flat line.
    let complete = |k: usize| {
        run.replicas
            .iter()
            .all(|r| r.visibility.get(k) == Some(&1.0) && r.predicted.get(k) == Some(&1.0))
    };
    let shown = (0..report.offsets_ms.len())
        .find(|k| complete(*k))
        .map_or(report.offsets_ms.len(), |k| {
            (k + 2).min(report.offsets_ms.len())
        });
    let mut series = Vec::new();
    for (i, r) in run.replicas.iter().enumerate() {
        let points = |curve: &[f64]| -> Vec<(f64, f64)> {
            report
                .offsets_ms
                .iter()
                .copied()
                .zip(curve.iter().copied())
                .take(shown)
                .collect()
        };
        series.push(Series {
            label: format!("{} measured", r.name),
            color: replica_color(i).to_string(),
            dash: None,
            points: points(&r.visibility),
        });
        series.push(Series {
            label: format!("{} predicted (PBS)", r.name),
            color: replica_color(i).to_string(),
            dash: Some("6 3".to_string()),
            points: points(&r.predicted),
        });
    }
    LineChart {
        title: format!("t-visibility, {}", run.policy),
        x: Axis::log("ms after the commit returned"),
        y: Axis::percent("reads that see the write"),
        series,
        width: SMALL,
        height: SHORT,
    }
    .render()
}

/// Violations per policy, without and with guarantees.
fn violations_chart(report: &Report) -> String {
    let groups = report
        .policies
        .iter()
        .map(|run| BarGroup {
            label: run.policy.clone(),
            bars: run
                .sessions
                .iter()
                .flat_map(|s| {
                    let opacity = if s.guarantees == "on" { 0.45 } else { 1.0 };
                    [
                        ("read-your-writes", s.ryw_violations, "#d62728"),
                        ("monotonic reads", s.mr_violations, "#9467bd"),
                    ]
                    .map(|(what, n, color)| Bar {
                        value: n as f64,
                        color: color.to_string(),
                        opacity,
                        title: format!(
                            "{}: {what} violations, guarantees {}: {n}",
                            run.policy, s.guarantees
                        ),
                        text: n.to_string(),
                    })
                })
                .collect(),
        })
        .collect();
    let legend = [
        ("read-your-writes, off", "#d62728", 1.0),
        ("monotonic reads, off", "#9467bd", 1.0),
        ("read-your-writes, on", "#d62728", 0.45),
        ("monotonic reads, on", "#9467bd", 0.45),
    ]
    .into_iter()
    .map(|(label, color, opacity)| LegendItem {
        label: label.to_string(),
        color: color.to_string(),
        dash: None,
        opacity,
        bar: true,
    })
    .collect();
    BarChart {
        title: "Session-guarantee violations".to_string(),
        y: Axis::from_zero("violating reads"),
        groups,
        legend,
        width: WIDE,
        height: SHORT,
    }
    .render()
}

/// A drill's timeline: commits answered per second, and each standby's staleness.
fn drill_charts(run: &PolicyRun, drill: &Drill) -> String {
    let (commits, staleness) = drill_svgs(run, drill);
    format!(
        "<div class=\"multiples\">{}{}</div>\n",
        figure(
            &format!("{}: commits answered per second", run.policy),
            commits
        ),
        figure(
            &format!("{}: staleness of each standby", run.policy),
            staleness
        )
    )
}

/// The drill's two charts: commits answered per second, each standby's staleness.
fn drill_svgs(run: &PolicyRun, drill: &Drill) -> (String, String) {
    let per_s = 1.0 / drill.bucket_s;
    let commits = LineChart {
        title: format!("Commits answered, {} drill", run.policy),
        x: Axis::from_zero("s (stopped at the first mark, restarted at the second)"),
        y: Axis::from_zero("per second"),
        series: vec![
            Series {
                label: "acknowledged".to_string(),
                color: policy_color(&run.policy).to_string(),
                dash: None,
                points: drill
                    .buckets
                    .iter()
                    .map(|b| (b.t_s, b.acked as f64 * per_s))
                    .collect(),
            },
            Series {
                label: "timed out".to_string(),
                color: "#d62728".to_string(),
                dash: Some("4 3".to_string()),
                points: drill
                    .buckets
                    .iter()
                    .map(|b| (b.t_s, b.timed_out as f64 * per_s))
                    .collect(),
            },
            marks(drill, drill.buckets.iter().map(|b| b.acked as f64 * per_s)),
        ],
        width: SMALL,
        height: SHORT,
    };
    let mut series: Vec<Series> = run
        .replicas
        .iter()
        .enumerate()
        .map(|(i, r)| Series {
            label: r.name.clone(),
            color: replica_color(i).to_string(),
            dash: None,
            points: drill
                .buckets
                .iter()
                .map(|b| (b.t_s, b.staleness_ms[i]))
                .collect(),
        })
        .collect();
    series.push(marks(
        drill,
        drill.buckets.iter().flat_map(|b| b.staleness_ms.clone()),
    ));
    let staleness = LineChart {
        title: format!("Staleness, {} drill", run.policy),
        x: Axis::from_zero("s"),
        y: Axis::from_zero("staleness (ms)"),
        series,
        width: SMALL,
        height: SHORT,
    };
    (commits.render(), staleness.render())
}

/// Vertical marks at the stop and the restart, as a grey series (the charts draw polylines).
fn marks(drill: &Drill, values: impl Iterator<Item = f64>) -> Series {
    let top = values.filter(|v| v.is_finite()).fold(0.0, f64::max);
    let mut points = Vec::new();
    for t in [drill.stopped_at_s, drill.restarted_at_s] {
        if t.is_finite() {
            points.extend([(t, 0.0), (t, top), (t, 0.0)]);
        }
    }
    Series {
        label: "standby stopped / restarted".to_string(),
        color: "#999".to_string(),
        dash: Some("2 2".to_string()),
        points,
    }
}

/// A summary as `p50 / p99 / max`.
fn spread(s: &Summary, show: fn(f64) -> String) -> String {
    format!("{} / {} / {}", show(s.p50), show(s.p99), show(s.max))
}

/// The sessions' rows.
fn session_rows(report: &Report) -> Vec<Vec<String>> {
    let mut rows = vec![
        [
            "policy",
            "guarantees",
            "reads",
            "RYW violations",
            "MR violations",
            "waited",
            "on the primary",
            "read p50 / p99 / max",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for run in &report.policies {
        for s in &run.sessions {
            rows.push(vec![
                run.policy.clone(),
                s.guarantees.clone(),
                s.reads.to_string(),
                s.ryw_violations.to_string(),
                s.mr_violations.to_string(),
                s.waited.to_string(),
                s.on_primary.to_string(),
                spread(&s.read_ms, duration_ms),
            ]);
        }
    }
    rows
}

/// The loss checks' rows.
fn loss_rows(report: &Report) -> Vec<Vec<String>> {
    let mut rows = vec![
        [
            "run",
            "acknowledged",
            "missing on the primary",
            "missing on standbys",
            "timed out (committed)",
            "caught up",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for run in &report.policies {
        let drill = run
            .drill
            .as_ref()
            .map(|d| (format!("{} drill", run.policy), &d.lost));
        for (label, l) in std::iter::once((run.policy.clone(), &run.lost)).chain(drill) {
            let standbys: Vec<String> = l
                .missing_on_replicas
                .iter()
                .map(|(n, k)| format!("{n}: {k}"))
                .collect();
            rows.push(vec![
                label,
                l.acked.to_string(),
                l.missing_on_primary.to_string(),
                standbys.join(", "),
                format!("{} ({})", l.timed_out, l.timed_out_committed),
                if l.caught_up { "yes" } else { "no" }.to_string(),
            ]);
        }
    }
    rows
}

/// The page.
pub fn html(report: &Report) -> String {
    let s = &report.settings;
    let mut body = format!(
        "<h1>Replicated database nodes</h1>\n<p><code>{}</code><br>{} · {} writes/s for {} s over {} accounts, \
         seed {}, {} writers, standbys {}</p>\n",
        escape(&report.command),
        escape(&report.machine),
        s.rate_per_s,
        s.duration_s,
        s.accounts,
        s.seed,
        s.writers,
        escape(&s.replicas.join(", "))
    );
    body.push_str(
        "<p class=\"lesson\">The services' trade-off, one level down: a <b>synchronous</b> standby \
         makes the writer wait until it has applied the commit, and then every read on it is fresh; \
         an <b>asynchronous</b> one lets the writer go at once and serves stale reads for a while. \
         Session guarantees buy back read-your-writes and monotonic reads on asynchronous standbys \
         by waiting (bounded) or going to the primary — paid by the reads that ask, not by every write.</p>\n",
    );
    body.push_str("<h2>What the writer pays</h2>\n");
    body.push_str(&html_table(&writes_rows(report)));
    body.push_str(&figure(
        "Commit latency, p50 and p99",
        latency_chart(report),
    ));
    body.push_str("<h2>What a read on a standby sees</h2>\n<p class=\"howto\">The share of writes a read \
        on each standby sees t ms after the commit returned: solid, measured by reading; dashed, predicted \
        after PBS from each write's apply lag (watched, independently of any read) and each read's delay.</p>\n");
    body.push_str("<div class=\"multiples\">\n");
    for run in &report.policies {
        body.push_str(&figure(
            &format!(
                "{}: {}",
                run.policy,
                run.synchronous_standby_names_or_async()
            ),
            visibility_chart(report, run),
        ));
    }
    body.push_str("</div>\n");
    body.push_str(&html_table(&replica_rows(report)));
    body.push_str("<h2>Session guarantees</h2>\n<p class=\"howto\">Each session writes its own counter, \
        then reads it twice, from the standbys in turn. Off: straight to the standby. On: a read waits until \
        its standby has replayed the session's token (its last write, its highest read), up to the bound, or \
        goes to the primary.</p>\n");
    body.push_str(&figure("Violations per policy", violations_chart(report)));
    body.push_str(&html_table(&session_rows(report)));
    if report.policies.iter().any(|p| p.drill.is_some()) {
        body.push_str("<h2>Availability against consistency: a standby stopped under load</h2>\n");
        body.push_str(&html_table(&drill_rows(report)));
        for run in &report.policies {
            if let Some(d) = &run.drill {
                body.push_str(&format!("<h3>{}</h3>\n", escape(&run.policy)));
                body.push_str(&drill_charts(run, d));
            }
        }
    }
    body.push_str("<h2>Nothing lost</h2>\n<p class=\"howto\">After each run, once the standbys caught up: \
        every acknowledged write on the primary and on every standby. A timed-out write's client does not \
        know its outcome: cancelled while it waited for standbys, it stays committed on the primary; \
        cancelled before its commit (waiting for the row lock of an earlier write to the same account, \
        which a commit holds while it waits for standbys), it rolls back.</p>\n");
    body.push_str(&html_table(&loss_rows(report)));
    body.push_str(
        "<footer>Reproduce: <code>converge replicas bench</code> (see <code>--help</code>); \
        <code>report.json</code> beside this page holds every figure.</footer>\n",
    );
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Converge: replicated database nodes</title><style>{CSS}</style></head>\n<body>\n{body}</body></html>\n"
    )
}

/// The SVG rules of [`CSS`], for a chart that stands alone.
const SVG_CSS: &str = "svg.chart{font-size:11px;font-family:system-ui,sans-serif}\
    .grid{stroke:#e6e6e6}.frame{fill:none;stroke:#999}.frame.empty{stroke-dasharray:4 3}\
    .tick{fill:#555}.axis-title{fill:#333;font-size:12px}.legend-label{fill:#333}\
    .nodata{fill:#888;font-size:14px}.bar-value{fill:#333;font-size:9px}";

/// An inline chart made a file of its own: the SVG namespace, its style, a white background.
fn standalone(svg: &str) -> String {
    let Some(end) = svg.find('>') else {
        return svg.to_string();
    };
    let open = svg[..end].replacen("<svg ", "<svg xmlns=\"http://www.w3.org/2000/svg\" ", 1);
    format!(
        "{open}><style>{SVG_CSS}</style><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>{}\n",
        &svg[end + 1..]
    )
}

/// The report's charts as files of their own (`name.svg`, contents), for a README.
pub fn svg_files(report: &Report) -> Vec<(String, String)> {
    let mut files = vec![
        ("replicas-latency.svg".to_string(), latency_chart(report)),
        (
            "replicas-violations.svg".to_string(),
            violations_chart(report),
        ),
    ];
    for run in &report.policies {
        files.push((
            format!("replicas-visibility-{}.svg", run.policy),
            visibility_chart(report, run),
        ));
        if let Some(d) = &run.drill {
            let (commits, staleness) = drill_svgs(run, d);
            files.push((
                format!("replicas-drill-{}-commits.svg", run.policy),
                commits,
            ));
            files.push((
                format!("replicas-drill-{}-staleness.svg", run.policy),
                staleness,
            ));
        }
    }
    files
        .into_iter()
        .map(|(n, s)| (n, standalone(&s)))
        .collect()
}

impl PolicyRun {
    fn synchronous_standby_names_or_async(&self) -> String {
        if self.synchronous_standby_names.is_empty() {
            "asynchronous".to_string()
        } else {
            format!(
                "{}, {}",
                self.synchronous_standby_names, self.synchronous_commit
            )
        }
    }
}
