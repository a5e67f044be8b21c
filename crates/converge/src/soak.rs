//! `converge soak`: does the system stay the same size when it runs for long?
//!
//! A bench run lasts seconds, too short to see a leak or a table that only grows. The soak
//! starts one system in this process (as the bench does: each service on its own port with its
//! own database), offers the seeded workload at a steady open-loop rate for minutes, and every
//! few seconds measures
//! - the resident memory of this process: the five services, the gateway and the load driver;
//! - per service, each table's row count and the database's size on disk (for SQLite the file
//!   and its WAL, for PostgreSQL `pg_total_relation_size` of the schema's tables).
//!
//! Retention is short (30 s by default, pruned every 5 s), so that pruning shows within the
//! run: the outbox, the idempotency keys and the decisions should level off while the business
//! tables (orders, payments, ledger entries, facts) grow with the orders, as they must. Once
//! the load stops, the checker waits for quiet and audits.
//!
//! What it writes: `soak.json` (every sample), `rss.svg`, `database-size.svg`, one
//! `rows-<service>.svg` per service and an `index.html` showing them; and a summary, memory and
//! each database's size at one minute against the end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use contracts::{Mode, ServiceName};
use loadgen::driver::{Driver, LoadConfig};
use loadgen::workload::{Client, Workload};
use report::html::{escape, service_color};
use report::svg::{self, Axis, LineChart, Series};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::bench::{self, Backends};
use crate::settings::SoakArgs;
use crate::system::{System, SystemConfig};

/// The moment the end is compared with: after start-up and the first prunes, when the caches
/// and pools have reached their working size.
const REFERENCE: Duration = Duration::from_secs(60);

/// What to soak, and how.
#[derive(Debug, Clone)]
pub struct Plan {
    pub command: String,
    pub mode: Mode,
    pub backends: Backends,
    /// Orders offered per second.
    pub rate: u64,
    pub duration: Duration,
    pub connections: usize,
    pub accounts: usize,
    pub seed: u64,
    pub retention: runtime::Retention,
    pub sample_every: Duration,
}

impl Plan {
    pub fn from_args(args: &SoakArgs, command: String) -> Self {
        let keep = Duration::from_secs(args.retention_s);
        Self {
            command,
            mode: args.mode.into(),
            backends: args.servers.backends(args.store, args.transport),
            rate: args.rate.max(1),
            duration: args.duration,
            connections: args.connections.max(1),
            accounts: args.accounts.max(1),
            seed: args.seed,
            retention: runtime::Retention {
                outbox: keep,
                idempotency_keys: keep,
                decisions: keep,
                interval: Duration::from_secs(args.prune_interval_s.max(1)),
            },
            sample_every: args.sample_every,
        }
    }

    /// One line saying what runs.
    pub fn describe(&self) -> String {
        format!(
            "Soaking {} mode on {} at {} orders/s for {} s; outbox, keys and decisions kept {} s, \
             pruned every {} s; sampling every {} s",
            self.mode,
            backends_label(&self.backends),
            self.rate,
            self.duration.as_secs_f64(),
            self.retention.outbox.as_secs_f64(),
            self.retention.interval.as_secs_f64(),
            self.sample_every.as_secs_f64(),
        )
    }
}

/// `sqlite+embedded`, `postgres+nats`, ...
fn backends_label(backends: &Backends) -> String {
    format!("{}+{}", backends.store_name(), backends.transport_name())
}

/// Everything a soak measured: what `soak.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Soak {
    pub command: String,
    pub mode: String,
    pub backends: String,
    pub rate: u64,
    pub duration_s: f64,
    pub retention_s: f64,
    pub prune_interval_s: f64,
    pub sent: u64,
    pub acknowledged: u64,
    pub refused: u64,
    pub failed: u64,
    pub samples: Vec<Sample>,
    /// The checker's, after quiet: none expected.
    pub violations: Vec<String>,
}

/// One measurement of the whole system.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the load started.
    pub t_s: f64,
    /// Orders acknowledged so far.
    pub acknowledged: u64,
    /// This process's resident set (`VmRSS`), MiB.
    pub rss_mib: f64,
    /// One per service, in the order of [`ServiceName::ALL`]. The last sample is taken once the
    /// system has caught up with the load.
    pub databases: Vec<Database>,
}

/// One service's database at one moment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Database {
    pub service: String,
    /// The database file (SQLite) or the tables with their indexes and TOAST (PostgreSQL).
    pub bytes: u64,
    /// SQLite's write-ahead log; 0 on PostgreSQL, whose WAL is the server's.
    pub wal_bytes: u64,
    /// Rows per table.
    pub rows: BTreeMap<String, u64>,
}

