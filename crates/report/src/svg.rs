//! Hand-written SVG charts, meant to be inlined in the HTML page: a [`LineChart`] (one polyline
//! per [`Series`]) and a grouped [`BarChart`], each with axes, ticks, grid and a legend.
//!
//! No data is ever a reason to panic: points with a NaN or infinite coordinate are skipped, as
//! are negative values on a log axis; a chart without any drawable point says "no data"; a
//! single value gets a range around it. A log axis whose data hold a zero becomes "log-ish":
//! it draws `log10(v + c)`, `c` being the smallest positive value, so that 0 has a place (its
//! tick reads `0`).
//!
//! The SVG carries no `xmlns` (not needed inline in HTML) and refers to nothing outside itself.

use crate::html::escape;

/// How the charts look: the page inlines it once, a chart saved on its own carries it (see
/// [`standalone`]).
pub const STYLE: &str = "\
svg.chart { max-width: 100%; height: auto; font-size: 11px; font-family: inherit; }
svg .grid { stroke: #e6e6e6; stroke-width: 1; }
svg .frame { fill: none; stroke: #999; }
svg .frame.empty { stroke-dasharray: 4 3; }
svg .tick { fill: #555; }
svg .axis-title { fill: #333; font-size: 12px; }
svg .legend-label { fill: #333; }
svg .nodata { fill: #888; font-size: 14px; }
svg .bar-value { fill: #333; font-size: 9px; }
";

/// Left margin of the plot area (room for the y tick labels and the y axis title).
const LEFT: f64 = 66.0;
/// Right margin.
const RIGHT: f64 = 18.0;
/// Top margin.
const TOP: f64 = 12.0;
/// Below the plot area: x tick labels and the x axis title.
const BELOW: f64 = 44.0;
/// Height of a row of the legend.
const LEGEND_ROW: f64 = 18.0;
/// Estimated width of a character of the 11 px labels.
const CHAR_W: f64 = 6.4;
/// Series with at most this many points also get a dot at each point.
const MARKERS_UP_TO: usize = 24;

/// A rendered chart as a file of its own (`.svg`): with the SVG namespace, which a file needs
/// and inline SVG does not, and its style sheet inside.
pub fn standalone(svg: &str) -> String {
    let Some(rest) = svg.strip_prefix("<svg ") else {
        return svg.to_string();
    };
    let (open, body) = rest.split_once('>').unwrap_or((rest, ""));
    format!("<svg xmlns=\"http://www.w3.org/2000/svg\" {open}><style>{STYLE}</style>{body}")
}

/// How an axis maps values to positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Linear, with "nice" round ticks.
    Linear,
    /// Log10, ticks at the decades (and at 2 and 5 when the range is short). Log-ish when the
    /// data hold a zero (see the module's documentation).
    Log,
    /// Fractions in `[0, 1]` shown as 0–100 %; values outside are clamped.
    Percent,
}

/// An axis: its title and scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub label: String,
    pub scale: Scale,
    /// For a linear axis: stretch the range to include 0.
    pub include_zero: bool,
}

impl Axis {
    /// A linear axis fitted to the data.
    pub fn linear(label: &str) -> Self {
        Self {
            label: label.to_string(),
            scale: Scale::Linear,
            include_zero: false,
        }
    }

    /// A linear axis that starts at 0 (counts, rates).
    pub fn from_zero(label: &str) -> Self {
        Self {
            include_zero: true,
            ..Self::linear(label)
        }
    }

    /// A log axis.
    pub fn log(label: &str) -> Self {
        Self {
            scale: Scale::Log,
            ..Self::linear(label)
        }
    }

    /// A 0–100 % axis for fractions.
    pub fn percent(label: &str) -> Self {
        Self {
            scale: Scale::Percent,
            ..Self::linear(label)
        }
    }
}

/// One line of a [`LineChart`].
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    /// A CSS color, e.g. `#1f77b4`.
    pub color: String,
    /// An SVG `stroke-dasharray`, e.g. `6 3`; `None` for a solid line.
    pub dash: Option<String>,
    /// `(x, y)` points, drawn in this order.
    pub points: Vec<(f64, f64)>,
}

/// A line chart: one polyline per series, the legend under the plot.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// Read by screen readers and shown as a tooltip.
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
    /// Width of the whole SVG, px.
    pub width: f64,
    /// Height of the plot area, px (the SVG adds the axes and the legend).
    pub height: f64,
}

/// An entry of a legend.
#[derive(Debug, Clone, PartialEq)]
pub struct LegendItem {
    pub label: String,
    pub color: String,
    pub dash: Option<String>,
    /// Fill opacity of a bar swatch.
    pub opacity: f64,
    /// A box swatch (bars) rather than a line swatch.
    pub bar: bool,
}

/// One bar of a [`BarGroup`].
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub value: f64,
    pub color: String,
    pub opacity: f64,
    /// The tooltip, e.g. `stats p99: 12.3 ms`.
    pub title: String,
    /// Written above the bar when there is room, e.g. `12.3`.
    pub text: String,
}

/// Bars side by side under one label.
#[derive(Debug, Clone, PartialEq)]
pub struct BarGroup {
    pub label: String,
    pub bars: Vec<Bar>,
}

/// A grouped bar chart; the x axis is the groups.
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    pub title: String,
    pub y: Axis,
    pub groups: Vec<BarGroup>,
    pub legend: Vec<LegendItem>,
    pub width: f64,
    pub height: f64,
}

/// Maps the values of one axis to a fraction of its length, with its ticks.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapper {
    scale: Scale,
    /// Added before the log (log-ish axis); 0 for a plain log.
    offset: f64,
    /// The range, in transformed units (log10 for a log axis).
    lo: f64,
    hi: f64,
    /// `(position in transformed units, label)`.
    ticks: Vec<(f64, String)>,
}

