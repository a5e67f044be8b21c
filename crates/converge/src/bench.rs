//! `converge bench`: each mode under the same seeded, open-loop load, measured end to end.
//!
//! For every Stats delay of the sweep and every mode, a fresh system is started in this
//! process (each service on its own port with its own SQLite file, talking over HTTP as
//! always), its accounts are opened, and then:
//! - the driver offers orders at a constant rate and times each acknowledgement from its
//!   *intended* send time (no coordinated omission);
//! - the probe follows a sample of acknowledged orders and reads each service at increasing
//!   delays (t-visibility), and reads the probe accounts' Stats (k-staleness);
//! - a sampler records resident memory and the Stats backlog every second;
//! - once the load stops: the time until every service agreed, each service's apply-lag
//!   histogram (from `/metrics`), and the checker's verdict.
//!
//! Everything ends up in one [`report::Report`]: a table on the terminal, `report.json` and a
//! self-contained `index.html`.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use contracts::api::{Progress, Totals};
use indicatif::{ProgressBar, ProgressStyle};
use loadgen::driver::{Driver, LoadConfig};
use loadgen::probe::{Probe, ProbeConfig};
use loadgen::stats;
use loadgen::workload::{Client, OpenedAccounts, Workload};
use report::model::{self as rm, Report, Run};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::settings::{BenchMode, Rate};
use crate::system::{System, SystemConfig};

/// How long a run may take to agree after the load stops before the bench gives up on it.
pub(crate) const QUIET_TIMEOUT: Duration = Duration::from_secs(120);

/// Acknowledged orders the checker looks up one by one ("no order lost"); the rest are
/// covered by the per-account audit. Bounded so that checking stays quick at any rate.
pub(crate) const CHECKED_ACKS_MAX: usize = 2_000;

/// Everything a bench needs to know; built from `converge bench` or `converge demo`.
#[derive(Debug, Clone)]
pub struct Plan {
    pub command: String,
    pub modes: Vec<BenchMode>,
    pub rate: Rate,
    pub connections: usize,
    pub duration: Duration,
    pub accounts: usize,
    pub seed: u64,
    pub stats_delays_ms: Vec<u64>,
    pub probe_per_s: u32,
    pub cron_interval: Duration,
    pub call_timeout: Duration,
    pub network_delay: Duration,
    /// Processing delays of the services; Stats' is replaced by each delay of the sweep.
    pub delays: crate::system::Delays,
    /// The database and transport pairs to run on; the floor and the baseline run once per
    /// database.
    pub backends: Vec<Backends>,
}

/// Which database and which transport a run is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backends {
    pub store: Store,
    pub transport: Transport,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    /// A schema prefix of its own for each run, at this URL.
    Postgres {
        url: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Embedded,
    /// Streams of their own for each run, at this URL.
    Nats {
        url: String,
    },
}

impl Backends {
    /// SQLite and the embedded transport: what needs no server.
    pub fn embedded() -> Self {
        Self {
            store: Store::Sqlite,
            transport: Transport::Embedded,
        }
    }

    pub fn store_name(&self) -> &'static str {
        match self.store {
            Store::Sqlite => "sqlite",
            Store::Postgres { .. } => "postgres",
        }
    }

    pub fn transport_name(&self) -> &'static str {
        match self.transport {
            Transport::Embedded => "embedded",
            Transport::Nats { .. } => "nats",
        }
    }

    /// `sqlite+embedded`; the floor and the baseline, which have no transport, go by their
    /// database alone.
    pub fn label(&self, mode: BenchMode) -> String {
        match mode.mode() {
            None => self.store_name().to_owned(),
            Some(_) => format!("{}+{}", self.store_name(), self.transport_name()),
        }
    }

    /// Where a run's data goes, and a prefix nothing else uses (schemas, streams).
    pub(crate) fn location(&self, dir: &Path, prefix: &str) -> storage::Location {
        match &self.store {
            Store::Sqlite => storage::Location::Sqlite {
                dir: dir.to_owned(),
            },
            Store::Postgres { url } => storage::Location::Postgres {
                url: url.clone(),
                schema_prefix: format!("{prefix}_"),
            },
        }
    }

    pub(crate) fn transport(&self, prefix: &str) -> runtime::Transport {
        match &self.transport {
            Transport::Embedded => runtime::Transport::Embedded,
            Transport::Nats { url } => runtime::Transport::Nats {
                url: url.clone(),
                prefix: prefix.to_owned(),
            },
        }
    }
}

