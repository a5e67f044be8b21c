//! The HTML page: self-contained, escaped, one SVG per chart section, the same figures as the
//! terminal table.

mod common;

use common::{no_sweep, sample};
use report::{figures, html};

/// The body of `<section id="{id}" ...>...</section>`, if the page has that section.
fn section<'a>(page: &'a str, id: &str) -> Option<&'a str> {
    let start = page.find(&format!("<section id=\"{id}\""))?;
    let len = page[start..].find("</section>")?;
    Some(&page[start..start + len])
}

#[test]
fn every_chart_section_has_its_svgs() {
    let report = sample();
    let page = html::render(&report);
    let runs = report.runs.len();
    for (id, charts) in [
        ("latency", 1),
        ("visibility", runs),
        ("apply-lag", runs),
        ("timeline", 4),
        ("sweep", 2),
    ] {
        let body = section(&page, id).unwrap_or_else(|| panic!("no section {id}"));
        assert_eq!(body.matches("<svg").count(), charts, "section {id}");
        assert_eq!(body.matches("</svg>").count(), charts, "section {id}");
        assert!(body.contains("<p class=\"howto\">"), "section {id}");
        assert!(
            body.contains("<polyline") || body.contains("<rect x="),
            "{id}: nothing drawn"
        );
        assert!(!body.contains(">no data<"), "section {id}");
    }
    assert!(section(&page, "summary").is_some());
    assert!(section(&page, "violations").is_some());
}

#[test]
fn the_sweep_section_only_for_a_sweep() {
    let page = html::render(&no_sweep());
    assert!(section(&page, "sweep").is_none());
    assert!(!page.contains("href=\"#sweep\""));
    assert!(html::render(&sample()).contains("href=\"#sweep\""));
}

#[test]
fn no_outside_resource() {
    let page = html::render(&sample());
    for banned in [
        "http://",
        "https://",
        "//cdn",
        "src=",
        "@import",
        "url(",
        "<script",
        "<link",
        "<img",
        "<iframe",
        "@font-face",
    ] {
        assert!(!page.contains(banned), "the page contains {banned:?}");
    }
    // Every link is an anchor to a section of the page.
    let hrefs: Vec<&str> = page.split("href=\"").skip(1).collect();
    assert!(!hrefs.is_empty());
    for href in hrefs {
        let target = href.split('"').next().unwrap();
        let id = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("href {target}"));
        assert!(
            page.contains(&format!("id=\"{id}\"")),
            "no target for {target}"
        );
    }
    assert!(page.contains("Content-Security-Policy"));
    assert!(page.contains("font-family: system-ui"));
}

#[test]
fn strings_are_escaped() {
    let mut report = sample();
    report.command = "converge bench --label '<script>alert(\"x\")</script>' & more".to_string();
    report.machine.os = "<b>os</b>".to_string();
    report.runs[3].mode = "queue<i>".to_string();
    report.runs[3].apply_lag[1].service = "pay\"ment".to_string();
    report.runs[3].visibility.curves[1].service = "pay<ment>".to_string();
    report.runs[5]
        .violations
        .push("<img src=x onerror=alert(1)>".to_string());
    let page = html::render(&report);
    assert!(page.contains(
        "converge bench --label &#39;&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; &amp; more"
    ));
    assert!(page.contains("&lt;b&gt;os&lt;/b&gt;"));
    assert!(page.contains("queue&lt;i&gt;"));
    assert!(page.contains("pay&quot;ment"));
    assert!(page.contains("pay&lt;ment&gt;"));
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
    for raw in ["<script", "<b>", "<i>", "<img", "pay\"ment", "<ment>"] {
        assert!(!page.contains(raw), "unescaped {raw:?}");
    }
}

#[test]
fn violations_in_red() {
    let mut report = sample();
    let page = html::render(&report);
    let body = section(&page, "violations").unwrap();
    assert!(body.contains("class=\"ok\""));
    assert!(!body.contains("class=\"bad\""));
    report.runs[4]
        .violations
        .push("order 7 applied twice by loyalty".to_string());
    let page = html::render(&report);
    let body = section(&page, "violations").unwrap();
    assert!(body.starts_with("<section id=\"violations\" class=\"violations\">"));
    assert!(body.contains("<h3 class=\"bad\">queue, stats 20 ms (1)</h3>"));
    assert!(body.contains("<li>order 7 applied twice by loyalty</li>"));
    let css = page.split("</style>").next().unwrap();
    assert!(css.contains("section.violations li { color: #b00020; }"));
    // The summary's violations cell too.
    assert!(
        section(&page, "summary")
            .unwrap()
            .contains("<td class=\"num bad\">1</td>")
    );
}

#[test]
fn the_summary_shows_the_table_figures() {
    let report = sample();
    let page = html::render(&report);
    let body = section(&page, "summary").unwrap();
    let tbody = body.split("<tbody>").nth(1).unwrap();
    assert_eq!(tbody.matches("<tr>").count(), report.runs.len());
    let summary = figures::summary(&report);
    for (row, html_row) in summary.rows.iter().zip(tbody.split("<tr>").skip(1)) {
        let cells: Vec<&str> = html_row
            .split("<td")
            .skip(1)
            .map(|td| {
                let text = td.split("</td>").next().unwrap();
                text.rsplit('>').next().unwrap()
            })
            .collect();
        let expected: Vec<String> = row.iter().map(|c| html::escape(c)).collect();
        assert_eq!(cells, expected);
    }
    assert!(tbody.contains(">1.23</td>"));
    for c in &summary.columns {
        assert!(body.contains(&format!(">{}</th>", html::escape(&c.header))));
    }
}

#[test]
fn header_shows_command_time_machine_settings() {
    let page = html::render(&sample());
    let header = page.split("</header>").next().unwrap();
    assert!(
        header.contains("<code>converge bench --rate 500 --duration 30s --stats-delay 0,20</code>")
    );
    assert!(header.contains("2025-06-01T12:00:00+02:00"));
    assert!(header.contains("8 cores, linux"));
    assert!(header.contains(
        "rate 500 orders/s, 64 connections, 30 s, 1000 accounts, seed 42, cron interval 500 ms, Stats delays 0, 20 ms"
    ));
}

#[test]
fn colors_per_mode_and_service() {
    let page = html::render(&sample());
    let latency = section(&page, "latency").unwrap();
    for color in ["#7f7f7f", "#1f77b4", "#2ca02c", "#ff7f0e"] {
        assert!(latency.contains(&format!("stroke=\"{color}\"")), "{color}");
    }
    // The second run of a mode (Stats delay 20 ms) is dashed.
    assert!(latency.contains("<title>strong, stats 20 ms</title><polyline"));
    assert!(latency.contains("stroke=\"#1f77b4\" stroke-width=\"2\" stroke-dasharray="));
    let visibility = section(&page, "visibility").unwrap();
    for color in [
        html::service_color("order"),
        html::service_color("payment"),
        html::service_color("loyalty"),
        html::service_color("stats"),
    ] {
        assert!(
            visibility.contains(&format!("stroke=\"{color}\"")),
            "{color}"
        );
    }
}
