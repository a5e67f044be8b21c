//! The statistics on synthetic histories whose answer is known.

use hdrhistogram::Histogram;
use loadgen::stats::{
    bucket_percentile, cdf, k_staleness_summary, merge, percentiles, prometheus_histogram,
    prometheus_services, visibility_curve,
};

fn histogram_of_ms(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap();
    for ms in values {
        h.record(ms * 1_000).unwrap();
    }
    h
}

fn close(actual: f64, expected: f64, relative: f64) -> bool {
    (actual - expected).abs() <= expected.abs() * relative
}

#[test]
fn the_visibility_curve_counts_each_sample_from_its_first_visible_delay_on() {
    let first = [Some(0), Some(2), None, Some(2), Some(5)];
    assert_eq!(
        visibility_curve(&first, 6),
        vec![0.2, 0.2, 0.6, 0.6, 0.6, 0.8]
    );
    // An index past the last delay is never visible within the curve.
    assert_eq!(
        visibility_curve(&[Some(3), Some(0)], 3),
        vec![0.5, 0.5, 0.5]
    );
    assert_eq!(visibility_curve(&[None, None], 2), vec![0.0, 0.0]);
    assert_eq!(visibility_curve(&[], 3), vec![0.0, 0.0, 0.0]);
}

#[test]
fn k_staleness_is_summarised_exactly() {
    let ks: Vec<u64> = (1..=100).collect();
    assert_eq!(k_staleness_summary(&ks), (50.5, 99, 100));
    // ceil(0.99 × 4) = 4: the p99 of four values is the largest.
    assert_eq!(k_staleness_summary(&[0, 5, 0, 3]), (2.0, 5, 5));
    let mut many = vec![0u64; 199];
    many.push(40);
    // ceil(0.99 × 200) = 198: the single outlier is beyond the p99.
    assert_eq!(k_staleness_summary(&many), (0.2, 0, 40));
    assert_eq!(k_staleness_summary(&[]), (0.0, 0, 0));
}

#[test]
fn percentiles_of_a_known_history() {
    let p = percentiles(&histogram_of_ms(1..=1_000));
    let precision = 0.001; // three significant digits
    assert!(close(p.mean_ms, 500.5, precision), "{p:?}");
    assert!(close(p.p50_ms, 500.0, precision), "{p:?}");
    assert!(close(p.p90_ms, 900.0, precision), "{p:?}");
    assert!(close(p.p99_ms, 990.0, precision), "{p:?}");
    assert!(close(p.p999_ms, 999.0, precision), "{p:?}");
    assert!(close(p.max_ms, 1_000.0, precision), "{p:?}");
    assert_eq!(percentiles(&histogram_of_ms([])), Default::default());
}

#[test]
fn merging_gives_the_percentiles_of_the_union() {
    let low = histogram_of_ms(1..=500);
    let high = histogram_of_ms(501..=1_000);
    let merged = merge([&low, &high]);
    assert_eq!(merged.len(), 1_000);
    let union = percentiles(&histogram_of_ms(1..=1_000));
    assert_eq!(percentiles(&merged), union);
    assert!(close(percentiles(&merged).p50_ms, 500.0, 0.001));
    // Neither half alone has the union's median.
    assert!(percentiles(&low).p50_ms < 300.0);
    assert!(percentiles(&high).p50_ms > 700.0);
    assert!(merge([]).is_empty());
}

#[test]
fn the_cdf_is_cumulative_and_log_spaced() {
    let h = histogram_of_ms((0..50).map(|_| 1).chain((0..50).map(|_| 10)));
    let points = cdf(&h);
    assert!(points.len() >= 10 && points.len() <= 40, "{points:?}");
    assert!(close(points[0].0, 1.0, 0.001));
    assert_eq!(points[0].1, 0.5);
    let last = *points.last().unwrap();
    assert!(close(last.0, 10.0, 0.001));
    assert_eq!(last.1, 1.0);
    for pair in points.windows(2) {
        assert!(pair[0].0 < pair[1].0 && pair[0].1 <= pair[1].1, "{pair:?}");
    }
    // Between the two values, half of them are at or below.
    let middle = points
        .iter()
        .find(|(ms, _)| *ms > 2.0 && *ms < 9.0)
        .unwrap();
    assert_eq!(middle.1, 0.5);
    // Log spacing: the points below 3.16 ms (the geometric middle) are about half.
    let below = points.iter().filter(|(ms, _)| *ms < 3.16).count();
    assert!((15..=25).contains(&below), "{below} of {}", points.len());
    assert!(cdf(&histogram_of_ms([])).is_empty());
}