/// Whether `v` can be drawn on a `scale` axis at all.
pub fn accepts(scale: Scale, v: f64) -> bool {
    v.is_finite() && (scale != Scale::Log || v >= 0.0)
}

impl Mapper {
    /// A mapper fitted to `values` (those [`accepts`] refuses are ignored); `None` when no value
    /// is left, except for a percent axis, always 0–100 %.
    pub fn new(scale: Scale, include_zero: bool, values: &[f64]) -> Option<Self> {
        let values: Vec<f64> = values
            .iter()
            .copied()
            .filter(|v| accepts(scale, *v))
            .collect();
        match scale {
            Scale::Percent => Some(Self::percent()),
            _ if values.is_empty() => None,
            Scale::Linear => Self::linear(include_zero, &values),
            Scale::Log => Self::log(&values),
        }
    }

    fn percent() -> Self {
        let ticks = [0.0, 0.25, 0.5, 0.75, 1.0]
            .iter()
            .map(|f| (*f, format!("{:.0}%", f * 100.0)))
            .collect();
        Self {
            scale: Scale::Percent,
            offset: 0.0,
            lo: 0.0,
            hi: 1.0,
            ticks,
        }
    }

    fn linear(include_zero: bool, values: &[f64]) -> Option<Self> {
        let mut min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let mut max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if include_zero {
            min = min.min(0.0);
            max = max.max(0.0);
        }
        if max <= min {
            if max == 0.0 {
                max = 1.0;
            } else {
                let pad = max.abs() * 0.5;
                min -= pad;
                max += pad;
            }
        }
        let step = nice_step((max - min) / 5.0);
        let first = (min / step).floor();
        let last = (max / step).ceil();
        let (lo, hi) = (first * step, last * step);
        if !(lo.is_finite() && hi.is_finite() && hi > lo) || last - first > 50.0 {
            return None;
        }
        let ticks = (0..=(last - first) as i64)
            .map(|k| {
                let v = (first + k as f64) * step;
                (v, tick_label(v))
            })
            .collect();
        Some(Self {
            scale: Scale::Linear,
            offset: 0.0,
            lo,
            hi,
            ticks,
        })
    }