impl Database {
    pub fn total_bytes(&self) -> u64 {
        self.bytes + self.wal_bytes
    }
}

impl Sample {
    /// The database of `service`.
    pub fn database(&self, service: &str) -> Option<&Database> {
        self.databases.iter().find(|d| d.service == service)
    }

    /// One line of progress: time, orders, memory, each database's size and outbox.
    pub fn line(&self) -> String {
        let databases: Vec<String> = self
            .databases
            .iter()
            .map(|d| {
                let outbox = d
                    .rows
                    .get("outbox")
                    .map(|n| format!(" (outbox {n})"))
                    .unwrap_or_default();
                format!("{} {}{outbox}", d.service, mib(d.total_bytes()))
            })
            .collect();
        format!(
            "{:>6.0} s  {:>9} acked  rss {:>6.1} MiB  {}",
            self.t_s,
            self.acknowledged,
            self.rss_mib,
            databases.join("  ")
        )
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

impl Soak {
    /// The sample the end is compared with: the first at or after one minute, or the first
    /// of a shorter run.
    pub fn reference(&self) -> Option<&Sample> {
        self.samples
            .iter()
            .find(|s| s.t_s >= REFERENCE.as_secs_f64())
            .or(self.samples.first())
    }

    /// Memory and each database's size at one minute against the end.
    pub fn summary(&self) -> String {
        let (Some(first), Some(last)) = (self.reference(), self.samples.last()) else {
            return "no samples".to_owned();
        };
        let ratio = |a: f64, b: f64| if a > 0.0 { b / a } else { f64::NAN };
        let mut parts = vec![format!(
            "RSS {:.1} MiB at {:.0} s, {:.1} MiB at {:.0} s (x{:.3})",
            first.rss_mib,
            first.t_s,
            last.rss_mib,
            last.t_s,
            ratio(first.rss_mib, last.rss_mib)
        )];
        for end in &last.databases {
            let Some(start) = first.database(&end.service) else {
                continue;
            };
            parts.push(format!(
                "{} {} -> {} (x{:.2})",
                end.service,
                mib(start.total_bytes()),
                mib(end.total_bytes()),
                ratio(start.total_bytes() as f64, end.total_bytes() as f64)
            ));
        }
        parts.join("; ")
    }
}

/// Runs the soak; `on_sample` sees each sample as it is taken.
pub async fn run(
    plan: &Plan,
    on_sample: impl Fn(&Sample) + Send + 'static,
) -> anyhow::Result<Soak> {
    let dir = tempfile::tempdir()?;
    let prefix = format!("soak{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut config = SystemConfig::new(plan.mode, plan.backends.location(dir.path(), &prefix));
    config.transport = plan.backends.transport(&prefix);
    config.retention = plan.retention;
    let system = System::start(config.clone()).await?;
    let result = load_and_check(plan, &system, &config.location, on_sample).await;
    system.stop().await?;
    bench::clean_up(&config.location, &config.transport).await?;
    result
}

async fn load_and_check(
    plan: &Plan,
    system: &System,
    location: &storage::Location,
    on_sample: impl Fn(&Sample) + Send + 'static,
) -> anyhow::Result<Soak> {
    let client = Client::new(&system.url);
    let expected = (plan.rate as f64 * plan.duration.as_secs_f64()).ceil() as u64;
    let workload = Workload::timed(plan.seed, plan.accounts, expected.max(1));
    let opened = workload.open(&client).await?;

    let acknowledged = Arc::new(AtomicU64::new(0));
    let checked = Arc::new(Mutex::new(Vec::with_capacity(bench::CHECKED_ACKS_MAX)));
    let checked_sink = checked.clone();
    let driver = Driver::new(
        client.clone(),
        LoadConfig {
            rate: Some(plan.rate),
            connections: plan.connections,
            duration: plan.duration,
        },
    )
    .progress(acknowledged.clone())
    .on_ack(move |ack| {
        let mut checked = checked_sink.lock().expect("never poisoned");
        if checked.len() < bench::CHECKED_ACKS_MAX {
            checked.push((ack.order_id.clone(), ack.account_id.clone()));
        }
    });

    let stop_sampling = CancellationToken::new();
    let sampler = tokio::spawn(sample_until(
        Sampler {
            location: location.clone(),
            every: plan.sample_every,
            acknowledged,
        },
        stop_sampling.clone(),
        on_sample,
    ));
    let load = driver
        .run(move |i| {
            let order = workload.order_at(i);
            (opened.request(&order), order.idempotency_key)
        })
        .await;
    crate::demo::wait_quiet(&client, bench::QUIET_TIMEOUT).await?;
    stop_sampling.cancel();
    let samples = sampler.await??;

    let options = checker::CheckOptions {
        acknowledged: checked.lock().expect("never poisoned").clone(),
        ..Default::default()
    };
    let report = checker::check(client.http(), client.base(), &options).await?;
    Ok(Soak {
        command: plan.command.clone(),
        mode: plan.mode.to_string(),
        backends: backends_label(&plan.backends),
        rate: plan.rate,
        duration_s: plan.duration.as_secs_f64(),
        retention_s: plan.retention.outbox.as_secs_f64(),
        prune_interval_s: plan.retention.interval.as_secs_f64(),
        sent: load.sent,
        acknowledged: load.acknowledged,
        refused: load.refused,
        failed: load.failed,
        samples,
        violations: report.violations.iter().map(ToString::to_string).collect(),
    })
}

/// What the sampler reads.
struct Sampler {
    location: storage::Location,
    every: Duration,
    acknowledged: Arc<AtomicU64>,
}

impl Sampler {
    async fn sample(&self, started: Instant) -> anyhow::Result<Sample> {
        let location = self.location.clone();
        let databases = tokio::task::spawn_blocking(move || measure_databases(&location)).await??;
        Ok(Sample {
            t_s: started.elapsed().as_secs_f64(),
            acknowledged: self.acknowledged.load(Ordering::Relaxed),
            rss_mib: bench::resident_mib().unwrap_or(0.0),
            databases,
        })
    }
}

/// A sample every `every` (the first after one period) until `stop`, and a last one then:
/// the system once it has caught up with the load.
async fn sample_until(
    sampler: Sampler,
    stop: CancellationToken,
    on_sample: impl Fn(&Sample),
) -> anyhow::Result<Vec<Sample>> {
    let started = Instant::now();
    let mut ticks = tokio::time::interval_at((started + sampler.every).into(), sampler.every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut samples = Vec::new();
    loop {
        let last = tokio::select! {
            _ = stop.cancelled() => true,
            _ = ticks.tick() => false,
        };
        let sample = sampler.sample(started).await?;
        on_sample(&sample);
        samples.push(sample);
        if last {
            return Ok(samples);
        }
    }
}

/// Every service's database as it is now.
fn measure_databases(location: &storage::Location) -> anyhow::Result<Vec<Database>> {
    match location {
        storage::Location::Sqlite { dir } => ServiceName::ALL
            .iter()
            .map(|service| sqlite_database(dir, service.as_str()))
            .collect(),
        storage::Location::Postgres { url, schema_prefix } => {
            let mut client = postgres::Client::connect(url, postgres::NoTls)?;
            ServiceName::ALL
                .iter()
                .map(|service| postgres_database(&mut client, schema_prefix, service.as_str()))
                .collect()
        }
    }
}

/// A service's SQLite file, read through a read-only connection of its own (WAL: it blocks
/// no writer).
fn sqlite_database(dir: &Path, service: &str) -> anyhow::Result<Database> {
    let path = dir.join(format!("{service}.db"));
    let size = |p: PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
    let connection =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    connection.busy_timeout(Duration::from_secs(5))?;
    let tables: Vec<String> = connection
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let mut rows = BTreeMap::new();
    for table in tables {
        let count: i64 =
            connection.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |row| {
                row.get(0)
            })?;
        rows.insert(table, count.max(0) as u64);
    }
    Ok(Database {
        service: service.to_owned(),
        bytes: size(path.clone()),
        wal_bytes: size(dir.join(format!("{service}.db-wal"))),
        rows,
    })
}

/// A service's PostgreSQL schema: every table's rows and total size (indexes and TOAST
/// included).
fn postgres_database(
    client: &mut postgres::Client,
    prefix: &str,
    service: &str,
) -> anyhow::Result<Database> {
    let schema = format!("{prefix}{service}");
    let tables = client.query(
        "SELECT tablename, pg_total_relation_size(format('%I.%I', schemaname, tablename)::regclass)
         FROM pg_tables WHERE schemaname = $1",
        &[&schema],
    )?;
    let mut rows = BTreeMap::new();
    let mut bytes = 0;
    for table in tables {
        let name: String = table.get(0);
        let size: i64 = table.get(1);
        bytes += size.max(0) as u64;
        let count: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM \"{schema}\".\"{name}\""),
                &[],
            )?
            .get(0);
        rows.insert(name, count.max(0) as u64);
    }
    Ok(Database {
        service: service.to_owned(),
        bytes,
        wal_bytes: 0,
        rows,
    })
}

/// Writes `soak.json`, the charts and `index.html` under `out`; returns the page's path.
pub fn write(soak: &Soak, out: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
    std::fs::write(out.join("soak.json"), serde_json::to_string_pretty(soak)?)?;
    let charts = charts(soak);
    for (file, _, chart) in &charts {
        std::fs::write(out.join(file), svg::standalone(chart))?;
    }
    let page = out.join("index.html");
    std::fs::write(&page, page_html(soak, &charts))?;
    Ok(page)
}

/// Width of a chart, px.
const WIDE: f64 = 760.0;
/// Height of a chart's plot area, px.
const TALL: f64 = 240.0;

/// Colors of the tables of one service's chart, in turn.
const TABLE_COLORS: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// Each chart: its file name, its caption and its SVG.
fn charts(soak: &Soak) -> Vec<(String, String, String)> {
    let time = || Axis::linear("time since the load started (s)");
    let line = |title: &str, y: Axis, series: Vec<Series>| {
        LineChart {
            title: title.to_owned(),
            x: time(),
            y,
            series,
            width: WIDE,
            height: TALL,
        }
        .render()
    };
    let rss = Series {
        label: "resident set of the whole system".to_owned(),
        color: "#333333".to_owned(),
        dash: None,
        points: soak.samples.iter().map(|s| (s.t_s, s.rss_mib)).collect(),
    };
    let sizes = ServiceName::ALL
        .iter()
        .map(|service| service_series(soak, service.as_str()))
        .collect();
    let mut charts = vec![
        (
            "rss.svg".to_owned(),
            "Resident memory (MiB)".to_owned(),
            line("Resident memory", Axis::from_zero("MiB"), vec![rss]),
        ),
        (
            "database-size.svg".to_owned(),
            "Database size per service, WAL included (MiB)".to_owned(),
            line("Database size", Axis::from_zero("MiB"), sizes),
        ),
    ];
    for service in ServiceName::ALL {
        let title = format!("Rows per table, {service}");
        charts.push((
            format!("rows-{service}.svg"),
            format!("{title} (log scale)"),
            line(
                &title,
                Axis::log("rows"),
                table_series(soak, service.as_str()),
            ),
        ));
    }
    charts
}

/// A service's database size over time, in MiB.
fn service_series(soak: &Soak, service: &str) -> Series {
    Series {
        label: service.to_owned(),
        color: service_color(service).to_owned(),
        dash: None,
        points: soak
            .samples
            .iter()
            .filter_map(|s| {
                let db = s.database(service)?;
                Some((s.t_s, db.total_bytes() as f64 / (1024.0 * 1024.0)))
            })
            .collect(),
    }
}

/// Each of a service's tables' rows over time.
fn table_series(soak: &Soak, service: &str) -> Vec<Series> {
    let tables: Vec<&String> = soak
        .samples
        .last()
        .and_then(|s| s.database(service))
        .map(|db| db.rows.keys().collect())
        .unwrap_or_default();
    tables
        .into_iter()
        .enumerate()
        .map(|(i, table)| Series {
            label: table.clone(),
            color: TABLE_COLORS[i % TABLE_COLORS.len()].to_owned(),
            dash: (i >= TABLE_COLORS.len()).then(|| "6 3".to_owned()),
            points: soak
                .samples
                .iter()
                .filter_map(|s| Some((s.t_s, *s.database(service)?.rows.get(table)? as f64)))
                .collect(),
        })
        .collect()
}

/// A self-contained page: the summary, the checker's verdict and every chart.
fn page_html(soak: &Soak, charts: &[(String, String, String)]) -> String {
    let figures: String = charts
        .iter()
        .map(|(_, caption, chart)| {
            format!(
                "<figure><figcaption>{}</figcaption>\n{chart}\n</figure>\n",
                escape(caption)
            )
        })
        .collect();
    let verdict = if soak.violations.is_empty() {
        "the checker found no violation".to_owned()
    } else {
        format!("the checker found {} violation(s)", soak.violations.len())
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <title>Converge soak</title>\n<style>body {{ font-family: system-ui, sans-serif; \
         margin: 1.5rem; }} figcaption {{ font-weight: 600; }}{}</style>\n</head>\n<body>\n\
         <h1>Converge soak</h1>\n<p><code>{}</code></p>\n<p>{} acknowledged of {} sent; {}.</p>\n\
         <p>{}</p>\n{figures}</body>\n</html>\n",
        svg::STYLE,
        escape(&soak.command),
        soak.acknowledged,
        soak.sent,
        escape(&verdict),
        escape(&soak.summary()),
    )
}
