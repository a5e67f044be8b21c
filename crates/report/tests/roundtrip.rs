//! `report.json` round-trips without loss.
//!
//! serde_json's default float parser may land one ULP off (e.g. `0.49360000000000004` reads
//! back as `0.4936`); its `float_roundtrip` feature makes it exact. The dev-dependency turns
//! that feature on so these tests check the model itself (no field lost, renamed or narrowed).
//! A program that reads `report.json` back needs the same feature on its own serde_json.

mod common;

use report::Report;

#[test]
fn serde_json_round_trip_is_lossless() {
    for report in [common::sample(), common::no_sweep()] {
        assert!(!report.runs.is_empty());
        let json = serde_json::to_string(&report).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
        let pretty = serde_json::to_string_pretty(&report).unwrap();
        let back: Report = serde_json::from_str(&pretty).unwrap();
        assert_eq!(back, report);
        // And writing it again gives the same text.
        assert_eq!(
            serde_json::to_string(&back).unwrap(),
            serde_json::to_string(&report).unwrap()
        );
    }
}

#[test]
fn awkward_floats_round_trip() {
    let mut report = common::sample();
    let values = [
        0.1 + 0.2,
        1.0 / 3.0,
        2.0f64.sqrt(),
        1e-300,
        f64::MIN_POSITIVE,
        f64::MAX,
        123_456.789_012_345,
        5e-324,
    ];
    let run = &mut report.runs[0];
    run.ack_latency_cdf = values.iter().map(|v| (*v, *v)).collect();
    run.achieved_rate = values[0];
    run.converged_after_ms = values[1];
    let json = serde_json::to_string(&report).unwrap();
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
}
