//! Pure statistics over what the driver and the probe recorded, and over the services'
//! Prometheus histograms: no I/O, no clock, so every function here is tested on histories
//! whose answer is known.

use hdrhistogram::Histogram;
use serde::Serialize;

/// The fraction of samples visible at each delay index `0..delays`: a sample whose first
/// visible index is `Some(j)` counts as visible at every index `≥ j` (reads are monotonic);
/// `None` is never visible. All zeros when there are no samples.
pub fn visibility_curve(first_visible: &[Option<usize>], delays: usize) -> Vec<f64> {
    let mut visible_from = vec![0u64; delays];
    for index in first_visible.iter().flatten() {
        if *index < delays {
            visible_from[*index] += 1;
        }
    }
    let total = first_visible.len() as f64;
    let mut cumulative = 0;
    visible_from
        .into_iter()
        .map(|n| {
            cumulative += n;
            if total > 0.0 {
                cumulative as f64 / total
            } else {
                0.0
            }
        })
        .collect()
}

/// What one sample says about one service at delay index `d`: visible (`Some(true)`), not
/// visible (`Some(false)`) or unknown (`None`).
///
/// `first_visible` is the index the first read showing the order applied was credited to;
/// `first_read` the index the very first read was credited to. Reads are monotonic, so a
/// read showing "not yet" at index `c` means "not yet" at every index before `c` too, but a
/// first read that was late (credited to `c > 0`) and already showed the order says nothing
/// about the indexes before `c`: those are unknown, not "not visible".
pub fn visibility_at(
    first_visible: Option<usize>,
    first_read: Option<usize>,
    d: usize,
) -> Option<bool> {
    match (first_visible, first_read) {
        (Some(v), _) if v <= d => Some(true),
        (Some(v), Some(r)) if v == r => None,
        _ => Some(false),
    }
}

/// The fraction visible at each delay index `0..delays` over the samples that say something
/// at that index (see [`visibility_at`]); 0 where none does. Each sample is one
/// `(first_visible, first_read)` per service; a sample counts as visible when every service
/// of it is, not visible when any is not, and unknown otherwise. With one service per sample
/// this is that service's curve; with all of them, the "visible everywhere" curve.
pub fn visibility_curve_censored(
    samples: &[Vec<(Option<usize>, Option<usize>)>],
    delays: usize,
) -> Vec<f64> {
    (0..delays)
        .map(|d| {
            let (mut visible, mut known) = (0u64, 0u64);
            for sample in samples {
                let states: Vec<Option<bool>> = sample
                    .iter()
                    .map(|&(v, r)| visibility_at(v, r, d))
                    .collect();
                let state = if states.contains(&Some(false)) {
                    Some(false)
                } else if states.iter().all(|s| *s == Some(true)) {
                    Some(true)
                } else {
                    None
                };
                if let Some(is_visible) = state {
                    known += 1;
                    visible += u64::from(is_visible);
                }
            }
            if known > 0 {
                visible as f64 / known as f64
            } else {
                0.0
            }
        })
        .collect()
}

/// Mean, 99th percentile (nearest rank: the smallest value that at least 99 % of the values
/// are at or below) and maximum of k-staleness values; zeros when there are none.
pub fn k_staleness_summary(ks: &[u64]) -> (f64, u64, u64) {
    if ks.is_empty() {
        return (0.0, 0, 0);
    }
    let mut sorted = ks.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    let mean = sorted.iter().map(|&k| k as f64).sum::<f64>() / n as f64;
    // ceil(0.99 n) in integers, so that 100 values give rank 99 exactly.
    let rank = (99 * n).div_ceil(100).max(1);
    (mean, sorted[rank - 1], sorted[n - 1])
}

/// The usual summary of a latency histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// Mean, p50, p90, p99, p99.9 and max of a histogram of microseconds, in milliseconds; all
/// zero for an empty histogram. Percentiles are HDR's: the highest value equivalent to the
/// recorded one at the histogram's precision (3 significant digits for the driver's).
pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    let ms = |us: u64| us as f64 / 1_000.0;
    Percentiles {
        mean_ms: h.mean() / 1_000.0,
        p50_ms: ms(h.value_at_quantile(0.50)),
        p90_ms: ms(h.value_at_quantile(0.90)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        p999_ms: ms(h.value_at_quantile(0.999)),
        max_ms: ms(h.max()),
    }
}

/// Points of the cumulative distribution of a histogram of microseconds: `(ms, fraction of
/// values ≤ ms)`, at 40 values spaced logarithmically from the smallest to the largest
/// recorded value (fewer when they are close), the last being `(max, 1.0)`. Empty for an
/// empty histogram.
pub fn cdf(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    const POINTS: usize = 40;
    if h.is_empty() {
        return Vec::new();
    }
    let total = h.len() as f64;
    let low = h.min().max(1) as f64;
    let high = h.max().max(1) as f64;
    let mut thresholds: Vec<u64> = (0..POINTS)
        .map(|i| {
            let t = i as f64 / (POINTS - 1) as f64;
            (low * (high / low).powf(t)).round() as u64
        })
        .collect();
    thresholds.dedup();
    if let Some(last) = thresholds.last_mut() {
        *last = h.max();
    }
    let mut recorded = h.iter_recorded().peekable();
    let mut below = 0u64;
    thresholds
        .into_iter()
        .map(|threshold| {
            while let Some(value) = recorded.peek() {
                if value.value_iterated_to() > threshold {
                    break;
                }
                below += value.count_at_value();
                recorded.next();
            }
            (threshold as f64 / 1_000.0, below as f64 / total)
        })
        .collect()
}

