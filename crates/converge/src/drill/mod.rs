//! `converge drill`: a nemesis, as Jepsen has, built in.
//!
//! The checker proves nothing is lost or counted twice on a system left alone; the drill asks
//! the same of a system that is hurt while it works. Per mode it starts the five services and
//! the gateway as separate processes ([`Cluster`]), opens a seeded workload's accounts, and
//! then, one fault at a time: a steady phase under an open-loop load of clients that retry
//! under their `Idempotency-Key`, the fault window (the fault in force, the load going on),
//! the fault lifted and the load stopped, and the wait until every service agrees again. Each
//! fault gets a row: what the clients got during the window (acknowledged, refused, failed
//! attempts), how long after the fix the system took to agree (the checker's quiet wait), what
//! the drill saw of the fault (a consumer stuck, and why), whether a process died on its own,
//! and the checker's verdict on everything acknowledged so far.
//!
//! - [`fault`]: the menu, and how each fault is put in force and lifted;
//! - [`load`]: the retrying open-loop clients, every attempt timed on one clock;
//! - [`output`]: the table, `drill.json`, an SVG timeline per mode, `index.html`.

pub mod fault;
pub mod load;
pub mod output;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use contracts::api::Progress;
use contracts::internal::ConsumerState;
use contracts::{Mode, ServiceName};
use loadgen::workload::{Client, Workload};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::settings::Backends;
use crate::up::Cluster;
use fault::{Fault, Reach};
use load::{Availability, Load, Orders};

/// How often the drill reads `/progress` while a fault is in force.
const WATCH_EVERY: Duration = Duration::from_millis(200);

/// How much of a stuck consumer's error the table shows.
const ERROR_SHOWN: usize = 48;

/// The most violations a row keeps the text of (the count is always whole).
const VIOLATIONS_KEPT: usize = 5;

/// What to drill.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The command line, for the report.
    pub command: String,
    /// The `converge` executable the processes run.
    pub binary: PathBuf,
    pub modes: Vec<Mode>,
    pub faults: Vec<Fault>,
    /// Orders offered per second.
    pub rate: u64,
    pub accounts: usize,
    pub seed: u64,
    /// Load before each fault.
    pub steady: Duration,
    /// How long each fault is in force.
    pub window: Duration,
    /// How long the system may take to agree after a fault before the drill says it did not.
    pub agree_timeout: Duration,
    /// Where the data lives and how events travel. The drill gives each mode fresh storage:
    /// a temporary SQLite directory, or its own schema and stream prefixes.
    pub backends: Backends,
    /// Flags every process gets besides the backends (the knobs).
    pub args: Vec<String>,
    /// Where the report and the processes' logs go.
    pub out: PathBuf,
}

/// One fault's row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub mode: Mode,
    pub fault: Fault,
    /// Why the fault did not run, when it could not.
    pub skipped: Option<String>,
    /// The window on the drill's clock of this mode, in seconds.
    pub from_s: f64,
    pub to_s: f64,
    /// Attempts answered during the window.
    pub during: Availability,
    /// From the fault's end until the clients had their final answers and the system was
    /// quiet; `None` if it was not within the drill's timeout.
    pub agreed_after_s: Option<f64>,
    /// What the drill saw of the fault while it was in force.
    pub seen: Seen,
    /// Processes that exited without the drill killing them.
    pub died: Vec<String>,
    pub violations: usize,
    pub violation_samples: Vec<String>,
    /// Orders whose client gave up without a final answer (a broken promise).
    pub abandoned: u64,
    /// What went wrong running the fault itself, if anything did.
    pub error: Option<String>,
}

/// What `/progress` showed while a fault was in force.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Seen {
    pub readings: u32,
    /// Readings that were not quiet, or that the gateway could not answer whole.
    pub unquiet: u32,
    /// Each consumer seen stuck, as `service/feed`, with the last error it gave (the first may
    /// be the fault's onset: a peer restarting before it answers wrongly).
    pub stuck: BTreeMap<String, String>,
}

impl Seen {
    /// A few words for the table (the errors cut short: `drill.json` has them whole).
    pub fn summary(&self) -> String {
        if !self.stuck.is_empty() {
            let stuck: Vec<String> = self
                .stuck
                .iter()
                .map(|(consumer, error)| format!("{consumer}: {}", shorten(error)))
                .collect();
            format!("stuck {}", stuck.join("; "))
        } else if self.unquiet > 0 {
            format!("lagging {}/{}", self.unquiet, self.readings)
        } else {
            "-".into()
        }
    }

    /// The last error of a stuck consumer of `service`, if one was seen.
    pub fn stuck_at(&self, service: ServiceName) -> Option<&str> {
        let prefix = format!("{service}/");
        self.stuck
            .iter()
            .find(|(consumer, _)| consumer.starts_with(&prefix))
            .map(|(_, error)| error.as_str())
    }
}