const EXPOSITION: &str = r#"# HELP converge_apply_lag_ms Milliseconds from an order's acknowledgement to this service applying it.
# TYPE converge_apply_lag_ms histogram
converge_apply_lag_ms_bucket{service="stats",le="1"} 2
converge_apply_lag_ms_bucket{le="5",service="stats"} 42
converge_apply_lag_ms_bucket{service="stats",le="10"} 48
converge_apply_lag_ms_bucket{service="stats",le="+Inf"} 50
converge_apply_lag_ms_sum{service="stats"} 123.4
converge_apply_lag_ms_count{service="stats"} 50
converge_apply_lag_ms_bucket{service="loyalty",le="1"} 7
converge_apply_lag_ms_bucket{service="loyalty",le="+Inf"} 9
converge_apply_lag_ms_sum{service="loyalty"} 11
converge_apply_lag_ms_count{service="loyalty"} 9
# HELP converge_apply_lag_max_ms The largest apply lag.
# TYPE converge_apply_lag_max_ms gauge
converge_apply_lag_max_ms{service="stats"} 12
converge_apply_lag_ms_other_bucket{service="stats",le="1"} 1000
converge_events_total{feed="orders",outcome="applied",service="stats"} 50
converge_apply_lag_ms_bucket{service="stats2",le="1"} 99
"#;

#[test]
fn a_prometheus_histogram_is_read_for_one_service() {
    let stats = prometheus_histogram(EXPOSITION, "converge_apply_lag_ms", "stats").unwrap();
    assert_eq!(
        stats.buckets,
        vec![(1.0, 2), (5.0, 42), (10.0, 48), (f64::INFINITY, 50)]
    );
    assert_eq!(stats.sum, 123.4);
    assert_eq!(stats.count, 50);
    let loyalty = prometheus_histogram(EXPOSITION, "converge_apply_lag_ms", "loyalty").unwrap();
    assert_eq!(loyalty.buckets, vec![(1.0, 7), (f64::INFINITY, 9)]);
    assert_eq!((loyalty.sum, loyalty.count), (11.0, 9));
    assert!(prometheus_histogram(EXPOSITION, "converge_apply_lag_ms", "payment").is_none());
    assert!(prometheus_histogram(EXPOSITION, "converge_nothing", "stats").is_none());
    assert_eq!(
        prometheus_services(EXPOSITION, "converge_apply_lag_ms"),
        ["stats", "loyalty", "stats2"]
    );
}

#[test]
fn labels_in_any_order_escapes_and_timestamps_are_tolerated() {
    let text = "converge_apply_lag_ms_bucket { le = \"2.5\" , note=\"a \\\"quoted\\\" , } \", service=\"order\" } 3 1700000000000\n\
                converge_apply_lag_ms_bucket{service=\"order\",le=\"+Inf\",} 4e0\n";
    let order = prometheus_histogram(text, "converge_apply_lag_ms", "order").unwrap();
    assert_eq!(order.buckets, vec![(2.5, 3), (f64::INFINITY, 4)]);
    // No _count line: the +Inf bucket's.
    assert_eq!(order.count, 4);
    assert_eq!(order.sum, 0.0);
}

#[test]
fn bucket_percentile_interpolates_as_histogram_quantile_does() {
    let buckets = [(1.0, 10), (5.0, 30), (10.0, 40), (f64::INFINITY, 40)];
    // rank 10 falls in the first bucket [0, 1] holding 10: 0 + 1 × 10/10.
    assert_eq!(bucket_percentile(&buckets, 0.25), 1.0);
    // rank 20 falls in (1, 5] holding 20, 10 below: 1 + 4 × (20 − 10)/20.
    assert_eq!(bucket_percentile(&buckets, 0.5), 3.0);
    // rank 36 falls in (5, 10] holding 10, 30 below: 5 + 5 × (36 − 30)/10.
    assert_eq!(bucket_percentile(&buckets, 0.9), 8.0);
    assert_eq!(bucket_percentile(&buckets, 1.0), 10.0);
    // rank 5 in the first bucket: 0 + 1 × 5/10.
    assert_eq!(bucket_percentile(&buckets, 0.125), 0.5);
    // A rank in +Inf answers the highest finite bound.
    let open = [(1.0, 10), (5.0, 30), (f64::INFINITY, 40)];
    assert_eq!(bucket_percentile(&open, 0.9), 5.0);
    assert!(bucket_percentile(&[], 0.5).is_nan());
    assert!(bucket_percentile(&[(1.0, 0), (f64::INFINITY, 0)], 0.5).is_nan());
    assert!(bucket_percentile(&buckets, 1.5).is_nan());

    // And on a parsed exposition: rank 25 of 50 in (1, 5] holding 40, 2 below.
    let stats = prometheus_histogram(EXPOSITION, "converge_apply_lag_ms", "stats").unwrap();
    let p50 = bucket_percentile(&stats.buckets, 0.5);
    assert!((p50 - (1.0 + 4.0 * 23.0 / 40.0)).abs() < 1e-12, "{p50}");
}
