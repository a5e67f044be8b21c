//! Figures derived from the model, shared by the terminal table and the HTML page so that both
//! show the same numbers. Nothing here changes the model: these are read-only helpers.

use crate::model::{Report, Run, ServiceLag, Visibility, VisibilityCurve};

/// The services in the order the report shows them; others follow in their own order.
pub const SERVICE_ORDER: [&str; 4] = ["order", "payment", "loyalty", "stats"];

/// The position of `service` in [`SERVICE_ORDER`], unknown services last.
pub(crate) fn service_rank(service: &str) -> usize {
    SERVICE_ORDER
        .iter()
        .position(|s| *s == service)
        .unwrap_or(SERVICE_ORDER.len())
}

impl Report {
    /// Whether the Stats delay was swept: more than one value in
    /// [`Settings::stats_delays_ms`](crate::model::Settings::stats_delays_ms).
    pub fn is_sweep(&self) -> bool {
        self.settings.stats_delays_ms.len() > 1
    }

    /// Whether runs must be told apart by their Stats delay: a sweep, or any run that had one.
    pub fn shows_stats_delay(&self) -> bool {
        self.is_sweep() || self.runs.iter().any(|r| r.stats_delay_ms != 0)
    }

    /// The name of a run in tables and legends: `strong`, or `strong, stats 20 ms` when runs
    /// differ by their Stats delay.
    pub fn run_label(&self, run: &Run) -> String {
        let label = run.label(self.shows_stats_delay());
        if self.shows_backends() {
            format!("{label} ({})", run.backends)
        } else {
            label
        }
    }

    /// Whether runs differ by database or transport: then every label says which.
    pub fn shows_backends(&self) -> bool {
        let mut stores: Vec<&str> = self
            .runs
            .iter()
            .map(|r| r.backends.split('+').next().unwrap_or_default())
            .collect();
        stores.sort_unstable();
        stores.dedup();
        let transports = self
            .runs
            .iter()
            .filter_map(|r| r.backends.split('+').nth(1))
            .collect::<std::collections::BTreeSet<_>>();
        stores.len() > 1 || transports.len() > 1
    }

    /// The distinct Stats delays, increasing: the settings' and the runs'.
    pub fn stats_delays(&self) -> Vec<u64> {
        let mut delays: Vec<u64> = self
            .settings
            .stats_delays_ms
            .iter()
            .copied()
            .chain(self.runs.iter().map(|r| r.stats_delay_ms))
            .collect();
        delays.sort_unstable();
        delays.dedup();
        delays
    }

    /// The modes in the order they first ran.
    pub fn modes(&self) -> Vec<&str> {
        let mut modes: Vec<&str> = Vec::new();
        for run in &self.runs {
            if !modes.contains(&run.mode.as_str()) {
                modes.push(&run.mode);
            }
        }
        modes
    }
}

impl Run {
    /// `mode`, or `mode, stats 20 ms` when `with_delay`.
    pub fn label(&self, with_delay: bool) -> String {
        if with_delay {
            format!("{}, stats {} ms", self.mode, self.stats_delay_ms)
        } else {
            self.mode.clone()
        }
    }

    /// The apply lag of one service, if it was measured.
    pub fn service_lag(&self, service: &str) -> Option<&ServiceLag> {
        self.apply_lag.iter().find(|l| l.service == service)
    }

    /// The service with the largest apply lag p99 and that p99 (non-finite values ignored).
    pub fn largest_apply_lag_p99(&self) -> Option<(&str, f64)> {
        self.apply_lag
            .iter()
            .filter(|l| l.lag.p99.is_finite())
            .max_by(|a, b| a.lag.p99.total_cmp(&b.lag.p99))
            .map(|l| (l.service.as_str(), l.lag.p99))
    }

    /// The apply lags sorted as [`SERVICE_ORDER`].
    pub fn apply_lag_sorted(&self) -> Vec<&ServiceLag> {
        let mut lags: Vec<&ServiceLag> = self.apply_lag.iter().collect();
        lags.sort_by_key(|l| service_rank(&l.service));
        lags
    }
}

impl Visibility {
    /// The curve of one service (or `order`), if probed.
    pub fn curve(&self, service: &str) -> Option<&VisibilityCurve> {
        self.curves.iter().find(|c| c.service == service)
    }

    /// The curves sorted as [`SERVICE_ORDER`].
    pub fn curves_sorted(&self) -> Vec<&VisibilityCurve> {
        let mut curves: Vec<&VisibilityCurve> = self.curves.iter().collect();
        curves.sort_by_key(|c| service_rank(&c.service));
        curves
    }

    /// The `(delay_ms, probability)` points of one curve, non-finite ones dropped, by delay.
    pub fn points(&self, curve: &VisibilityCurve) -> Vec<(f64, f64)> {
        let mut points: Vec<(f64, f64)> = self
            .delays_ms
            .iter()
            .zip(&curve.probability)
            .map(|(d, p)| (*d, *p))
            .filter(|(d, p)| d.is_finite() && p.is_finite())
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        points
    }

    /// The probability that a read of `service` made `delay_ms` after the acknowledgement
    /// reflects the order: the measured value at that delay, or a linear interpolation between
    /// the two probed delays around it. `None` outside the probed range or without a curve.
    pub fn probability_at(&self, service: &str, delay_ms: f64) -> Option<f64> {
        let points = self.points(self.curve(service)?);
        let first = points.first()?;
        let last = points.last()?;
        if !delay_ms.is_finite() || delay_ms < first.0 || delay_ms > last.0 {
            return None;
        }
        let p = match points.iter().find(|(d, _)| *d == delay_ms) {
            Some((_, p)) => *p,
            None => {
                let after = points.iter().position(|(d, _)| *d > delay_ms)?;
                let (d0, p0) = points[after.checked_sub(1)?];
                let (d1, p1) = points[after];
                p0 + (p1 - p0) * (delay_ms - d0) / (d1 - d0)
            }
        };
        Some(p.clamp(0.0, 1.0))
    }
}