/// The union of histograms (values recorded into one), with three significant digits and
/// no upper bound.
pub fn merge<'a>(histograms: impl IntoIterator<Item = &'a Histogram<u64>>) -> Histogram<u64> {
    let mut merged = Histogram::<u64>::new(3).expect("three significant digits are valid");
    for h in histograms {
        merged
            .add(h)
            .expect("an auto-resizing histogram takes any value");
    }
    merged
}

/// One service's series of a Prometheus histogram: cumulative buckets by upper bound
/// (`le`, `+Inf` as infinity), ascending, and the `_sum` and `_count`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PromHistogram {
    pub buckets: Vec<(f64, u64)>,
    pub sum: f64,
    pub count: u64,
}

/// Reads the histogram `metric` of the service `label_service` (its `service` label) from a
/// Prometheus text exposition, such as the gateway's `GET /metrics`. Label order, other
/// labels, `# HELP`/`# TYPE` lines, timestamps and other metrics and services are all
/// tolerated; series of the same service that differ in other labels are added up, as
/// `sum by (le)` would. `None` when the exposition has no bucket of that metric for that
/// service. Without a `_count` line the count is the `+Inf` bucket's.
pub fn prometheus_histogram(
    text: &str,
    metric: &str,
    label_service: &str,
) -> Option<PromHistogram> {
    let bucket_name = format!("{metric}_bucket");
    let sum_name = format!("{metric}_sum");
    let count_name = format!("{metric}_count");
    let mut buckets: Vec<(f64, u64)> = Vec::new();
    let (mut sum, mut count) = (0.0, None::<u64>);
    for sample in text.lines().filter_map(parse_sample) {
        if label(&sample.labels, "service") != Some(label_service) {
            continue;
        }
        if sample.name == bucket_name {
            let Some(le) = label(&sample.labels, "le").and_then(parse_le) else {
                continue;
            };
            let value = to_count(sample.value);
            match buckets.iter_mut().find(|(bound, _)| *bound == le) {
                Some((_, n)) => *n += value,
                None => buckets.push((le, value)),
            }
        } else if sample.name == sum_name {
            sum += sample.value;
        } else if sample.name == count_name {
            *count.get_or_insert(0) += to_count(sample.value);
        }
    }
    if buckets.is_empty() {
        return None;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let count = count.unwrap_or_else(|| {
        buckets
            .iter()
            .find(|(le, _)| le.is_infinite())
            .map_or(0, |&(_, n)| n)
    });
    Some(PromHistogram {
        buckets,
        sum,
        count,
    })
}

/// The services that have a `metric` histogram in the exposition, in order of appearance.
pub fn prometheus_services(text: &str, metric: &str) -> Vec<String> {
    let bucket_name = format!("{metric}_bucket");
    let mut services = Vec::new();
    for sample in text.lines().filter_map(parse_sample) {
        if sample.name != bucket_name {
            continue;
        }
        match label(&sample.labels, "service") {
            Some(service) if !services.iter().any(|s| s == service) => {
                services.push(service.to_owned());
            }
            _ => {}
        }
    }
    services
}

/// The `q` quantile (0..=1) of cumulative buckets, as Prometheus's `histogram_quantile`
/// computes it: find the bucket where the rank `q × count` falls and interpolate linearly
/// between its lower bound (the previous bucket's upper bound, 0 for the first) and its
/// upper bound. A rank in the `+Inf` bucket gives the highest finite bound. `NaN` when the
/// buckets are empty or hold no observation, or `q` is outside 0..=1.
pub fn bucket_percentile(buckets: &[(f64, u64)], q: f64) -> f64 {
    if !(0.0..=1.0).contains(&q) {
        return f64::NAN;
    }
    let Some(&(_, observations)) = buckets.last() else {
        return f64::NAN;
    };
    if observations == 0 {
        return f64::NAN;
    }
    let rank = q * observations as f64;
    let b = buckets
        .iter()
        .position(|&(_, n)| n as f64 >= rank)
        .unwrap_or(buckets.len() - 1);
    let (upper, cumulative) = buckets[b];
    if upper.is_infinite() {
        // Prometheus answers the highest finite bound (or +Inf if there is none).
        return if b > 0 { buckets[b - 1].0 } else { upper };
    }
    if b == 0 && upper <= 0.0 {
        return upper;
    }
    let (lower, below) = if b == 0 {
        (0.0, 0)
    } else {
        (buckets[b - 1].0, buckets[b - 1].1)
    };
    let in_bucket = cumulative.saturating_sub(below);
    if in_bucket == 0 {
        return upper;
    }
    lower + (upper - lower) * ((rank - below as f64) / in_bucket as f64)
}

/// One line of the text exposition: `name{labels} value [timestamp]`.
struct Sample<'a> {
    name: &'a str,
    labels: Vec<(&'a str, String)>,
    value: f64,
}

fn parse_sample(line: &str) -> Option<Sample<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    // Blanks may separate every token, also the name from its labels.
    let mut rest = line[name_end..].trim_start();
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(after_brace)?;
        labels = parsed;
        rest = after;
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// Parses `key="value",...}` and returns the labels and what follows the closing brace.
fn parse_labels(mut s: &str) -> Option<(Vec<(&str, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start().trim_start_matches(',').trim_start();
        if let Some(rest) = s.strip_prefix('}') {
            return Some((labels, rest));
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim();
        s = s[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                other => value.push(other),
            }
        };
        labels.push((key, value));
        s = &s[end + 1..];
    }
}

fn label<'a>(labels: &'a [(&str, String)], key: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.as_str())
}

fn parse_le(le: &str) -> Option<f64> {
    match le {
        "+Inf" | "Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        v => v.parse().ok(),
    }
}

fn to_count(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 {
        value.round() as u64
    } else {
        0
    }
}