/// Runs the plan and returns the report. `progress` shows each run as it goes.
pub async fn run(plan: &Plan) -> anyhow::Result<Report> {
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut runs: Vec<Run> = Vec::new();
    for backends in &plan.backends {
        for &stats_delay_ms in &plan.stats_delays_ms {
            for &mode in &plan.modes {
                // The floor and the baseline have no Stats and no transport: measure each once
                // per database.
                let label = backends.label(mode);
                if mode.mode().is_none()
                    && runs
                        .iter()
                        .any(|r| r.mode == mode.name() && r.backends == label)
                {
                    continue;
                }
                runs.push(run_one(plan, mode, stats_delay_ms, backends).await?);
            }
        }
    }
    add_baseline_ratios(&mut runs);
    Ok(Report {
        command: plan.command.clone(),
        started_at,
        machine: rm::Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        },
        settings: rm::Settings {
            rate: match plan.rate {
                Rate::PerSecond(r) => Some(r),
                Rate::Max => None,
            },
            connections: plan.connections,
            duration_s: plan.duration.as_secs_f64(),
            accounts: plan.accounts,
            seed: plan.seed,
            cron_interval_ms: plan.cron_interval.as_millis() as u64,
            stats_delays_ms: plan.stats_delays_ms.clone(),
        },
        runs,
    })
}

/// Writes `report.json` and `index.html` under `out`; returns the page's path.
pub fn write(report: &Report, out: &Path) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(report)?,
    )?;
    let page = out.join("index.html");
    std::fs::write(&page, report::html::render(report))?;
    Ok(page)
}

/// The system under load: a whole Converge system, or the baseline or floor endpoint. Each
/// leaves nothing behind on a shared server when stopped (its schemas and streams go).
enum Target {
    System(System, Box<SystemConfig>),
    Endpoint {
        shutdown: CancellationToken,
        running: tokio::task::JoinHandle<anyhow::Result<()>>,
        location: storage::Location,
    },
}

impl Target {
    async fn start(
        plan: &Plan,
        mode: BenchMode,
        stats_delay_ms: u64,
        dir: &Path,
        backends: &Backends,
    ) -> anyhow::Result<(Self, String)> {
        let prefix = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let location = backends.location(dir, &prefix);
        let Some(mode_of_system) = mode.mode() else {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let url = format!("http://{}", listener.local_addr()?);
            let shutdown = CancellationToken::new();
            let running = if mode == BenchMode::Floor {
                let (location, shutdown) = (location.clone(), shutdown.clone());
                tokio::spawn(
                    async move { crate::floor::serve(&location, listener, shutdown).await },
                )
            } else {
                let app = crate::baseline::build(&location, listener, shutdown.clone()).await?;
                tokio::spawn(app.run_until_stopped())
            };
            let target = Target::Endpoint {
                shutdown,
                running,
                location,
            };
            return Ok((target, url));
        };
        let mut config = SystemConfig::new(mode_of_system, location);
        config.transport = backends.transport(&prefix);
        config.cron_interval = plan.cron_interval;
        config.call_timeout = plan.call_timeout;
        config.network_delay = plan.network_delay;
        config.delays = plan.delays;
        config.delays.stats = Duration::from_millis(stats_delay_ms);
        let system = System::start(config.clone()).await?;
        let url = system.url.clone();
        Ok((Target::System(system, Box::new(config)), url))
    }

    async fn stop(self) -> anyhow::Result<()> {
        match self {
            Target::System(system, config) => {
                system.stop().await?;
                clean_up(&config.location, &config.transport).await
            }
            Target::Endpoint {
                shutdown,
                running,
                location,
            } => {
                shutdown.cancel();
                running.await??;
                clean_up(&location, &runtime::Transport::Embedded).await
            }
        }
    }
}

