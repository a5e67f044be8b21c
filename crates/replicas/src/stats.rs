//! The arithmetic of the measurements, pure: percentiles, the measured t-visibility curve,
//! staleness in time from a replica's replay position, and when a write became visible.
//! [`crate::pbs`] predicts the curve; [`crate::bench`] gathers the samples.

use serde::{Deserialize, Serialize};

use crate::lsn::Lsn;

/// The delays after a commit returned at which the probe reads each replica, ms: the
/// services' visibility probe's ladder, so both curves read alike.
pub const VISIBILITY_OFFSETS_MS: [f64; 14] = [
    0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
];

/// Percentiles of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Summary {
    pub count: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Summary {
    /// The summary of `values` (NaN ones ignored); all zero for none.
    pub fn of(values: &[f64]) -> Self {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return Self::default();
        }
        v.sort_by(f64::total_cmp);
        Self {
            count: v.len(),
            p50: percentile(&v, 0.50),
            p99: percentile(&v, 0.99),
            max: v[v.len() - 1],
            mean: v.iter().sum::<f64>() / v.len() as f64,
        }
    }
}

/// The `q` quantile of sorted values, nearest rank (a value that was measured, never an
/// interpolation between two).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The measured t-visibility curve: for each offset, the share of probed writes whose read at
/// that offset saw them. `first_visible` holds, per probed write, the offset (ms) of its first
/// read that saw it, `None` when none did: a replica replays in order, so a write seen once is
/// seen by every later read, and the probe stops at the first.
pub fn visibility_curve(first_visible: &[Option<f64>], offsets: &[f64]) -> Vec<f64> {
    offsets
        .iter()
        .map(|t| {
            let seen = first_visible
                .iter()
                .filter(|v| v.is_some_and(|v| v <= *t))
                .count();
            ratio(seen, first_visible.len())
        })
        .collect()
}

/// `part / whole`, NaN when there is no whole.
pub fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        f64::NAN
    } else {
        part as f64 / whole as f64
    }
}

/// The acknowledged writes of a run, ordered by token, to answer "since when has a replica at
/// this position been missing an acknowledged write?" for many positions quickly.
#[derive(Debug, Clone, Default)]
pub struct AckLog {
    /// `(token, ack time ms)`, by token.
    by_token: Vec<(Lsn, f64)>,
    /// `earliest[k]`: the earliest ack time among `by_token[k..]`.
    earliest: Vec<f64>,
}

impl AckLog {
    /// From `(token, time the commit returned, ms)` of each acknowledged write.
    pub fn new(mut acks: Vec<(Lsn, f64)>) -> Self {
        acks.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let mut earliest = vec![f64::INFINITY; acks.len()];
        let mut min = f64::INFINITY;
        for k in (0..acks.len()).rev() {
            min = min.min(acks[k].1);
            earliest[k] = min;
        }
        Self {
            by_token: acks,
            earliest,
        }
    }

    /// Staleness at time `at_ms` of a replica that has replayed up to `replayed`: how long the
    /// oldest write acknowledged by then and not yet replayed has been acknowledged; 0 when
    /// every write acknowledged by then is replayed.
    pub fn staleness_ms(&self, at_ms: f64, replayed: Lsn) -> f64 {
        let k = self
            .by_token
            .partition_point(|(token, _)| *token <= replayed);
        match self.earliest.get(k) {
            Some(&oldest) if oldest <= at_ms => at_ms - oldest,
            _ => 0.0,
        }
    }
}

/// Samples of a node's position over time: `(time ms, LSN)` in time order.
#[derive(Debug, Clone, Default)]
pub struct Positions {
    /// Times, ascending.
    times: Vec<f64>,
    /// Running maximum of the LSNs (a standby's replay position never moves back; a sample
    /// that would say so is an older answer overtaken by a newer one).
    lsns: Vec<Lsn>,
}

impl Positions {
    /// From samples in time order.
    pub fn new(samples: &[(f64, Lsn)]) -> Self {
        let mut max = Lsn::ZERO;
        let (times, lsns) = samples
            .iter()
            .map(|(t, l)| {
                max = max.max(*l);
                (*t, max)
            })
            .unzip();
        Self { times, lsns }
    }

    /// When the position reached `lsn`, estimated as the middle between the last sample below
    /// it and the first at or past it (the moment is somewhere between the two; taking the later
    /// one would make every apply look late by the sampling interval). The first sample's own
    /// time when it already had it; `None` if no sample ever did.
    pub fn first_reaching(&self, lsn: Lsn) -> Option<f64> {
        let k = self.lsns.partition_point(|l| *l < lsn);
        let reached = *self.times.get(k)?;
        Some(match k.checked_sub(1) {
            Some(before) => (self.times[before] + reached) / 2.0,
            None => reached,
        })
    }