/// The first words of an error, up to [`ERROR_SHOWN`] characters.
fn shorten(error: &str) -> String {
    match error.char_indices().nth(ERROR_SHOWN) {
        Some((cut, _)) => format!("{}…", &error[..cut]),
        None => error.to_owned(),
    }
}

/// Everything a mode's run measured.
#[derive(Debug, Clone, Serialize)]
pub struct ModeRun {
    pub mode: Mode,
    pub rows: Vec<Row>,
    /// Acknowledged and failed attempts per second of the mode's clock.
    pub per_second: Vec<(u64, u64)>,
    pub acknowledged: usize,
}

/// The whole drill.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub command: String,
    pub started_at: String,
    pub seed: u64,
    pub rate: u64,
    pub fault_s: f64,
    pub backends: String,
    pub runs: Vec<ModeRun>,
}

impl Report {
    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        self.runs.iter().flat_map(|run| run.rows.iter())
    }

    /// Every fault ran, broke no invariant, and the system agreed after it with no process
    /// lost on its own.
    pub fn passed(&self) -> bool {
        self.rows().all(|row| {
            row.skipped.is_some()
                || (row.violations == 0
                    && row.agreed_after_s.is_some()
                    && row.died.is_empty()
                    && row.abandoned == 0
                    && row.error.is_none())
        })
    }
}

/// Runs every fault of the plan in every mode of it.
pub async fn run(plan: &Plan) -> anyhow::Result<Report> {
    let started_at = chrono::Utc::now().to_rfc3339();
    let mut runs = Vec::new();
    for &mode in &plan.modes {
        runs.push(run_mode(plan, mode).await?);
    }
    Ok(Report {
        command: plan.command.clone(),
        started_at,
        seed: plan.seed,
        rate: plan.rate,
        fault_s: plan.window.as_secs_f64(),
        backends: describe(&plan.backends),
        runs,
    })
}

fn describe(backends: &Backends) -> String {
    let store = if backends.database_url.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    format!("{store} + {}", backends.transport().name())
}

/// One mode: a fresh system, then each fault in turn.
async fn run_mode(plan: &Plan, mode: Mode) -> anyhow::Result<ModeRun> {
    let data = tempfile::tempdir().context("cannot create a temporary data directory")?;
    let backends = fresh_backends(plan, mode, data.path().to_owned());
    let (cluster_plan, reach) = cluster_plan(plan, mode, &backends);
    progress(
        mode,
        &format!(
            "starting the processes; logs in {}",
            cluster_plan.run_dir.display()
        ),
    );
    let mut cluster = Cluster::start(cluster_plan).await?;
    let client = Client::new(cluster.url());
    let expected = plan.rate as f64 * (plan.steady + plan.window).as_secs_f64();
    let workload = Workload::timed(
        plan.seed,
        plan.accounts,
        (expected * plan.faults.len().max(1) as f64) as u64 + plan.rate,
    );
    let opened = workload
        .open(&client)
        .await
        .context("cannot open the accounts")?;
    let orders = Arc::new(Orders::new(client, workload, opened));
    let mut rows = Vec::new();
    for &fault in &plan.faults {
        let row = drill_one(plan, mode, fault, &mut cluster, &reach, &orders).await;
        progress(mode, &output::line(&row));
        rows.push(row);
    }
    cluster.stop().await;
    let removed = crate::system::remove_storage(&backends.location()?, &backends.transport()).await;
    if let Err(error) = removed {
        progress(
            mode,
            &format!("could not remove the drill's schemas or streams: {error:#}"),
        );
    }
    let record = orders.record();
    Ok(ModeRun {
        mode,
        rows,
        per_second: load::per_second(&record.events),
        acknowledged: record.acknowledged.len(),
    })
}

/// The plan's backends on fresh storage of `mode`'s own: SQLite files in `data`, or schemas
/// and streams no other system uses.
fn fresh_backends(plan: &Plan, mode: Mode, data: PathBuf) -> Backends {
    let mut backends = plan.backends.clone();
    backends.data_dir = data;
    let unique = format!("drill{}{}", std::process::id(), mode);
    backends.database_schema_prefix = format!("{unique}_");
    backends.nats_prefix = unique;
    backends
}

/// The processes of one mode, and how the drill reaches them.
fn cluster_plan(plan: &Plan, mode: Mode, backends: &Backends) -> (crate::up::Plan, Reach) {
    let mut args = backends.to_args();
    args.extend(plan.args.iter().cloned());
    let cluster_plan = crate::up::Plan {
        binary: plan.binary.clone(),
        mode,
        instances: 1,
        listen: "127.0.0.1:0".parse().expect("a valid address"),
        secret: crate::system::new_secret(),
        dashboard_token: dashboard::Token::generate().expose().to_owned(),
        run_dir: plan.out.join(format!("run-{mode}")),
        args,
        env: backends
            .to_env()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    };
    let reach = Reach {
        http: runtime::peer::http_client(),
        sqlite_dir: backends
            .database_url
            .is_none()
            .then(|| backends.data_dir.clone()),
    };
    (cluster_plan, reach)
}

