//! A prediction of t-visibility from measured delays, after *Probabilistically Bounded
//! Staleness* (Bailis, Venkataraman, Franklin, Hellerstein, Stoica; VLDB 2012).
//!
//! PBS's WARS model says a read sees a write when the write reached the replica before the read
//! did. One primary and asynchronous standbys is the model with one replica per read:
//!
//! - **W**: for each write and replica, when the replica applied it, counted from the moment
//!   the commit returned to the writer (negative when the replica applied it first, as
//!   `remote_apply` guarantees). Measured independently of any read, by a watcher polling the
//!   replica's replay position.
//! - **R**: for a read meant to happen `t` ms after the commit returned, how much later its
//!   snapshot is taken (scheduling, then half the round trip).
//!
//! A read at `t` sees the write when `W ≤ t + R`, so the predicted share of reads that see it is
//! `P(W ≤ t + R)`, W and R independent. Over the measured samples this is exact, no Monte
//! Carlo: the mean over each `r` of the share of `W` at or below `t + r`.

/// Predicted t-visibility at each offset (ms) from samples of `w_ms` (a write that was never
/// applied is `f64::INFINITY`) and `r_ms`. No `r` samples: reads take no time (`R = 0`). NaN
/// when there is no `w` sample.
pub fn predict_visibility(w_ms: &[f64], r_ms: &[f64], offsets_ms: &[f64]) -> Vec<f64> {
    let mut w: Vec<f64> = w_ms.iter().copied().filter(|x| !x.is_nan()).collect();
    w.sort_by(f64::total_cmp);
    let zero = [0.0];
    let r: &[f64] = if r_ms.is_empty() { &zero } else { r_ms };
    offsets_ms
        .iter()
        .map(|t| {
            if w.is_empty() {
                return f64::NAN;
            }
            let seen: usize = r.iter().map(|r| w.partition_point(|w| *w <= t + r)).sum();
            seen as f64 / (w.len() * r.len()) as f64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uniform_lag_and_instant_reads_give_a_straight_line() {
        // W uniform over 0..99 ms: a read at t sees the write with probability (t + 1) / 100.
        let w: Vec<f64> = (0..100).map(f64::from).collect();
        let p = predict_visibility(&w, &[], &[0.0, 9.0, 49.0, 99.0, 500.0]);
        assert_eq!(p, [0.01, 0.10, 0.50, 1.0, 1.0]);
    }

    #[test]
    fn a_read_delay_shifts_the_curve() {
        // W in {0, 10, ..., 90}; half the reads land 5 ms late, half 15 ms late.
        let w: Vec<f64> = (0..10).map(|k| f64::from(k * 10)).collect();
        let p = predict_visibility(&w, &[5.0, 15.0], &[0.0, 10.0]);
        // t = 0: P(W ≤ 5) = 0.1, P(W ≤ 15) = 0.2 → 0.15. t = 10: 0.2 and 0.3 → 0.25.
        assert!(
            (p[0] - 0.15).abs() < 1e-12 && (p[1] - 0.25).abs() < 1e-12,
            "{p:?}"
        );
    }

    #[test]
    fn an_exponential_lag_matches_its_cdf() {
        // W exponential with mean 4 ms, by its quantiles: P(W ≤ t) = 1 - e^(-t/4).
        let n = 10_000;
        let w: Vec<f64> = (0..n)
            .map(|k| -4.0 * (1.0 - (k as f64 + 0.5) / n as f64).ln())
            .collect();
        for (t, p) in [1.0f64, 4.0, 12.0]
            .iter()
            .zip(predict_visibility(&w, &[], &[1.0, 4.0, 12.0]))
        {
            let exact = 1.0 - (-*t / 4.0f64).exp();
            assert!((p - exact).abs() < 1e-3, "t = {t}: {p} vs {exact}");
        }
    }

    #[test]
    fn synchronous_and_lost_writes() {
        // Applied before the commit returned (remote_apply): visible at once.
        assert_eq!(predict_visibility(&[-0.3, -0.1], &[0.0], &[0.0]), [1.0]);
        // Never applied: never visible.
        assert_eq!(
            predict_visibility(&[f64::INFINITY, 1.0], &[], &[1e9]),
            [0.5]
        );
        assert!(predict_visibility(&[], &[], &[0.0])[0].is_nan());
    }
}