    fn log(values: &[f64]) -> Option<Self> {
        // With a zero in the data, 0 goes one decade below the smallest positive value.
        let smallest = values
            .iter()
            .copied()
            .filter(|v| *v > 0.0)
            .fold(f64::INFINITY, f64::min);
        let offset = match (values.contains(&0.0), smallest.is_finite()) {
            (false, _) => 0.0,
            (true, true) => smallest / 10.0,
            (true, false) => 1.0,
        };
        let t: Vec<f64> = values.iter().map(|v| (v + offset).log10()).collect();
        let tmin = t.iter().copied().fold(f64::INFINITY, f64::min);
        let tmax = t.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // Each end goes to the next decade when that is close, else just past the data; a
        // log-ish axis starts at 0; the range is at least one decade, so it has ticks.
        let pad = 0.03 * (tmax - tmin).max(0.5);
        let mut hi = if tmax.ceil() - tmax < 0.3 {
            tmax.ceil()
        } else {
            tmax + pad
        };
        let mut lo = if offset > 0.0 {
            tmin
        } else if tmin - tmin.floor() < 0.3 {
            tmin.floor()
        } else {
            tmin - pad
        };
        if !(lo.is_finite() && hi.is_finite()) {
            return None;
        }
        if hi <= lo {
            if offset == 0.0 {
                lo -= 1.0;
            }
            hi += 1.0;
        }
        if hi - lo < 1.0 {
            if offset > 0.0 {
                hi = lo + 1.0;
            } else {
                let mid = (lo + hi) / 2.0;
                (lo, hi) = (mid - 0.5, mid + 0.5);
            }
        }
        let decades = (hi - lo).ceil() as i32;
        let every = ((decades + 7) / 8).max(1);
        let mut ticks = Vec::new();
        if offset > 0.0 {
            ticks.push((lo, "0".to_string()));
        }
        let first = lo.floor() as i32;
        for k in first..=hi as i32 {
            let decade = 10f64.powi(k);
            let mut values = Vec::new();
            if (k - first) % every == 0 {
                values.push(decade);
            }
            if decades <= 2 {
                values.extend([2.0 * decade, 5.0 * decade]);
            }
            for v in values {
                let pos = (v + offset).log10();
                // Ticks too close to the 0 tick of a log-ish axis would read wrong.
                if v >= 5.0 * offset && pos >= lo && pos <= hi + 1e-9 {
                    ticks.push((pos, tick_label(v)));
                }
            }
        }
        Some(Self {
            scale: Scale::Log,
            offset,
            lo,
            hi,
            ticks,
        })
    }

    /// `v` in transformed units; `None` when it cannot be drawn.
    fn transform(&self, v: f64) -> Option<f64> {
        if !accepts(self.scale, v) {
            return None;
        }
        match self.scale {
            Scale::Linear => Some(v),
            Scale::Percent => Some(v.clamp(0.0, 1.0)),
            Scale::Log => {
                let t = (v + self.offset).log10();
                t.is_finite().then_some(t)
            }
        }
    }

    /// Where `v` falls along the axis: 0 at the start, 1 at the end; `None` when it cannot be
    /// drawn.
    pub fn fraction(&self, v: f64) -> Option<f64> {
        let t = self.transform(v)?;
        Some((t - self.lo) / (self.hi - self.lo))
    }

    /// The ticks: `(fraction along the axis, label)`.
    pub fn ticks(&self) -> Vec<(f64, String)> {
        self.ticks
            .iter()
            .map(|(t, label)| ((t - self.lo) / (self.hi - self.lo), label.clone()))
            .collect()
    }
}

/// A round step (1, 2 or 5 times a power of ten) close to `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let f = raw / magnitude;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// A short tick label: `0`, `0.25`, `3`, `20k`, `1.5M`, `1e-6`.
pub fn tick_label(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".to_string()
    } else if !(1e-3..1e10).contains(&a) {
        format!("{v:e}")
    } else if a >= 1e7 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

/// Up to 3 decimals, trailing zeros removed.
fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// A pixel coordinate.
fn px(v: f64) -> String {
    format!("{v:.1}")
}

fn open_svg(title: &str, width: f64, height: f64) -> String {
    let title = escape(title);
    format!(
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{title}\"><title>{title}</title>\n",
        w = px(width),
        h = px(height),
    )
}

