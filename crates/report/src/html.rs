//! The HTML page: one self-contained `index.html`. Inline CSS and inline SVG only: no script, no
//! font, no style sheet, no image from anywhere, and a Content-Security-Policy that forbids
//! loading any. Every string from the report is escaped.
//!
//! Sections: the header (command, start, machine, settings), the summary table (the figures of
//! the terminal table), then one chart section each for the acknowledgement latency CDF,
//! t-visibility, apply lag per service, throughput and backlog over time, the Stats delay sweep
//! (only when there was one), and the invariant violations.

use crate::figures::{self, MISSING};
use crate::model::{Report, Run};
use crate::svg::{Axis, Bar, BarChart, BarGroup, LegendItem, LineChart, Series};

/// Width of a full-width chart, px.
const WIDE: f64 = 760.0;
/// Height of the plot area of a full-width chart, px.
const TALL: f64 = 280.0;
/// Width of a small multiple (one chart per run), px.
const SMALL: f64 = 440.0;
/// Height of the plot area of a small multiple, px.
const SHORT: f64 = 190.0;

/// The page's style sheet: a system font stack, nothing loaded.
const CSS: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  margin: 0 auto; max-width: 1280px; padding: 1.5rem; color: #222; background: #fff; line-height: 1.45; }
h1 { font-size: 1.6rem; margin: 0 0 0.5rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 0.5rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
nav a { margin-right: 1rem; color: #1f5f9f; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: 0.9em;
  background: #f4f4f4; padding: 0.1em 0.3em; border-radius: 3px; word-break: break-all; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; margin: 0.5rem 0 1rem; }
dl.meta dt { font-weight: 600; }
dl.meta dd { margin: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85rem; font-variant-numeric: tabular-nums; }
th, td { padding: 0.25rem 0.55rem; border-bottom: 1px solid #e2e2e2; white-space: nowrap; }
th { background: #f6f6f6; text-align: left; cursor: help; }
.num { text-align: right; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; border-radius: 2px; margin-right: 0.4em; vertical-align: -0.05em; }
.bad { color: #b00020; font-weight: 600; }
.ok { color: #2a7a2a; }
.multiples { display: flex; flex-wrap: wrap; gap: 1rem 2rem; }
figure { margin: 0.5rem 0 1rem; }
figcaption { font-weight: 600; font-size: 0.9rem; margin-bottom: 0.2rem; }
p.howto { color: #444; font-size: 0.9rem; max-width: 62rem; }
p.howto::before { content: "How to read this: "; font-weight: 600; }
section.violations { border-left: 4px solid #b00020; padding-left: 1rem; }
section.violations li { color: #b00020; }
footer { margin-top: 2rem; color: #777; font-size: 0.8rem; }
"#;

/// `s` with `& < > " '` escaped, fit for HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The color of a mode: baseline grey, strong blue, queue green, cron orange.
pub fn mode_color(mode: &str) -> &'static str {
    match mode {
        "baseline" => "#7f7f7f",
        "strong" => "#1f77b4",
        "queue" => "#2ca02c",
        "cron" => "#ff7f0e",
        other => pick(other, &["#9467bd", "#8c564b", "#e377c2", "#17becf"]),
    }
}

/// The color of a service (and of `order`, the order's own status).
pub fn service_color(service: &str) -> &'static str {
    match service {
        "order" => "#6a3d9a",
        "payment" => "#17a2b8",
        "loyalty" => "#e377c2",
        "stats" => "#c0392b",
        other => pick(other, &["#bcbd22", "#8c564b", "#393b79", "#637939"]),
    }
}

/// A color of `palette` chosen by the name, so the same name always gets the same one.
fn pick(name: &str, palette: &[&'static str]) -> &'static str {
    let sum: usize = name.bytes().map(usize::from).sum();
    palette[sum % palette.len()]
}

/// Dash patterns telling the runs of one mode apart by their Stats delay.
const DASHES: [&str; 6] = ["", "8 3", "2 3", "10 3 2 3", "1 2", "14 4"];

/// The dash of a run: solid for the smallest Stats delay, then one pattern per delay.
fn run_dash(report: &Report, run: &Run) -> Option<String> {
    let index = report
        .stats_delays()
        .iter()
        .position(|d| *d == run.stats_delay_ms)
        .unwrap_or(0);
    let dash = DASHES[index % DASHES.len()];
    (!dash.is_empty()).then(|| dash.to_string())
}

/// The page.
pub fn render(report: &Report) -> String {
    let mut sections = vec![
        header(report),
        summary_section(report),
        latency_section(report),
        visibility_section(report),
        apply_lag_section(report),
        timeline_section(report),
    ];
    if report.is_sweep() {
        sections.push(sweep_section(report));
    }
    sections.push(violations_section(report));
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Converge bench report: {}</title>\n<style>{CSS}{}</style>\n</head>\n<body>\n{}\n\
         <footer>Every figure comes from report.json, written next to this page.</footer>\n</body>\n</html>\n",
        escape(&report.started_at),
        crate::svg::STYLE,
        sections.join("\n")
    )
}

fn header(report: &Report) -> String {
    let s = &report.settings;
    let delays: Vec<String> = s.stats_delays_ms.iter().map(u64::to_string).collect();
    let settings = format!(
        "rate {}, {} connections, {} s, {} accounts, seed {}, cron interval {} ms, Stats delay{} {} ms",
        match s.rate {
            Some(r) => format!("{r} orders/s"),
            None => "max (closed loop)".to_string(),
        },
        s.connections,
        number(s.duration_s),
        s.accounts,
        s.seed,
        s.cron_interval_ms,
        if s.stats_delays_ms.len() > 1 { "s" } else { "" },
        if delays.is_empty() {
            MISSING.to_string()
        } else {
            delays.join(", ")
        },
    );
    let mut nav = vec![
        ("summary", "Summary"),
        ("latency", "Latency"),
        ("visibility", "Visibility"),
        ("apply-lag", "Apply lag"),
        ("timeline", "Over time"),
    ];
    if report.is_sweep() {
        nav.push(("sweep", "Stats delay sweep"));
    }
    nav.push(("violations", "Violations"));
    let nav: Vec<String> = nav
        .iter()
        .map(|(id, name)| format!("<a href=\"#{id}\">{name}</a>"))
        .collect();
    format!(
        "<header>\n<h1>Converge bench report</h1>\n<dl class=\"meta\">\n\
         <dt>Command</dt><dd><code>{}</code></dd>\n\
         <dt>Started</dt><dd>{}</dd>\n\
         <dt>Machine</dt><dd>{} cores, {}</dd>\n\
         <dt>Settings</dt><dd>{}</dd>\n\
         <dt>Runs</dt><dd>{}</dd>\n</dl>\n<nav>{}</nav>\n</header>",
        escape(&report.command),
        escape(&report.started_at),
        report.machine.cores,
        escape(&report.machine.os),
        escape(&settings),
        report.runs.len(),
        nav.join("")
    )
}

/// A plain number, `-` when not finite.
fn number(v: f64) -> String {
    if v.is_finite() {
        v.to_string()
    } else {
        MISSING.to_string()
    }
}

fn section(id: &str, title: &str, body: &str, howto: &str) -> String {
    format!(
        "<section id=\"{id}\">\n<h2>{}</h2>\n{body}\n<p class=\"howto\">{}</p>\n</section>",
        escape(title),
        escape(howto)
    )
}

fn figure(caption: &str, svg: &str) -> String {
    format!(
        "<figure>\n<figcaption>{}</figcaption>\n{svg}\n</figure>",
        escape(caption)
    )
}

fn swatch(color: &str) -> String {
    format!(
        "<span class=\"swatch\" style=\"background:{}\"></span>",
        escape(color)
    )
}

fn summary_section(report: &Report) -> String {
    let summary = figures::summary(report);
    let mut out = String::from("<div class=\"scroll\"><table class=\"summary\">\n<thead><tr>");
    for c in &summary.columns {
        out.push_str(&format!(
            "<th{} title=\"{}\">{}</th>",
            if c.numeric { " class=\"num\"" } else { "" },
            escape(&c.description),
            escape(&c.header)
        ));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let violations_col = summary.columns.len().saturating_sub(1);
    for (run, row) in report.runs.iter().zip(&summary.rows) {
        out.push_str("<tr>");
        for (i, (c, cell)) in summary.columns.iter().zip(row).enumerate() {
            let mut classes = Vec::new();
            if c.numeric {
                classes.push("num");
            }
            if i == violations_col && !run.violations.is_empty() {
                classes.push("bad");
            }
            let class = if classes.is_empty() {
                String::new()
            } else {
                format!(" class=\"{}\"", classes.join(" "))
            };
            let prefix = if i == 0 {
                swatch(mode_color(&run.mode))
            } else {
                String::new()
            };
            out.push_str(&format!("<td{class}>{prefix}{}</td>", escape(cell)));
        }
        out.push_str("</tr>\n");
    }
    if report.runs.is_empty() {
        out.push_str(&format!(
            "<tr><td colspan=\"{}\">no runs</td></tr>\n",
            summary.columns.len()
        ));
    }
    out.push_str("</tbody></table></div>");
    section(
        "summary",
        "Summary",
        &out,
        "one row per run. Latencies are in ms, counted from each request's intended send time, so \
         a stalled server shows as latency rather than as fewer requests. p50× and p99× divide by \
         the baseline's figures at the same load (- when no baseline ran). \"lag p99\" is the \
         largest apply lag p99 over the services: how long after the acknowledgement the slowest \
         service had applied 99 % of the orders. vis@N ms is the probability that a Stats read N \
         ms after the acknowledgement already reflects the order (interpolated between the probed \
         delays; - outside them). \"converged\" runs from the last acknowledgement until every \
         service had applied every order. Hover a header for its meaning.",
    )
}

fn latency_section(report: &Report) -> String {
    let series = report
        .runs
        .iter()
        .map(|run| Series {
            label: report.run_label(run),
            color: mode_color(&run.mode).to_string(),
            dash: run_dash(report, run),
            points: run.ack_latency_cdf.clone(),
        })
        .collect();
    let chart = LineChart {
        title: "Acknowledgement latency CDF per run".to_string(),
        x: Axis::log("acknowledgement latency (ms, log scale)"),
        y: Axis::percent("orders acknowledged within x"),
        series,
        width: WIDE,
        height: TALL,
    };
    section(
        "latency",
        "Acknowledgement latency",
        &figure(
            "Acknowledgement latency, cumulative distribution",
            &chart.render(),
        ),
        "each line is a run; a point (x, y) means y % of its orders were acknowledged within x \
         ms. Further left is faster; a line that leans right at the top has a long tail. Strong \
         consistency answers only once every service agreed, so its line should sit to the right \
         of the baseline; queue and cron acknowledge before the other services apply the order, \
         so they should sit close to the baseline.",
    )
}

fn visibility_section(report: &Report) -> String {
    let mut figures_html = Vec::new();
    for run in &report.runs {
        let vis = &run.visibility;
        let series: Vec<Series> = vis
            .curves_sorted()
            .into_iter()
            .map(|curve| Series {
                label: curve.service.clone(),
                color: service_color(&curve.service).to_string(),
                dash: None,
                points: vis.points(curve),
            })
            .collect();
        let label = report.run_label(run);
        let chart = LineChart {
            title: format!("t-visibility, {label}"),
            x: Axis::log("delay after the acknowledgement (ms)"),
            y: Axis::percent("reads reflecting the order"),
            series,
            width: SMALL,
            height: SHORT,
        };
        figures_html.push(figure(
            &format!("{label} ({} orders probed)", vis.samples),
            &chart.render(),
        ));
    }
    if figures_html.is_empty() {
        figures_html.push(figure(
            "t-visibility",
            &crate::svg::empty_chart("t-visibility", SMALL, SHORT, "no runs"),
        ));
    }
    let mut k = String::from(
        "<h3>k-staleness of Stats reads</h3>\n<div class=\"scroll\"><table>\n<thead><tr><th>run</th>\
         <th class=\"num\">reads</th><th class=\"num\">mean</th><th class=\"num\">p99</th>\
         <th class=\"num\">max</th></tr></thead>\n<tbody>\n",
    );
    for run in &report.runs {
        let ks = &run.k_staleness;
        k.push_str(&format!(
            "<tr><td>{}{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
            swatch(mode_color(&run.mode)),
            escape(&report.run_label(run)),
            ks.reads,
            escape(&figures::ms(ks.mean)),
            escape(&number(ks.p99)),
            escape(&number(ks.max)),
        ));
    }
    k.push_str("</tbody></table></div>");
    section(
        "visibility",
        "What a client sees: t-visibility",
        &format!(
            "<div class=\"multiples\">\n{}\n</div>\n{k}",
            figures_html.join("\n")
        ),
        "one chart per run, one line per service (order is the order's own status). A point (t, \
         p) means a read made t ms after the acknowledgement reflected the order with probability \
         p. Under strong consistency every line should be at 100 % from the first delay; under \
         queue and cron the lines climb as the services catch up, and where a line reaches 100 % \
         is the window in which a client can see stale data. k-staleness counts how many \
         acknowledged orders a Stats read was behind.",
    )
}

fn apply_lag_section(report: &Report) -> String {
    const STATS: [(&str, f64); 3] = [("p50", 0.35), ("p99", 0.65), ("max", 1.0)];
    let legend: Vec<LegendItem> = STATS
        .iter()
        .map(|(name, opacity)| LegendItem {
            label: (*name).to_string(),
            color: "#555".to_string(),
            dash: None,
            opacity: *opacity,
            bar: true,
        })
        .collect();
    let mut figures_html = Vec::new();
    for run in &report.runs {
        let groups = run
            .apply_lag_sorted()
            .into_iter()
            .map(|lag| {
                let color = service_color(&lag.service);
                let values = [lag.lag.p50, lag.lag.p99, lag.max_ms];
                BarGroup {
                    label: lag.service.clone(),
                    bars: STATS
                        .iter()
                        .zip(values)
                        .map(|((name, opacity), value)| Bar {
                            value,
                            color: color.to_string(),
                            opacity: *opacity,
                            title: format!("{} {name}: {} ms", lag.service, figures::ms(value)),
                            text: figures::ms(value),
                        })
                        .collect(),
                }
            })
            .collect();
        let label = report.run_label(run);
        let chart = BarChart {
            title: format!("Apply lag per service, {label}"),
            y: Axis::log("apply lag (ms, log scale)"),
            groups,
            legend: legend.clone(),
            width: SMALL,
            height: SHORT,
        };
        figures_html.push(figure(&label, &chart.render()));
    }
    if figures_html.is_empty() {
        figures_html.push(figure(
            "Apply lag",
            &crate::svg::empty_chart("Apply lag", SMALL, SHORT, "no runs"),
        ));
    }
    section(
        "apply-lag",
        "Apply lag per service",
        &format!(
            "<div class=\"multiples\">\n{}\n</div>",
            figures_html.join("\n")
        ),
        "one chart per run; for each service, three bars: the p50 and p99 of the time from an \
         order's acknowledgement to that service applying it (estimated from the service's \
         histogram), and the largest lag it saw (exact). The y axis is logarithmic: each grid line \
         is ten times the one below. Under strong consistency the services apply before the \
         acknowledgement, so lags are near zero; under queue they follow the queue's delivery; \
         under cron they are bounded by the cron interval; the Stats delay adds to Stats' bars.",
    )
}

fn timeline_section(report: &Report) -> String {
    let chart = |title: &str, y: Axis, value: fn(&crate::model::TimelinePoint) -> f64| {
        let series = report
            .runs
            .iter()
            .map(|run| Series {
                label: report.run_label(run),
                color: mode_color(&run.mode).to_string(),
                dash: run_dash(report, run),
                points: run.timeline.iter().map(|p| (p.t_s, value(p))).collect(),
            })
            .collect();
        let chart = LineChart {
            title: title.to_string(),
            x: Axis::linear("time since the load started (s)"),
            y,
            series,
            width: WIDE,
            height: SHORT,
        };
        figure(title, &chart.render())
    };
    let body = [
        chart(
            "Orders acknowledged per second",
            Axis::from_zero("orders/s"),
            |p| p.acknowledged_per_s,
        ),
        chart(
            "Stats backlog: acknowledged orders Stats has not applied yet",
            Axis::from_zero("orders behind"),
            |p| p.stats_backlog,
        ),
        chart(
            "Acknowledgement latency p99 per second",
            Axis::from_zero("ms"),
            |p| p.ack_p99_ms,
        ),
        chart(
            "Resident memory of the system",
            Axis::from_zero("MiB"),
            |p| p.rss_mib,
        ),
    ]
    .join("\n");
    section(
        "timeline",
        "Throughput and lag over time",
        &body,
        "one line per run, one point per second of load. Throughput should be flat at the offered \
         rate (or at the system's capacity under --rate max); a dip means the system stalled. The \
         Stats backlog should stay bounded and return to zero: a backlog that keeps growing means \
         Stats cannot keep up with the offered rate. Memory should stay flat; a steady climb \
         hints at a leak or an unbounded queue.",
    )
}

fn sweep_section(report: &Report) -> String {
    let mut latency = Vec::new();
    let mut lag = Vec::new();
    for mode in report.modes() {
        let mut runs: Vec<&Run> = report.runs.iter().filter(|r| r.mode == mode).collect();
        runs.sort_by_key(|r| r.stats_delay_ms);
        let color = mode_color(mode).to_string();
        let line = |label: &str, dash: Option<&str>, value: &dyn Fn(&Run) -> f64| Series {
            label: format!("{mode} {label}"),
            color: color.clone(),
            dash: dash.map(str::to_string),
            points: runs
                .iter()
                .map(|r| (r.stats_delay_ms as f64, value(r)))
                .collect(),
        };
        latency.push(line("p50", None, &|r| r.ack_latency.p50));
        latency.push(line("p99", Some("8 3"), &|r| r.ack_latency.p99));
        lag.push(line("Stats lag p99", None, &|r| {
            r.service_lag("stats")
                .map(|l| l.lag.p99)
                .or_else(|| r.largest_apply_lag_p99().map(|(_, p99)| p99))
                .unwrap_or(f64::NAN)
        }));
        lag.push(line("converged after", Some("2 3"), &|r| {
            r.converged_after_ms
        }));
    }
    let latency = LineChart {
        title: "Acknowledgement latency vs Stats delay".to_string(),
        x: Axis::log("Stats delay (ms)"),
        y: Axis::log("acknowledgement latency (ms, log scale)"),
        series: latency,
        width: WIDE,
        height: TALL,
    };
    let lag = LineChart {
        title: "Stats apply lag and convergence vs Stats delay".to_string(),
        x: Axis::log("Stats delay (ms)"),
        y: Axis::log("ms (log scale)"),
        series: lag,
        width: WIDE,
        height: TALL,
    };
    section(
        "sweep",
        "Stats delay sweep",
        &format!(
            "{}\n{}",
            figure(
                "Acknowledgement latency p50 (solid) and p99 (dashed) vs Stats delay",
                &latency.render()
            ),
            figure(
                "Stats apply lag p99 (solid) and time to converge (dotted) vs Stats delay",
                &lag.render()
            )
        ),
        "the same load was run with a delay added to every Stats apply. Under strong \
         consistency the acknowledgement waits for Stats, so its latency should rise with the \
         delay; under queue and cron it should stay flat: the delay moves into the apply lag and \
         the time to converge (second chart) instead. The x axis is logarithmic, with 0 at its \
         left end.",
    )
}

fn violations_section(report: &Report) -> String {
    let runs: Vec<&Run> = report
        .runs
        .iter()
        .filter(|r| !r.violations.is_empty())
        .collect();
    if runs.is_empty() {
        return "<section id=\"violations\">\n<h2>Invariant violations</h2>\n\
                <p class=\"ok\">None: the checker found every invariant held in every run.</p>\n</section>"
            .to_string();
    }
    let mut out = String::from(
        "<section id=\"violations\" class=\"violations\">\n<h2 class=\"bad\">Invariant violations</h2>\n",
    );
    for run in runs {
        out.push_str(&format!(
            "<h3 class=\"bad\">{} ({})</h3>\n<ul>\n",
            escape(&report.run_label(run)),
            run.violations.len()
        ));
        for v in &run.violations {
            out.push_str(&format!("<li>{}</li>\n", escape(v)));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>");
    out
}
