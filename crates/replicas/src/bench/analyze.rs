//! From a [`Recording`] to the report's figures. Pure: every number here is computed from
//! what the tasks of [`super::load`] recorded.

use super::load::{Outcome, Recording, WriteRecord};
use crate::lsn::Lsn;
use crate::model::{Drill, DrillBucket, ReplicaRun, SessionRun, Writes};
use crate::pbs::predict_visibility;
use crate::stats::{AckLog, Positions, Summary, visibility_curve};

/// The drill's timeline is cut in slices this long: fine enough to see the stop and the
/// restart, coarse enough for a p99 per slice at the rates the lab runs.
pub(super) const DRILL_BUCKET_S: f64 = 0.5;

/// The writers' figures.
pub(super) fn writes(records: &[WriteRecord], duration_s: f64) -> Writes {
    let count = |o: Outcome| records.iter().filter(|w| w.outcome == o).count();
    let acked: Vec<f64> = records
        .iter()
        .filter(|w| w.outcome == Outcome::Acked)
        .map(WriteRecord::latency_ms)
        .collect();
    Writes {
        offered: records.len(),
        acked: acked.len(),
        timed_out: count(Outcome::TimedOut),
        failed: count(Outcome::Failed),
        acked_per_s: acked.len() as f64 / duration_s.max(f64::MIN_POSITIVE),
        latency_ms: Summary::of(&acked),
    }
}

/// `(token, ack time)` of every acknowledged write with a token.
fn acks(rec: &Recording) -> AckLog {
    AckLog::new(
        rec.writes
            .iter()
            .filter(|w| w.outcome == Outcome::Acked)
            .filter_map(|w| Some((w.token?, w.done_ms)))
            .collect(),
    )
}

/// What each standby showed during a steady run.
pub(super) fn replicas(rec: &Recording, names: &[String], offsets: &[f64]) -> Vec<ReplicaRun> {
    let log = acks(rec);
    let primary = Positions::new(&rec.positions[0]);
    names
        .iter()
        .enumerate()
        .map(|(r, name)| {
            let positions = Positions::new(&rec.positions[r + 1]);
            let probes: Vec<_> = rec.probes.iter().filter(|p| p.replica == r).collect();
            let first: Vec<Option<f64>> = probes.iter().map(|p| p.first_visible_ms).collect();
            let delays: Vec<f64> = probes
                .iter()
                .flat_map(|p| p.read_delays_ms.clone())
                .collect();
            let apply_lag = apply_lags(rec, &positions);
            let (staleness_ms, staleness_bytes) =
                staleness(&positions, &primary, &log, rec.load_end_ms);
            let replay_lag: Vec<f64> = rec
                .replication
                .iter()
                .filter(|s| s.name == *name)
                .filter_map(|s| s.replay_lag_ms)
                .collect();
            ReplicaRun {
                name: name.clone(),
                probed: probes.len(),
                probe_errors: probes.iter().filter(|p| p.error).count(),
                visibility: visibility_curve(&first, offsets),
                predicted: predict_visibility(&apply_lag, &delays, offsets),
                apply_lag_ms: Summary::of(&apply_lag),
                staleness_ms: Summary::of(&staleness_ms),
                staleness_bytes: Summary::of(&staleness_bytes),
                replay_lag_ms: Summary::of(&replay_lag),
            }
        })
        .collect()
}

/// PBS's W for one standby: for each acknowledged write, when the standby's watcher first saw
/// it replayed, from the commit's return; infinite when it never did.
fn apply_lags(rec: &Recording, standby: &Positions) -> Vec<f64> {
    rec.writes
        .iter()
        .filter(|w| w.outcome == Outcome::Acked)
        .filter_map(|w| w.token.map(|t| (t, w.done_ms)))
        .map(|(token, acked)| {
            standby
                .first_reaching(token)
                .map_or(f64::INFINITY, |seen| seen - acked)
        })
        .collect()
}

/// A standby's staleness at each of its samples during the load: in time (the age of the
/// oldest acknowledged write it lacks) and in WAL bytes (behind the primary's last sample).
fn staleness(
    standby: &Positions,
    primary: &Positions,
    log: &AckLog,
    load_end_ms: f64,
) -> (Vec<f64>, Vec<f64>) {
    standby
        .iter()
        .filter(|(t, _)| *t <= load_end_ms)
        .map(|(t, lsn)| {
            let behind = primary.at(t).map_or(0, |p| p.bytes_after(lsn));
            (log.staleness_ms(t, lsn), behind as f64)
        })
        .unzip()
}