/// A chart frame saying `message` instead of a plot.
pub fn empty_chart(title: &str, width: f64, height: f64, message: &str) -> String {
    let total = height + TOP + BELOW;
    let mut out = open_svg(title, width, total);
    out.push_str(&format!(
        "<rect class=\"frame empty\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>\n",
        px(LEFT),
        px(TOP),
        px((width - LEFT - RIGHT).max(1.0)),
        px(height.max(1.0))
    ));
    out.push_str(&format!(
        "<text class=\"nodata\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n</svg>",
        px(LEFT + (width - LEFT - RIGHT) / 2.0),
        px(TOP + height / 2.0),
        escape(message)
    ));
    out
}

/// The plot area: left, top, width, height.
#[derive(Debug, Clone, Copy)]
struct Area {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
}

impl Area {
    fn new(width: f64, height: f64) -> Self {
        Self {
            left: LEFT,
            top: TOP,
            width: (width - LEFT - RIGHT).max(1.0),
            height: height.max(1.0),
        }
    }

    fn x(&self, fraction: f64) -> f64 {
        self.left + fraction * self.width
    }

    fn y(&self, fraction: f64) -> f64 {
        self.top + (1.0 - fraction) * self.height
    }

    fn bottom(&self) -> f64 {
        self.top + self.height
    }
}

/// Grid lines and tick labels of the y axis, the frame, and both axis titles.
fn y_axis(out: &mut String, area: Area, y: &Mapper, y_label: &str, x_label: &str) {
    for (f, label) in y.ticks() {
        let py = px(area.y(f));
        out.push_str(&format!(
            "<line class=\"grid\" x1=\"{}\" y1=\"{py}\" x2=\"{}\" y2=\"{py}\"/><text class=\"tick\" x=\"{}\" y=\"{py}\" dy=\"0.32em\" text-anchor=\"end\">{}</text>\n",
            px(area.left),
            px(area.left + area.width),
            px(area.left - 5.0),
            escape(&label)
        ));
    }
    out.push_str(&format!(
        "<rect class=\"frame\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>\n",
        px(area.left),
        px(area.top),
        px(area.width),
        px(area.height)
    ));
    let cy = area.top + area.height / 2.0;
    out.push_str(&format!(
        "<text class=\"axis-title\" x=\"12\" y=\"{cy}\" transform=\"rotate(-90 12 {cy})\" text-anchor=\"middle\">{}</text>\n",
        escape(y_label),
        cy = px(cy)
    ));
    out.push_str(&format!(
        "<text class=\"axis-title\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
        px(area.left + area.width / 2.0),
        px(area.bottom() + 34.0),
        escape(x_label)
    ));
}

/// Grid lines and tick labels of the x axis.
fn x_ticks(out: &mut String, area: Area, x: &Mapper) {
    for (f, label) in x.ticks() {
        let pxx = px(area.x(f));
        out.push_str(&format!(
            "<line class=\"grid\" x1=\"{pxx}\" y1=\"{}\" x2=\"{pxx}\" y2=\"{}\"/><text class=\"tick\" x=\"{pxx}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            px(area.top),
            px(area.bottom()),
            px(area.bottom() + 15.0),
            escape(&label)
        ));
    }
}

/// Lays the legend out in rows under the plot; returns its SVG and its height.
fn legend(items: &[LegendItem], left: f64, width: f64, top: f64) -> (String, f64) {
    if items.is_empty() {
        return (String::new(), 0.0);
    }
    let mut out = String::from("<g class=\"legend\">\n");
    let (mut x, mut y) = (left, top);
    for item in items {
        let w = 26.0 + item.label.chars().count() as f64 * CHAR_W + 14.0;
        if x > left && x + w > left + width {
            x = left;
            y += LEGEND_ROW;
        }
        let mid = y + LEGEND_ROW / 2.0;
        let color = escape(&item.color);
        if item.bar {
            out.push_str(&format!(
                "<rect x=\"{}\" y=\"{}\" width=\"18\" height=\"10\" fill=\"{color}\" fill-opacity=\"{}\"/>",
                px(x),
                px(mid - 5.0),
                item.opacity
            ));
        } else {
            out.push_str(&format!(
                "<line class=\"series\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{color}\" stroke-width=\"2\"{}/>",
                px(x),
                px(mid),
                px(x + 20.0),
                px(mid),
                dash_attr(&item.dash)
            ));
        }
        out.push_str(&format!(
            "<text class=\"legend-label\" x=\"{}\" y=\"{}\" dy=\"0.32em\">{}</text>\n",
            px(x + 26.0),
            px(mid),
            escape(&item.label)
        ));
        x += w;
    }
    out.push_str("</g>\n");
    (out, y + LEGEND_ROW - top)
}

