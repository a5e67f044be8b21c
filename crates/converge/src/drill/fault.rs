//! The menu of faults, and how each is put in force and lifted on a [`Cluster`].
//!
//! Every fault is real: a process is killed or frozen by a signal, a service is restarted with
//! a wrong secret, a process's file-size limit is lowered under its database (its writes fail
//! as on a full disk), a delay is set through the services' own admin routes. Lifting it is
//! the operator's fix (restart, `SIGCONT`, the right secret, room on the disk, delay back to 0),
//! never more: the drill then measures whether the system agrees again by itself. A crash is
//! a crash point armed in the running process (builds with `--features failpoints`): it
//! aborts at the next pass there, as a power cut would stop it, mid-protocol.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::ValueEnum;
use contracts::internal::{
    CRASH_POINT_PATH, CrashPoint, NETWORK_DELAY_PATH, PROCESSING_DELAY_PATH, ProcessingDelay,
    SECRET_HEADER,
};
use contracts::{Mode, ServiceName};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::Serialize;

use crate::up::{Cluster, Part};

/// The secret a service is restarted with by [`Kind::WrongSecret`]: long enough to be
/// accepted at start, and not the one its peers share.
const WRONG_SECRET: &str = "a-mistyped-secret-of-the-drill";

/// The delay [`Kind::DelaySpike`] adds to each of its service's calls to others.
const SPIKE: Duration = Duration::from_millis(400);

/// The processing delay [`Kind::SlowStats`] gives Stats, per step or batch.
const SLOW: Duration = Duration::from_millis(500);

/// What can go wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// `SIGKILL` of a service's process, restarted at the end of the window.
    Kill,
    /// `SIGSTOP` of a service's process, `SIGCONT` at the end.
    Pause,
    /// Account restarted with a wrong secret, then with the right one.
    WrongSecret,
    /// A service's database can no longer grow (SQLite only): Stats, then Order.
    DiskFull,
    /// A network delay on every call a service makes, then none.
    DelaySpike,
    /// Stats' processing delay raised, then back to 0.
    SlowStats,
    /// A crash point armed in a service's process: it aborts at the next pass there (Order
    /// after logging a decision or appending to its outbox; Payment and Stats after a
    /// prepare or an apply), and is restarted at the end of the window.
    Crash,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Kill,
        Kind::Pause,
        Kind::WrongSecret,
        Kind::DiskFull,
        Kind::DelaySpike,
        Kind::SlowStats,
        Kind::Crash,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Kill => "kill",
            Kind::Pause => "pause",
            Kind::WrongSecret => "wrong-secret",
            Kind::DiskFull => "disk-full",
            Kind::DelaySpike => "delay-spike",
            Kind::SlowStats => "slow-stats",
            Kind::Crash => "crash",
        }
    }

    /// The services it may hit: kill and pause any; the others those where they matter
    /// (Account checks every order; Stats is the full disk and the slow service; Order
    /// makes the calls of the two-phase commit, logs its decisions and reads Payment's
    /// verdicts).
    fn targets(self) -> &'static [ServiceName] {
        match self {
            Kind::Kill | Kind::Pause => &ServiceName::ALL,
            Kind::WrongSecret => &[ServiceName::Account],
            Kind::DiskFull => &[ServiceName::Stats, ServiceName::Order],
            Kind::SlowStats => &[ServiceName::Stats],
            Kind::DelaySpike => &[ServiceName::Order],
            Kind::Crash => &[ServiceName::Order, ServiceName::Payment, ServiceName::Stats],
        }
    }
}

/// Where [`Kind::Crash`] stops `service` in `mode`: mid-protocol, after a durable step and
/// before anyone hears of it.
fn crash_point(mode: Mode, service: ServiceName) -> String {
    match (mode, service) {
        (Mode::Strong, ServiceName::Order) => "order::after-decision".into(),
        (Mode::Strong, _) => "participant::after-prepare".into(),
        (_, ServiceName::Order) => "order::after-placement".into(),
        (_, service) => format!("{service}::after-apply"),
    }
}

/// One fault of the drill: what, and on which service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Fault {
    pub kind: Kind,
    pub target: ServiceName,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.name(), self.target)
    }
}

/// Every fault of `kinds` on each of its targets in turn.
pub fn each(kinds: &[Kind]) -> Vec<Fault> {
    kinds
        .iter()
        .flat_map(|&kind| {
            kind.targets()
                .iter()
                .map(move |&target| Fault { kind, target })
        })
        .collect()
}

/// `count` faults drawn from `kinds` (and their targets) by `seed`: the same seed, the same
/// drill.
pub fn random(kinds: &[Kind], count: usize, seed: u64) -> Vec<Fault> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .filter_map(|_| {
            let kind = *kinds.get(rng.random_range(0..kinds.len().max(1)))?;
            let targets = kind.targets();
            let target = targets[rng.random_range(0..targets.len())];
            Some(Fault { kind, target })
        })
        .collect()
}

/// What the drill needs to reach a service besides the cluster.
pub struct Reach {
    pub http: reqwest::Client,
    /// Where SQLite files live; `None` on PostgreSQL.
    pub sqlite_dir: Option<PathBuf>,
}