/// The sessions' figures, without guarantees first.
pub(super) fn sessions(rec: &Recording, per_setting: usize) -> Vec<SessionRun> {
    rec.sessions
        .iter()
        .map(|t| SessionRun {
            guarantees: if t.guarantees { "on" } else { "off" }.to_string(),
            sessions: per_setting,
            writes: t.writes,
            reads: t.reads,
            ryw_violations: t.ryw_violations,
            mr_violations: t.mr_violations,
            waited: t.waited,
            on_primary: t.on_primary,
            read_ms: Summary::of(&t.read_ms),
        })
        .collect()
}

/// The drill's figures (everything but the loss check). `stopped` indexes the standbys.
pub(super) fn drill(rec: &Recording, names: &[String], stopped: usize, duration_s: f64) -> Drill {
    let log = acks(rec);
    let primary = Positions::new(&rec.positions[0]);
    let standbys: Vec<Positions> = rec.positions[1..]
        .iter()
        .map(|p| Positions::new(p))
        .collect();
    let (stop, restart) = (
        rec.stopped_ms.unwrap_or(f64::NAN),
        rec.restarted_ms.unwrap_or(f64::NAN),
    );
    let end_ms = rec.load_end_ms.max(duration_s * 1000.0);
    // A tail shorter than half a slice would show as a dip to nothing: it is left out of the
    // timeline (not of the totals).
    let slices = ((end_ms / (DRILL_BUCKET_S * 1000.0)).round() as usize).max(1);
    let buckets = (1..=slices)
        .map(|k| {
            bucket(
                rec,
                &log,
                &primary,
                &standbys,
                k as f64 * DRILL_BUCKET_S * 1000.0,
            )
        })
        .collect::<Vec<_>>();
    let down: Vec<f64> = rec
        .writes
        .iter()
        .filter(|w| w.outcome == Outcome::Acked && w.intended_ms >= stop && w.intended_ms < restart)
        .map(WriteRecord::latency_ms)
        .collect();
    let max_staleness_ms = buckets
        .iter()
        .map(|b| b.staleness_ms[stopped])
        .fold(0.0, f64::max);
    Drill {
        stopped: names[stopped].clone(),
        stopped_at_s: stop / 1000.0,
        restarted_at_s: restart / 1000.0,
        duration_s,
        writes: writes(&rec.writes, duration_s),
        latency_down_ms: Summary::of(&down),
        bucket_s: DRILL_BUCKET_S,
        buckets,
        recovered_after_ms: recovered_after(&primary, &standbys[stopped], restart),
        max_staleness_ms,
        lost: super::no_loss_check_yet(),
    }
}

/// One slice of the drill's timeline, ending at `end_ms`.
fn bucket(
    rec: &Recording,
    log: &AckLog,
    primary: &Positions,
    standbys: &[Positions],
    end_ms: f64,
) -> DrillBucket {
    let start_ms = end_ms - DRILL_BUCKET_S * 1000.0;
    let within = |w: &&WriteRecord| w.done_ms > start_ms && w.done_ms <= end_ms;
    let answered: Vec<&WriteRecord> = rec.writes.iter().filter(within).collect();
    let latencies: Vec<f64> = answered
        .iter()
        .filter(|w| w.outcome == Outcome::Acked)
        .map(|w| w.latency_ms())
        .collect();
    let at = |s: &Positions| s.at(end_ms).unwrap_or(Lsn::ZERO);
    DrillBucket {
        t_s: end_ms / 1000.0,
        acked: latencies.len(),
        timed_out: answered
            .iter()
            .filter(|w| w.outcome == Outcome::TimedOut)
            .count(),
        latency_p99_ms: Summary::of(&latencies).p99,
        staleness_ms: standbys
            .iter()
            .map(|s| log.staleness_ms(end_ms, at(s)))
            .collect(),
        staleness_bytes: standbys
            .iter()
            .map(|s| primary.at(end_ms).map_or(0, |p| p.bytes_after(at(s))) as f64)
            .collect(),
    }
}

/// From the restart until the standby had replayed everything the primary had written when it
/// restarted.
fn recovered_after(primary: &Positions, standby: &Positions, restart_ms: f64) -> Option<f64> {
    let missed = primary.at(restart_ms)?;
    let reached = standby.first_seen(missed)?;
    Some((reached - restart_ms).max(0.0))
}