fn dash_attr(dash: &Option<String>) -> String {
    dash.as_ref()
        .map(|d| format!(" stroke-dasharray=\"{}\"", escape(d)))
        .unwrap_or_default()
}

/// A shaded stretch of a [`LineChart`]'s x axis, behind the lines: a fault window, say.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub from: f64,
    pub to: f64,
    /// Written at the top of the band, and its tooltip.
    pub label: String,
    /// A CSS color, drawn translucent.
    pub color: String,
}

/// The bands, clipped to the plot area.
fn bands(out: &mut String, area: Area, x: &Mapper, bands: &[Band]) {
    for band in bands {
        let (Some(from), Some(to)) = (x.fraction(band.from), x.fraction(band.to)) else {
            continue;
        };
        let (from, to) = (from.clamp(0.0, 1.0), to.clamp(0.0, 1.0));
        if to <= from {
            continue;
        }
        let (left, right) = (area.x(from), area.x(to));
        out.push_str(&format!(
            "<g class=\"band\"><title>{label}</title><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{color}\" fill-opacity=\"0.18\"/>\
             <text class=\"tick\" x=\"{}\" y=\"{}\" transform=\"rotate(-90 {} {})\" text-anchor=\"end\">{label}</text></g>\n",
            px(left),
            px(area.top),
            px(right - left),
            px(area.height),
            px(left + 10.0),
            px(area.top + 4.0),
            px(left + 10.0),
            px(area.top + 4.0),
            label = escape(&band.label),
            color = escape(&band.color),
        ));
    }
}

impl LineChart {
    /// The chart as an `<svg>` element.
    pub fn render(&self) -> String {
        self.render_with_bands(&[])
    }

    /// The chart with `bands` shaded behind its lines.
    pub fn render_with_bands(&self, shaded: &[Band]) -> String {
        let drawable = |(x, y): &(f64, f64)| accepts(self.x.scale, *x) && accepts(self.y.scale, *y);
        let points: Vec<Vec<(f64, f64)>> = self
            .series
            .iter()
            .map(|s| s.points.iter().copied().filter(drawable).collect())
            .collect();
        let xs: Vec<f64> = points.iter().flatten().map(|p| p.0).collect();
        let ys: Vec<f64> = points.iter().flatten().map(|p| p.1).collect();
        let (Some(xm), Some(ym)) = (
            Mapper::new(self.x.scale, self.x.include_zero, &xs),
            Mapper::new(self.y.scale, self.y.include_zero, &ys),
        ) else {
            return empty_chart(&self.title, self.width, self.height, "no data");
        };
        if xs.is_empty() {
            return empty_chart(&self.title, self.width, self.height, "no data");
        }

        let area = Area::new(self.width, self.height);
        let mut body = String::new();
        bands(&mut body, area, &xm, shaded);
        x_ticks(&mut body, area, &xm);
        y_axis(&mut body, area, &ym, &self.y.label, &self.x.label);
        for (series, points) in self.series.iter().zip(&points) {
            let pixels: Vec<(f64, f64)> = points
                .iter()
                .filter_map(|(x, y)| Some((area.x(xm.fraction(*x)?), area.y(ym.fraction(*y)?))))
                .collect();
            if pixels.is_empty() {
                continue;
            }
            let color = escape(&series.color);
            body.push_str(&format!(
                "<g class=\"series\"><title>{}</title>",
                escape(&series.label)
            ));
            if pixels.len() > 1 {
                let coords: Vec<String> = pixels
                    .iter()
                    .map(|(x, y)| format!("{},{}", px(*x), px(*y)))
                    .collect();
                body.push_str(&format!(
                    "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{}/>",
                    coords.join(" "),
                    dash_attr(&series.dash)
                ));
            }
            if pixels.len() <= MARKERS_UP_TO {
                for (x, y) in &pixels {
                    body.push_str(&format!(
                        "<circle cx=\"{}\" cy=\"{}\" r=\"2.5\" fill=\"{color}\"/>",
                        px(*x),
                        px(*y)
                    ));
                }
            }
            body.push_str("</g>\n");
        }
        let items: Vec<LegendItem> = self
            .series
            .iter()
            .map(|s| LegendItem {
                label: s.label.clone(),
                color: s.color.clone(),
                dash: s.dash.clone(),
                opacity: 1.0,
                bar: false,
            })
            .collect();
        let (legend, legend_height) = legend(&items, area.left, area.width, area.bottom() + BELOW);
        let total = area.bottom() + BELOW + legend_height + 4.0;
        let mut out = open_svg(&self.title, self.width, total);
        out.push_str(&body);
        out.push_str(&legend);
        out.push_str("</svg>");
        out
    }
}