/// Why a fault cannot run on these backends, if it cannot.
pub fn unsupported(fault: Fault, reach: &Reach) -> Option<String> {
    if fault.kind == Kind::Crash && !runtime::CRASH_POINTS_BUILT {
        return Some(
            "skipped: this build has no crash points (cargo run --release --features failpoints)"
                .into(),
        );
    }
    if fault.kind != Kind::DiskFull {
        return None;
    }
    if reach.sqlite_dir.is_none() {
        return Some(
            "skipped: a full disk is simulated under a SQLite file; PostgreSQL's disk is the server's"
                .into(),
        );
    }
    if which("prlimit").is_none() {
        return Some("skipped: needs the prlimit tool (util-linux)".into());
    }
    None
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

/// Puts `fault` in force.
pub async fn inject(fault: Fault, cluster: &mut Cluster, reach: &Reach) -> anyhow::Result<()> {
    let part = Part::Service(fault.target);
    match fault.kind {
        Kind::Kill => cluster.kill(part, 0).await,
        Kind::Pause => cluster.pause(part, 0),
        Kind::WrongSecret => {
            let wrong = vec![("CONVERGE_SECRET".to_owned(), WRONG_SECRET.to_owned())];
            cluster.restart(part, 0, wrong).await
        }
        Kind::DiskFull => {
            let dir = reach.sqlite_dir.as_ref().context("no SQLite directory")?;
            let file = dir.join(format!("{}.db", fault.target));
            let size = std::fs::metadata(&file)
                .with_context(|| format!("cannot read the size of {}", file.display()))?
                .len();
            file_size_limit(cluster, part, &size.to_string()).await
        }
        Kind::DelaySpike => {
            set_delay(cluster, reach, fault.target, NETWORK_DELAY_PATH, SPIKE).await
        }
        Kind::SlowStats => {
            set_delay(cluster, reach, fault.target, PROCESSING_DELAY_PATH, SLOW).await
        }
        Kind::Crash => {
            let name = crash_point(cluster.plan().mode, fault.target);
            post(
                cluster,
                reach,
                fault.target,
                CRASH_POINT_PATH,
                &CrashPoint { name },
            )
            .await
        }
    }
}

/// Lifts `fault`, as an operator would.
pub async fn heal(fault: Fault, cluster: &mut Cluster, reach: &Reach) -> anyhow::Result<()> {
    let part = Part::Service(fault.target);
    match fault.kind {
        Kind::Kill | Kind::WrongSecret => cluster.restart(part, 0, Vec::new()).await,
        Kind::Crash => {
            let crashed = cluster.exited(part, 0)?.is_some();
            cluster.restart(part, 0, Vec::new()).await?;
            anyhow::ensure!(
                crashed,
                "{} was not reached within the window",
                crash_point(cluster.plan().mode, fault.target)
            );
            Ok(())
        }
        Kind::Pause => cluster.resume(part, 0),
        Kind::DiskFull => file_size_limit(cluster, part, "unlimited").await,
        Kind::DelaySpike => {
            set_delay(
                cluster,
                reach,
                fault.target,
                NETWORK_DELAY_PATH,
                Duration::ZERO,
            )
            .await
        }
        Kind::SlowStats => {
            set_delay(
                cluster,
                reach,
                fault.target,
                PROCESSING_DELAY_PATH,
                Duration::ZERO,
            )
            .await
        }
    }
}

/// Sets the soft `RLIMIT_FSIZE` of a running process with `prlimit(1)` (the hard limit stays
/// unlimited, so it can be raised again): past it, a write fails as on a full disk.
async fn file_size_limit(cluster: &Cluster, part: Part, soft: &str) -> anyhow::Result<()> {
    let pid = cluster
        .pid(part, 0)
        .with_context(|| format!("{part} is not running"))?;
    let status = tokio::process::Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--fsize={soft}:"))
        .status()
        .await
        .context("cannot run prlimit")?;
    anyhow::ensure!(
        status.success(),
        "prlimit --fsize={soft}: failed ({status})"
    );
    Ok(())
}

/// Sets a delay through a service's internal admin route.
async fn set_delay(
    cluster: &Cluster,
    reach: &Reach,
    service: ServiceName,
    path: &str,
    delay: Duration,
) -> anyhow::Result<()> {
    let delay = ProcessingDelay {
        delay_ms: delay.as_millis() as u64,
    };
    post(cluster, reach, service, path, &delay).await
}

/// `POST`s `body` to a service's internal admin route `path`, with the secret.
async fn post(
    cluster: &Cluster,
    reach: &Reach,
    service: ServiceName,
    path: &str,
    body: &impl Serialize,
) -> anyhow::Result<()> {
    let addr = cluster
        .addr(Part::Service(service), 0)
        .with_context(|| format!("no {service}"))?;
    let response = reach
        .http
        .post(format!("http://{addr}{path}"))
        .header(SECRET_HEADER, cluster.secret())
        .json(body)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .with_context(|| format!("cannot reach {service}'s {path}"))?;
    anyhow::ensure!(
        response.status().is_success(),
        "{service}'s {path} answered {}",
        response.status()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_and_pause_go_through_every_service_the_others_hit_theirs() {
        let faults = each(&Kind::ALL);
        assert_eq!(faults.len(), 5 + 5 + 1 + 2 + 1 + 1 + 3);
        assert!(faults.contains(&Fault {
            kind: Kind::WrongSecret,
            target: ServiceName::Account
        }));
        assert!(faults.contains(&Fault {
            kind: Kind::Kill,
            target: ServiceName::Loyalty
        }));
    }

    #[test]
    fn a_seed_draws_the_same_faults() {
        assert_eq!(random(&Kind::ALL, 8, 7), random(&Kind::ALL, 8, 7));
        assert_eq!(random(&Kind::ALL, 8, 7).len(), 8);
        assert!(random(&[], 3, 7).is_empty());
    }
}