/// Drops a run's PostgreSQL schemas and NATS streams: a bench leaves nothing on the servers.
pub(crate) async fn clean_up(
    location: &storage::Location,
    transport: &runtime::Transport,
) -> anyhow::Result<()> {
    if let storage::Location::Postgres { url, schema_prefix } = location {
        let (url, prefix) = (url.clone(), schema_prefix.clone());
        tokio::task::spawn_blocking(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls)?;
            for name in [
                "account", "order", "payment", "loyalty", "stats", "baseline", "floor",
            ] {
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{prefix}{name}\" CASCADE"))?;
            }
            Ok::<_, anyhow::Error>(())
        })
        .await??;
    }
    if let runtime::Transport::Nats { url, prefix } = transport {
        let jetstream = async_nats::jetstream::new(async_nats::connect(url.as_str()).await?);
        for producer in ["order", "payment"] {
            let _ = jetstream
                .delete_stream(format!("{prefix}_{producer}").to_ascii_uppercase())
                .await;
        }
    }
    Ok(())
}

/// What the sampler saw in one second.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    rss_mib: f64,
    stats_backlog: f64,
}

async fn run_one(
    plan: &Plan,
    mode: BenchMode,
    stats_delay_ms: u64,
    backends: &Backends,
) -> anyhow::Result<Run> {
    let system = mode.mode().is_some();
    let mut label = mode.name().to_owned();
    if plan.backends.len() > 1 {
        label = format!("{label} ({})", backends.label(mode));
    }
    if plan.stats_delays_ms.len() > 1 && system {
        label = format!("{label}, stats {stats_delay_ms} ms");
    }
    let bar = progress_bar(plan, &label);
    let dir = tempfile::tempdir()?;
    let (target, url) = Target::start(plan, mode, stats_delay_ms, dir.path(), backends).await?;
    let client = Client::new(&url);

    let expected = match plan.rate {
        Rate::PerSecond(rate) => (rate as f64 * plan.duration.as_secs_f64()).ceil() as u64,
        // A generous bound: probe accounts are funded for twice their share of it.
        Rate::Max => (50_000.0 * plan.duration.as_secs_f64()) as u64,
    };
    let workload = Workload::timed(plan.seed, plan.accounts, expected.max(1));
    bar.set_message(format!("{label}: opening accounts"));
    let opened = if !system {
        // The baseline and the floor know no accounts: any well-formed id will do.
        OpenedAccounts {
            accounts: (0..workload.accounts.len())
                .map(|_| contracts::ids::AccountId::generate().to_string())
                .collect(),
            probes: (0..workload.probe_accounts.len())
                .map(|_| contracts::ids::AccountId::generate().to_string())
                .collect(),
        }
    } else {
        workload.open(&client).await?
    };

    bar.set_message(label.clone());
    let probe = system.then(|| {
        Probe::start(
            client.clone(),
            ProbeConfig {
                samples_per_s: plan.probe_per_s,
                probe_accounts: opened.probes.clone(),
                ..Default::default()
            },
        )
    });
    let observer = probe.as_ref().map(Probe::observer);
    let checked = Arc::new(Mutex::new(Vec::with_capacity(CHECKED_ACKS_MAX)));
    let checked_sink = checked.clone();
    let done = Arc::new(AtomicU64::new(0));
    let driver = Driver::new(
        client.clone(),
        LoadConfig {
            rate: match plan.rate {
                Rate::PerSecond(r) => Some(r),
                Rate::Max => None,
            },
            connections: plan.connections,
            duration: plan.duration,
        },
    )
    .progress(done.clone())
    .on_ack(move |ack| {
        if let Some(observer) = &observer {
            observer.observe(ack);
        }
        let mut checked = checked_sink.lock().expect("never poisoned");
        if checked.len() < CHECKED_ACKS_MAX {
            checked.push((ack.order_id.clone(), ack.account_id.clone()));
        }
    });

    let sampling = CancellationToken::new();
    let sampler = tokio::spawn(sample_every_second(
        client.clone(),
        sampling.clone(),
        system,
    ));
    let ticker = {
        let (bar, done) = (bar.clone(), done.clone());
        tokio::spawn(async move {
            loop {
                bar.set_position(done.load(Ordering::Relaxed));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let requests_opened = opened.clone();
    let requests_workload = workload.clone();
    let load = driver
        .run(move |i| {
            let order = requests_workload.order_at(i);
            (requests_opened.request(&order), order.idempotency_key)
        })
        .await;
    let last_ack = Instant::now();
    // The probe samples what the load acknowledged: stop sampling (and reading k) with it,
    // so that reads made while the system catches up do not dilute the figures.
    if let Some(probe) = &probe {
        probe.stop();
    }
    ticker.abort();
    bar.set_position(done.load(Ordering::Relaxed));

    let mut converged_after_ms = 0.0;
    if system {
        bar.set_message(format!("{label}: waiting to agree"));
        crate::demo::wait_quiet(&client, QUIET_TIMEOUT).await?;
        converged_after_ms = last_ack.elapsed().as_secs_f64() * 1_000.0;
    }
    sampling.cancel();
    let samples = sampler.await?;
    let visibility = match probe {
        Some(probe) => {
            bar.set_message(format!("{label}: finishing the probe"));
            Some(probe.finish().await)
        }
        None => None,
    };

    let (apply_lag, violations, cancelled) = if !system {
        (Vec::new(), Vec::new(), 0)
    } else {
        bar.set_message(format!("{label}: checking"));
        let metrics = client
            .http()
            .get(format!("{url}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        let options = checker::CheckOptions {
            acknowledged: checked.lock().expect("never poisoned").clone(),
            ..Default::default()
        };
        let report = checker::check(client.http(), client.base(), &options).await?;
        let totals: Totals = client.get("/stats").await?;
        (
            apply_lags(&metrics),
            report.violations.iter().map(ToString::to_string).collect(),
            load.acknowledged
                .saturating_sub(totals.orders.max(0) as u64),
        )
    };
    target.stop().await?;
    bar.finish_and_clear();

    let ack = stats::percentiles(&load.histogram);
    let (k_mean, k_p99, k_max) = visibility
        .as_ref()
        .map_or((0.0, 0, 0), |v| stats::k_staleness_summary(&v.k));
    Ok(Run {
        mode: mode.name().to_owned(),
        backends: backends.label(mode),
        stats_delay_ms,
        offered_rate: match plan.rate {
            Rate::PerSecond(r) => Some(r),
            Rate::Max => None,
        },
        achieved_rate: load.throughput(),
        sent: load.sent,
        acknowledged: load.acknowledged,
        refused: load.refused,
        failed: load.failed,
        cancelled,
        ack_latency: percentiles(&ack, load.histogram.len()),
        ack_latency_cdf: stats::cdf(&load.histogram),
        ratio_to_baseline: None,
        apply_lag,
        visibility: visibility
            .as_ref()
            .map(|v| rm::Visibility {
                delays_ms: v.delays_ms.clone(),
                curves: v
                    .curves
                    .iter()
                    .map(|(service, probability)| rm::VisibilityCurve {
                        service: service.clone(),
                        probability: probability.clone(),
                    })
                    .collect(),
                samples: v.samples,
            })
            .unwrap_or_default(),
        k_staleness: rm::KStaleness {
            reads: visibility.as_ref().map_or(0, |v| v.k.len() as u64),
            mean: k_mean,
            p99: k_p99 as f64,
            max: k_max as f64,
        },
        timeline: load
            .timeline
            .iter()
            .enumerate()
            .map(|(t, second)| {
                let sample = samples.get(t).copied().unwrap_or_default();
                rm::TimelinePoint {
                    t_s: t as f64,
                    acknowledged_per_s: second.acknowledged as f64,
                    ack_p99_ms: second.p99_us as f64 / 1_000.0,
                    stats_backlog: sample.stats_backlog,
                    rss_mib: sample.rss_mib,
                }
            })
            .collect(),
        converged_after_ms,
        violations,
        rss_mib: rm::MemoryUse {
            max: samples.iter().map(|s| s.rss_mib).fold(0.0, f64::max),
            start: samples.first().map_or(0.0, |s| s.rss_mib),
            end: samples.last().map_or(0.0, |s| s.rss_mib),
        },
    })
}

fn percentiles(p: &stats::Percentiles, count: u64) -> rm::Percentiles {
    rm::Percentiles {
        count,
        mean: p.mean_ms,
        p50: p.p50_ms,
        p90: p.p90_ms,
        p99: p.p99_ms,
        p999: p.p999_ms,
        max: p.max_ms,
    }
}

/// Each service's apply lag, from the Prometheus histograms the gateway merges at `/metrics`
/// (in seconds, Prometheus' base unit; reported in milliseconds).
fn apply_lags(metrics: &str) -> Vec<rm::ServiceLag> {
    const METRIC: &str = "converge_apply_lag_seconds";
    stats::prometheus_services(metrics, METRIC)
        .into_iter()
        .filter_map(|service| {
            let mut histogram = stats::prometheus_histogram(metrics, METRIC, &service)?;
            if histogram.count == 0 {
                return None;
            }
            histogram.sum *= 1_000.0;
            histogram
                .buckets
                .iter_mut()
                .for_each(|(le, _)| *le *= 1_000.0);
            let max_ms =
                1_000.0 * max_gauge_of(metrics, "converge_apply_lag_max_seconds", &service);
            // Interpolating inside a bucket can land above the exact maximum (strong mode's
            // lags are all 0, yet the first bucket is [0, 0.5]): never report more than it.
            let at = |q| stats::bucket_percentile(&histogram.buckets, q).min(max_ms);
            let finite: Vec<(f64, u64)> = histogram
                .buckets
                .iter()
                .copied()
                .filter(|(le, _)| le.is_finite())
                .collect();
            Some(rm::ServiceLag {
                lag: rm::Percentiles {
                    count: histogram.count,
                    mean: histogram.sum / histogram.count as f64,
                    p50: at(0.50),
                    p90: at(0.90),
                    p99: at(0.99),
                    p999: at(0.999),
                    max: max_ms,
                },
                max_ms,
                cdf: finite
                    .iter()
                    .map(|(le, count)| (*le, *count as f64 / histogram.count as f64))
                    .collect(),
                service,
            })
        })
        .collect()
}

/// The value of a per-service gauge in a Prometheus text exposition.
fn max_gauge_of(text: &str, name: &str, service: &str) -> f64 {
    let label = format!("service=\"{service}\"");
    text.lines()
        .filter(|line| {
            line.starts_with(name) && line[name.len()..].starts_with('{') && line.contains(&label)
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, f64::max)
}

/// Every second until cancelled: resident memory of this process and how many events Stats
/// has still to read from the Order feed.
async fn sample_every_second(
    client: Client,
    stop: CancellationToken,
    backlog: bool,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return samples,
            _ = ticks.tick() => {}
        }
        let stats_backlog = if backlog {
            stats_backlog(&client).await.unwrap_or(0.0)
        } else {
            0.0
        };
        samples.push(Sample {
            rss_mib: resident_mib().unwrap_or(0.0),
            stats_backlog,
        });
    }
}

/// Events in the Order feed that Stats has not applied yet (strong mode: in-doubt entries).
async fn stats_backlog(client: &Client) -> anyhow::Result<f64> {
    let progress: Progress = client.get("/progress").await?;
    let head = progress
        .services
        .get("order")
        .and_then(|s| s.outbox_head)
        .unwrap_or_default();
    let stats = progress.services.get("stats");
    let position = stats
        .and_then(|s| s.consumers.get("order").map(|c| c.position))
        .unwrap_or_default();
    let in_doubt = stats.map_or(0, |s| s.in_doubt);
    // Outbox sequences count events (on PostgreSQL, up to the gaps rolled-back transactions
    // leave): close enough for a backlog over time.
    Ok(((head.seq - position.seq).max(0) + in_doubt) as f64)
}

/// This process's resident memory (`VmRSS`), in MiB; `None` where `/proc` is not there.
pub fn resident_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Every run's latency as a multiple of the baseline's on the same database.
fn add_baseline_ratios(runs: &mut [Run]) {
    let baselines: Vec<(String, f64, f64)> = runs
        .iter()
        .filter(|r| r.mode == "baseline")
        .map(|r| (r.backends.clone(), r.ack_latency.p50, r.ack_latency.p99))
        .collect();
    for run in runs.iter_mut() {
        let store = run.backends.split('+').next().unwrap_or_default();
        let Some((_, p50, p99)) = baselines.iter().find(|(b, _, _)| b == store) else {
            continue;
        };
        if *p50 <= 0.0 || *p99 <= 0.0 {
            continue;
        }
        run.ratio_to_baseline = Some(rm::Ratio {
            p50: run.ack_latency.p50 / p50,
            p99: run.ack_latency.p99 / p99,
        });
    }
}

fn progress_bar(plan: &Plan, label: &str) -> ProgressBar {
    let bar = match plan.rate {
        Rate::PerSecond(rate) => {
            ProgressBar::new((rate as f64 * plan.duration.as_secs_f64()).round() as u64)
        }
        Rate::Max => ProgressBar::new_spinner(),
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg:<32} [{bar:30}] {pos}/{len} orders ({elapsed})",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_message(label.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}