    /// The first sample time at which the position was seen at or past `lsn` (an upper bound of
    /// when it got there); `None` if never. What "caught up" means to someone watching: across
    /// a gap in the samples (a standby down), the middle of [`Positions::first_reaching`]
    /// would fall inside the gap.
    pub fn first_seen(&self, lsn: Lsn) -> Option<f64> {
        let k = self.lsns.partition_point(|l| *l < lsn);
        self.times.get(k).copied()
    }

    /// The last position sampled at or before `at_ms`; `None` before the first sample.
    pub fn at(&self, at_ms: f64) -> Option<Lsn> {
        let k = self.times.partition_point(|t| *t <= at_ms);
        k.checked_sub(1).map(|k| self.lsns[k])
    }

    /// Every `(time, position)` sample.
    pub fn iter(&self) -> impl Iterator<Item = (f64, Lsn)> + '_ {
        self.times.iter().copied().zip(self.lsns.iter().copied())
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_measured_values() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&v);
        assert_eq!((s.count, s.p50, s.p99, s.max), (100, 50.0, 99.0, 100.0));
        assert_eq!(s.mean, 50.5);
        assert_eq!(Summary::of(&[7.0]).p99, 7.0);
        assert_eq!(Summary::of(&[]).count, 0);
        assert_eq!(Summary::of(&[f64::NAN, 2.0]).count, 1);
    }

    #[test]
    fn the_visibility_curve_counts_first_sightings() {
        let first = [Some(0.0), Some(1.0), Some(5.0), None];
        assert_eq!(
            visibility_curve(&first, &[0.0, 1.0, 2.0, 5.0, 100.0]),
            [0.25, 0.5, 0.5, 0.75, 0.75]
        );
        assert!(visibility_curve(&[], &[0.0])[0].is_nan());
    }

    #[test]
    fn staleness_is_the_age_of_the_oldest_missing_write() {
        // Writes at tokens 10, 20, 30, acknowledged at 100, 105, 110 ms.
        let log = AckLog::new(vec![
            (Lsn::new(20), 105.0),
            (Lsn::new(10), 100.0),
            (Lsn::new(30), 110.0),
        ]);
        assert_eq!(log.staleness_ms(120.0, Lsn::new(30)), 0.0, "has everything");
        assert_eq!(
            log.staleness_ms(120.0, Lsn::new(5)),
            20.0,
            "missing the first"
        );
        assert_eq!(
            log.staleness_ms(120.0, Lsn::new(10)),
            15.0,
            "missing the second"
        );
        assert_eq!(log.staleness_ms(120.0, Lsn::new(25)), 10.0);
        assert_eq!(
            log.staleness_ms(102.0, Lsn::new(10)),
            0.0,
            "20 not acknowledged yet"
        );
        assert_eq!(
            log.staleness_ms(50.0, Lsn::ZERO),
            0.0,
            "nothing acknowledged yet"
        );
        // Concurrent commits can return out of token order: the oldest ack counts.
        let log = AckLog::new(vec![(Lsn::new(10), 100.0), (Lsn::new(20), 90.0)]);
        assert_eq!(log.staleness_ms(120.0, Lsn::new(10)), 30.0);
    }

    #[test]
    fn positions_answer_when_and_where() {
        let p = Positions::new(&[
            (0.0, Lsn::new(5)),
            (1.0, Lsn::new(10)),
            (2.0, Lsn::new(8)), // an overtaken answer
            (3.0, Lsn::new(20)),
        ]);
        assert_eq!(
            p.first_reaching(Lsn::new(5)),
            Some(0.0),
            "had it from the first sample"
        );
        assert_eq!(p.first_reaching(Lsn::new(9)), Some(0.5), "between 0 and 1");
        assert_eq!(p.first_reaching(Lsn::new(11)), Some(2.5), "between 2 and 3");
        assert_eq!(p.first_reaching(Lsn::new(21)), None);
        assert_eq!(
            p.first_seen(Lsn::new(9)),
            Some(1.0),
            "seen at the sample itself"
        );
        assert_eq!(p.first_seen(Lsn::new(21)), None);
        assert_eq!(p.at(2.5), Some(Lsn::new(10)), "never backwards");
        assert_eq!(p.at(-1.0), None);
    }
}