/// One fault: steady load, the fault in force, lifted, and the wait for agreement.
async fn drill_one(
    plan: &Plan,
    mode: Mode,
    fault: Fault,
    cluster: &mut Cluster,
    reach: &Reach,
    orders: &Arc<Orders>,
) -> Row {
    let mut row = Row {
        mode,
        fault,
        skipped: fault::unsupported(fault, reach),
        from_s: 0.0,
        to_s: 0.0,
        during: Availability::default(),
        agreed_after_s: None,
        seen: Seen::default(),
        died: Vec::new(),
        violations: 0,
        violation_samples: Vec::new(),
        abandoned: 0,
        error: None,
    };
    if row.skipped.is_some() {
        return row;
    }
    progress(
        mode,
        &format!("{fault}: steady {} s", plan.steady.as_secs_f64()),
    );
    let abandoned_before = orders.record().abandoned;
    let load = Load::start(orders.clone(), plan.rate);
    tokio::time::sleep(plan.steady).await;
    let from_ms = orders.now_ms();
    let injected = fault::inject(fault, cluster, reach).await;
    let stop_watching = CancellationToken::new();
    let watcher = tokio::spawn(watch(orders.client.clone(), stop_watching.clone()));
    if injected.is_ok() {
        tokio::time::sleep(plan.window).await;
    }
    let healed = fault::heal(fault, cluster, reach).await;
    let to_ms = orders.now_ms();
    stop_watching.cancel();
    row.seen = watcher.await.unwrap_or_default();
    row.error = injected
        .err()
        .or(healed.err())
        .map(|error| format!("{error:#}"));
    load.stop().await;
    let agreed = checker::wait_quiet(
        orders.client.http(),
        orders.client.base(),
        plan.agree_timeout,
    )
    .await
    .is_ok();
    let agreed_ms = orders.now_ms();
    row.from_s = from_ms as f64 / 1_000.0;
    row.to_s = to_ms as f64 / 1_000.0;
    row.agreed_after_s = agreed.then(|| (agreed_ms - to_ms) as f64 / 1_000.0);
    row.died = died(cluster);
    let (acknowledged, abandoned) = {
        let record = orders.record();
        row.during = Availability::between(&record.events, from_ms, to_ms);
        (record.acknowledged.clone(), record.abandoned)
    };
    row.abandoned = abandoned - abandoned_before;
    verdict(&mut row, orders, acknowledged, agreed).await;
    row
}

/// The checker on everything acknowledged so far. Once the system is quiet every order must
/// be settled; if it never got quiet, what is still moving is listed, not counted.
async fn verdict(row: &mut Row, orders: &Orders, acknowledged: Vec<(String, String)>, quiet: bool) {
    let options = checker::CheckOptions {
        acknowledged,
        expect_settled: quiet,
        ..Default::default()
    };
    match checker::check(orders.client.http(), orders.client.base(), &options).await {
        Ok(report) => {
            row.violations = report.violations.len();
            row.violation_samples = report
                .violations
                .iter()
                .take(VIOLATIONS_KEPT)
                .map(ToString::to_string)
                .collect();
        }
        Err(error) => {
            row.error
                .get_or_insert(format!("the checker could not read the system: {error}"));
        }
    }
}

/// Processes that are no longer running though the drill did not stop them.
fn died(cluster: &mut Cluster) -> Vec<String> {
    cluster
        .processes()
        .into_iter()
        .filter_map(|(part, index)| match cluster.exited(part, index) {
            Ok(Some(status)) => Some(format!("{part}-{index} ({status})")),
            _ => None,
        })
        .collect()
}

/// Reads `/progress` until told to stop: whether the system lagged, and the first consumer
/// seen stuck.
async fn watch(client: Client, stop: CancellationToken) -> Seen {
    let mut seen = Seen::default();
    while !stop.is_cancelled() {
        let started = Instant::now();
        let reading =
            tokio::time::timeout(Duration::from_secs(1), client.get::<Progress>("/progress")).await;
        seen.readings += 1;
        match reading {
            Ok(Ok(progress)) => {
                if !progress.quiet || progress.services.len() < ServiceName::ALL.len() {
                    seen.unquiet += 1;
                }
                note_stuck(&mut seen, &progress);
            }
            _ => seen.unquiet += 1,
        }
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(WATCH_EVERY.saturating_sub(started.elapsed())) => {}
        }
    }
    seen
}

fn note_stuck(seen: &mut Seen, progress: &Progress) {
    for (service, status) in &progress.services {
        for (feed, consumer) in &status.consumers {
            if consumer.state == ConsumerState::Stuck {
                let error = consumer.last_error.as_deref().unwrap_or("no error given");
                seen.stuck
                    .insert(format!("{service}/{feed}"), error.to_owned());
            }
        }
    }
}

/// A progress line on standard error.
fn progress(mode: Mode, message: &str) {
    eprintln!("[{mode}] {message}");
}