impl BarChart {
    /// The chart as an `<svg>` element.
    pub fn render(&self) -> String {
        let values: Vec<f64> = self
            .groups
            .iter()
            .flat_map(|g| g.bars.iter().map(|b| b.value))
            .filter(|v| accepts(self.y.scale, *v))
            .collect();
        let Some(ym) = Mapper::new(self.y.scale, self.y.include_zero, &values) else {
            return empty_chart(&self.title, self.width, self.height, "no data");
        };
        if values.is_empty() {
            return empty_chart(&self.title, self.width, self.height, "no data");
        }
        let area = Area::new(self.width, self.height);
        let mut body = String::new();
        y_axis(&mut body, area, &ym, &self.y.label, "");
        let base = match self.y.scale {
            Scale::Linear => ym.fraction(0.0).unwrap_or(0.0).clamp(0.0, 1.0),
            Scale::Log | Scale::Percent => 0.0,
        };
        let group_w = area.width / self.groups.len().max(1) as f64;
        for (g, group) in self.groups.iter().enumerate() {
            let gx = area.x(0.0) + g as f64 * group_w;
            body.push_str(&format!(
                "<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                px(gx + group_w / 2.0),
                px(area.bottom() + 15.0),
                escape(&group.label)
            ));
            let bar_w = group_w * 0.8 / group.bars.len().max(1) as f64;
            for (b, bar) in group.bars.iter().enumerate() {
                let Some(f) = ym.fraction(bar.value) else {
                    continue;
                };
                let x = gx + group_w * 0.1 + b as f64 * bar_w;
                let (y0, y1) = (area.y(base), area.y(f.clamp(0.0, 1.0)));
                let (top, mut h) = (y0.min(y1), (y0 - y1).abs());
                h = h.max(1.0);
                body.push_str(&format!(
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" fill-opacity=\"{}\"><title>{}</title></rect>",
                    px(x + 1.0),
                    px(top.min(y0 - h)),
                    px((bar_w - 2.0).max(1.0)),
                    px(h),
                    escape(&bar.color),
                    bar.opacity,
                    escape(&bar.title)
                ));
                if bar_w >= 18.0 && !bar.text.is_empty() {
                    body.push_str(&format!(
                        "<text class=\"bar-value\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                        px(x + bar_w / 2.0),
                        px(top - 3.0),
                        escape(&bar.text)
                    ));
                }
                body.push('\n');
            }
        }
        let (legend, legend_height) =
            legend(&self.legend, area.left, area.width, area.bottom() + 24.0);
        let total = area.bottom() + 24.0 + legend_height + 4.0;
        let mut out = open_svg(&self.title, self.width, total);
        out.push_str(&body);
        out.push_str(&legend);
        out.push_str("</svg>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_round_and_cover_the_data() {
        let m = Mapper::new(Scale::Linear, true, &[3.0, 97.0]).unwrap();
        let labels: Vec<String> = m.ticks().into_iter().map(|t| t.1).collect();
        assert_eq!(labels, ["0", "20", "40", "60", "80", "100"]);
        assert_eq!(m.fraction(50.0), Some(0.5));
    }

    #[test]
    fn log_ticks_at_decades() {
        let m = Mapper::new(Scale::Log, false, &[0.5, 40.0, 900.0]).unwrap();
        let labels: Vec<String> = m.ticks().into_iter().map(|t| t.1).collect();
        // 0.5 is far from 0.1: the axis starts just below 0.5; 900 is close to 1000.
        assert_eq!(labels, ["1", "10", "100", "1000"]);
        assert_eq!(m.fraction(1000.0), Some(1.0));
        let (a, b) = (m.fraction(0.5).unwrap(), m.fraction(1.0).unwrap());
        assert!(0.0 < a && a < 0.05 && a < b, "{a} {b}");
        assert_eq!(m.fraction(-1.0), None);
        assert_eq!(m.fraction(f64::NAN), None);
    }

    #[test]
    fn log_axis_with_a_zero_draws_it() {
        let m = Mapper::new(Scale::Log, false, &[0.0, 1.0, 10.0, 100.0]).unwrap();
        assert_eq!(m.fraction(0.0), Some(0.0));
        assert!(m.ticks().iter().any(|(f, l)| l == "0" && *f == 0.0));
        assert!(m.fraction(100.0).unwrap() <= 1.0);
        // Values far from zero are not squashed against the top.
        let m = Mapper::new(Scale::Log, false, &[0.0, 251.0, 530.0]).unwrap();
        assert_eq!(m.fraction(0.0), Some(0.0));
        assert!((0.4..0.8).contains(&m.fraction(251.0).unwrap()));
        let labels: Vec<String> = m.ticks().into_iter().map(|t| t.1).collect();
        assert_eq!(labels, ["0", "200", "500"]);
        // All zeros.
        let m = Mapper::new(Scale::Log, false, &[0.0, 0.0]).unwrap();
        assert_eq!(m.fraction(0.0), Some(0.0));
    }

    #[test]
    fn degenerate_ranges_get_a_range() {
        let m = Mapper::new(Scale::Linear, false, &[5.0, 5.0]).unwrap();
        assert!((0.0..1.0).contains(&m.fraction(5.0).unwrap()));
        let m = Mapper::new(Scale::Log, false, &[10.0]).unwrap();
        assert_eq!(m.fraction(10.0), Some(0.5));
        // A narrow range still gets a decade, hence ticks.
        let m = Mapper::new(Scale::Log, false, &[3.0, 3.5]).unwrap();
        assert!(m.ticks().len() >= 2, "{:?}", m.ticks());
        let m = Mapper::new(Scale::Linear, true, &[0.0]).unwrap();
        assert_eq!(m.fraction(0.0), Some(0.0));
        assert_eq!(Mapper::new(Scale::Linear, false, &[f64::NAN]), None);
        assert!(Mapper::new(Scale::Percent, false, &[]).is_some());
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick_label(0.6000000000000001), "0.6");
        assert_eq!(tick_label(20000.0), "20k");
        assert_eq!(tick_label(2.5e7), "25M");
        assert_eq!(tick_label(0.0001), "1e-4");
    }

    #[test]
    fn a_line_chart_skips_bad_points() {
        let chart = LineChart {
            title: "t".into(),
            x: Axis::log("x"),
            y: Axis::percent("y"),
            series: vec![Series {
                label: "a<b".into(),
                color: "#000".into(),
                dash: None,
                points: vec![
                    (f64::NAN, 0.5),
                    (1.0, 0.1),
                    (10.0, f64::INFINITY),
                    (100.0, 0.9),
                ],
            }],
            width: 400.0,
            height: 200.0,
        };
        let svg = chart.render();
        assert!(svg.contains("a&lt;b"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        let polyline = svg.split("<polyline points=\"").nth(1).unwrap();
        let coords = polyline.split('"').next().unwrap();
        assert_eq!(coords.split(' ').count(), 2, "{coords}");
    }
}
