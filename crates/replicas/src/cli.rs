//! `converge replicas …`: the clap types and [`run`]. The `converge` binary wires one
//! `Replicas(replicas::Args)` subcommand to [`run`]; everything else is here. Every setting is
//! a flag and an environment variable; `converge replicas <command> --help` prints these doc
//! comments.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args as ClapArgs, Subcommand};

use crate::bench::{self, BenchConfig};
use crate::cluster::{Cluster, ClusterOptions, OwnedCluster, PgBin, STREAMING_WAIT, StopMode};
use crate::db::connect;
use crate::policy::Policy;
use crate::render;
use crate::session::{ReadFrom, ReadPolicy};

/// Replicated database nodes: a local PostgreSQL primary with hot standbys, and the bench
/// that measures what each replication policy costs the writer and shows the reader.
#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a primary and N hot standbys from the installed PostgreSQL (initdb,
    /// pg_basebackup -R, pg_ctl) in a directory of their own, and print their URLs. Run again,
    /// it restarts the nodes of an existing directory.
    Up(UpArgs),
    /// Show each node (running or not) and how each standby replicates; exit status 1 unless
    /// every node runs and every standby streams.
    Status(DirArgs),
    /// Stop every node of the cluster.
    Down(DownArgs),
    /// Measure each replication policy: commit latency, what reads on each standby see
    /// (measured and predicted), session guarantees, and a standby stopped under load.
    Bench(BenchArgs),
}

/// Where the cluster lives.
#[derive(Debug, Clone, ClapArgs)]
pub struct DirArgs {
    /// The cluster's directory (data directories, logs, cluster.json).
    #[arg(long, env = "CONVERGE_REPLICAS_DIR", default_value = crate::cluster::DEFAULT_DIR)]
    pub dir: PathBuf,
}

/// Where PostgreSQL's server programs are.
#[derive(Debug, Clone, ClapArgs)]
pub struct PgBinArgs {
    /// Directory of initdb, pg_ctl, pg_basebackup and postgres. Default: `pg_config --bindir`,
    /// else the newest /usr/lib/postgresql/*/bin, else the PATH.
    #[arg(long, env = "CONVERGE_PG_BIN")]
    pub pg_bin: Option<PathBuf>,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct UpArgs {
    /// Hot standbys to start beside the primary.
    #[arg(long, env = "CONVERGE_REPLICAS_COUNT", default_value_t = 2)]
    pub count: usize,
    #[command(flatten)]
    pub dir: DirArgs,
    /// The primary's port on 127.0.0.1; the standbys take the next ones. Default: free ports.
    #[arg(long, env = "CONVERGE_REPLICAS_PORT")]
    pub port: Option<u16>,
    #[command(flatten)]
    pub pg_bin: PgBinArgs,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct DownArgs {
    #[command(flatten)]
    pub dir: DirArgs,
    /// Also delete the directory (every node's data).
    #[arg(long, env = "CONVERGE_REPLICAS_REMOVE")]
    pub remove: bool,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct BenchArgs {
    /// Replication policies to run, in order: async, sync (every standby applies each commit),
    /// first (the first connected standby does), quorum (any one does).
    #[arg(
        long,
        env = "CONVERGE_REPLICAS_POLICIES",
        value_delimiter = ',',
        default_value = "async,sync,quorum"
    )]
    pub policies: Vec<Policy>,
    /// Writes offered per second (open loop: latency counts from each write's intended time).
    #[arg(long, env = "CONVERGE_REPLICAS_RATE", default_value_t = 200.0)]
    pub rate: f64,
    /// Length of each policy's steady run, seconds.
    #[arg(long, env = "CONVERGE_REPLICAS_DURATION_S", default_value_t = 10.0)]
    pub duration_s: f64,
    /// Hot standbys of the bench's own cluster (ignored with --cluster-dir).
    #[arg(long, env = "CONVERGE_REPLICAS_STANDBYS", default_value_t = 2)]
    pub standbys: usize,
    /// Accounts whose counters the workload increments (Stats' totals per account).
    #[arg(long, env = "CONVERGE_REPLICAS_ACCOUNTS", default_value_t = 64)]
    pub accounts: u32,
    /// Seed of the workload (which account, what amount): the same writes for every policy.
    #[arg(long, env = "CONVERGE_REPLICAS_SEED", default_value_t = 42)]
    pub seed: u64,
    /// Connections committing the workload on the primary (its concurrency).
    #[arg(long, env = "CONVERGE_REPLICAS_WRITERS", default_value_t = 8)]
    pub writers: usize,
    /// Writes per second the probe follows on every standby (reads at 0, 1, 2, 5, … ms).
    #[arg(long, env = "CONVERGE_REPLICAS_PROBE_PER_S", default_value_t = 50.0)]
    pub probe_per_s: f64,
    /// Probe connections per standby.
    #[arg(long, env = "CONVERGE_REPLICAS_PROBE_CONNECTIONS", default_value_t = 4)]
    pub probe_connections: usize,
    /// Sessions per guarantee setting (without, with): each writes its own counter and reads
    /// it back from the standbys in turn.
    #[arg(long, env = "CONVERGE_REPLICAS_SESSIONS", default_value_t = 3)]
    pub sessions: usize,
    /// A session's pause between rounds, ms (keeps the sessions' own load small).
    #[arg(long, env = "CONVERGE_REPLICAS_SESSION_PAUSE_MS", default_value_t = 50)]
    pub session_pause_ms: u64,
    /// With guarantees, the longest a read waits for its standby to catch up before it goes
    /// to the primary, ms.
    #[arg(long, env = "CONVERGE_REPLICAS_WAIT_MAX_MS", default_value_t = 50)]
    pub wait_max_ms: u64,
    /// Where sessions' reads go: replicas (the primary only when a guarantee cannot be met in
    /// time), any (replicas and primary in turn), primary (always: never stale).
    #[arg(long, env = "CONVERGE_REPLICAS_READ_FROM", value_enum, default_value_t = ReadFromArg::Replicas)]
    pub read_from: ReadFromArg,
    /// With guarantees, how often a waiting read asks its standby again, ms.
    #[arg(long, env = "CONVERGE_REPLICAS_POLL_INTERVAL_MS", default_value_t = 1)]
    pub poll_interval_ms: u64,
    /// The writers' bound on a commit, ms: past it the query is cancelled (the commit stays
    /// on the primary, unconfirmed) and the write counts as timed out.
    #[arg(
        long,
        env = "CONVERGE_REPLICAS_COMMIT_TIMEOUT_MS",
        default_value_t = 1000
    )]
    pub commit_timeout_ms: u64,
    /// How often each node's WAL position is sampled, ms (apply lag, staleness, PBS's W).
    #[arg(long, env = "CONVERGE_REPLICAS_WATCH_INTERVAL_MS", default_value_t = 1)]
    pub watch_interval_ms: u64,
    /// Length of each policy's drill (the first standby stopped at a third, restarted at two
    /// thirds), seconds; 0: no drill.
    #[arg(long, env = "CONVERGE_REPLICAS_DRILL_S", default_value_t = 9.0)]
    pub drill_s: f64,
    /// Where report.json and index.html go.
    #[arg(
        long,
        env = "CONVERGE_REPLICAS_OUT",
        default_value = "./converge-replicas-report"
    )]
    pub out: PathBuf,
    /// Run on the running cluster in this directory (`converge replicas up`) instead of a
    /// fresh one of the bench's own. Its policy is left asynchronous afterwards.
    #[arg(long, env = "CONVERGE_REPLICAS_CLUSTER_DIR")]
    pub cluster_dir: Option<PathBuf>,
    #[command(flatten)]
    pub pg_bin: PgBinArgs,
}

/// [`ReadFrom`] on the command line (the decisions stay free of clap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadFromArg {
    Replicas,
    Any,
    Primary,
}

impl From<ReadFromArg> for ReadFrom {
    fn from(arg: ReadFromArg) -> Self {
        match arg {
            ReadFromArg::Replicas => ReadFrom::Replicas,
            ReadFromArg::Any => ReadFrom::Any,
            ReadFromArg::Primary => ReadFrom::Primary,
        }
    }
}

impl BenchArgs {
    /// The bench's configuration.
    pub fn config(&self) -> anyhow::Result<BenchConfig> {
        anyhow::ensure!(
            self.rate > 0.0 && self.rate.is_finite(),
            "--rate must be positive"
        );
        anyhow::ensure!(self.duration_s > 0.0, "--duration-s must be positive");
        anyhow::ensure!(!self.policies.is_empty(), "--policies names none");
        let ms = Duration::from_millis;
        Ok(BenchConfig {
            policies: self.policies.clone(),
            rate: self.rate,
            duration: Duration::from_secs_f64(self.duration_s),
            accounts: self.accounts.max(1),
            seed: self.seed,
            writers: self.writers.max(1),
            probe_per_s: self.probe_per_s,
            probe_connections: self.probe_connections.max(1),
            sessions: self.sessions,
            session_pause: ms(self.session_pause_ms),
            read_policy: ReadPolicy {
                from: self.read_from.into(),
                wait_max: ms(self.wait_max_ms),
                poll_interval: ms(self.poll_interval_ms.max(1)),
            },
            commit_timeout: ms(self.commit_timeout_ms.max(1)),
            watch_interval: ms(self.watch_interval_ms.max(1)),
            drill: Duration::from_secs_f64(self.drill_s.max(0.0)),
        })
    }
}

/// Runs a `converge replicas` command.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Up(a) => up(a).await,
        Command::Status(a) => status(&a.dir).await,
        Command::Down(a) => down(a).await,
        Command::Bench(a) => bench(a).await,
    }
}

/// Runs blocking cluster work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::cluster::ClusterError> + Send + 'static,
) -> anyhow::Result<T> {
    Ok(tokio::task::spawn_blocking(f).await??)
}

async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let dir = args.dir.dir.clone();
    let cluster = if Cluster::exists(&dir) {
        let cluster = Cluster::load(&dir)?;
        anyhow::ensure!(
            cluster.standbys().len() == args.count,
            crate::cluster::ClusterError::CountMismatch {
                dir: dir.clone(),
                has: cluster.standbys().len(),
                asked: args.count,
            }
        );
        let c = cluster.clone();
        blocking(move || c.start()).await?;
        cluster
    } else {
        let bin = PgBin::find(args.pg_bin.pg_bin.as_deref())?;
        let options = ClusterOptions {
            dir: dir.clone(),
            standbys: args.count,
            port: args.port,
            bin,
            sync_files: true,
        };
        match blocking(move || Cluster::create(&options)).await {
            Ok(cluster) => cluster,
            Err(e) => {
                // Leave nothing running from a half-made cluster; its directory stays for a look.
                if let Ok(c) = Cluster::load(&dir) {
                    let _ = blocking(move || c.stop(StopMode::Immediate)).await;
                }
                return Err(e.context(format!("starting a cluster in {}", dir.display())));
            }
        }
    };
    cluster.wait_streaming(STREAMING_WAIT).await?;
    print_urls(&cluster);
    Ok(ExitCode::SUCCESS)
}

fn print_urls(cluster: &Cluster) {
    let version = cluster
        .bin
        .version()
        .unwrap_or_else(|_| "PostgreSQL".to_string());
    let n = cluster.standbys().len();
    println!(
        "a primary and {n} hot standby{} in {} ({version}), on 127.0.0.1 only\n",
        if n == 1 { "" } else { "s" },
        cluster.dir.display()
    );
    for (i, node) in cluster.nodes.iter().enumerate() {
        let name = match node.role {
            crate::cluster::Role::Primary => String::new(),
            crate::cluster::Role::Standby => format!("  (application_name {})", node.name),
        };
        println!("{:<10} {}{name}", node.name, cluster.url(i));
    }
    let names = cluster.standby_names();
    if !names.is_empty() {
        println!(
            "\napplication_names for synchronous_standby_names: {}\n  e.g. '{}' (every one), '{}' (any one)",
            names.join(", "),
            Policy::Sync.standby_names(&names),
            Policy::Quorum.standby_names(&names),
        );
    }
    let replicas: Vec<String> = (1..cluster.nodes.len()).map(|i| cluster.url(i)).collect();
    println!("\nCONVERGE_REPLICAS_PRIMARY_URL={}", cluster.url(0));
    println!("CONVERGE_REPLICAS_URLS={}", replicas.join(","));
    println!(
        "\nstop them: converge replicas down --dir {}",
        cluster.dir.display()
    );
}

async fn status(dir: &Path) -> anyhow::Result<ExitCode> {
    let cluster = Cluster::load(dir)?;
    let c = cluster.clone();
    let running = blocking(move || (0..c.nodes.len()).map(|i| c.is_running(i)).collect()).await?;
    let running: Vec<bool> = running;
    println!("{}", cluster.dir.display());
    for (i, node) in cluster.nodes.iter().enumerate() {
        let state = if running[i] { "running" } else { "stopped" };
        println!(
            "{:<10} {:<8} {:<8} {}",
            node.name,
            format!("{:?}", node.role).to_lowercase(),
            state,
            cluster.url(i)
        );
    }
    let mut healthy = running.iter().all(|r| *r);
    if running[0] {
        let primary = connect(&cluster.conninfo(0))
            .await
            .context("connecting to the primary")?;
        let names: String = primary
            .query_one("SHOW synchronous_standby_names", &[])
            .await?
            .get(0);
        let commit: String = primary
            .query_one("SHOW synchronous_commit", &[])
            .await?
            .get(0);
        println!("\npolicy: synchronous_standby_names = '{names}', synchronous_commit = {commit}");
        let rows = primary
            .query(
                "SELECT application_name, state, sync_state,
                        COALESCE((EXTRACT(epoch FROM replay_lag) * 1000)::float8, 0),
                        COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::float8
                 FROM pg_stat_replication ORDER BY application_name",
                &[],
            )
            .await?;
        for name in cluster.standby_names() {
            match rows.iter().find(|r| r.get::<_, String>(0) == name) {
                Some(r) => println!(
                    "{name:<10} {} ({}), replay lag {}, {} behind",
                    r.get::<_, String>(1),
                    r.get::<_, String>(2),
                    report::figures::duration_ms(r.get(3)),
                    render::bytes(r.get(4)),
                ),
                None => {
                    healthy = false;
                    println!("{name:<10} not streaming");
                }
            }
        }
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn down(args: DownArgs) -> anyhow::Result<ExitCode> {
    let cluster = Cluster::load(&args.dir.dir)?;
    let c = cluster.clone();
    blocking(move || c.stop(StopMode::Fast)).await?;
    println!(
        "stopped {} nodes in {}",
        cluster.nodes.len(),
        cluster.dir.display()
    );
    if args.remove {
        std::fs::remove_dir_all(&cluster.dir)
            .with_context(|| format!("removing {}", cluster.dir.display()))?;
        println!("removed {}", cluster.dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// After an interrupted bench on a cluster started with `up`: every node started again (a drill
/// may have stopped one) and the policy back to asynchronous (a synchronous one would make the
/// next user's commits wait for a standby they stop). Best effort: it says what failed.
async fn restore(cluster: &Cluster) {
    let c = cluster.clone();
    if let Err(e) = blocking(move || c.start()).await {
        eprintln!("restarting the nodes: {e:#}");
    }
    let restored = async {
        cluster.wait_streaming(STREAMING_WAIT).await?;
        let primary = connect(&cluster.conninfo(0)).await?;
        crate::policy::apply(&primary, Policy::Async, &cluster.standby_names()).await?;
        anyhow::Ok(())
    };
    if let Err(e) = restored.await {
        eprintln!("setting the policy back to async: {e:#}");
    }
}

async fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let config = args.config()?;
    // Exactly one of the two holds the cluster; an owned one is stopped when dropped.
    let (mut loaded, mut owned) = (None, None);
    let cluster: &Cluster = match &args.cluster_dir {
        Some(dir) => {
            let cluster = Cluster::load(dir)?;
            let c = cluster.clone();
            blocking(move || c.start()).await?;
            loaded.insert(cluster)
        }
        None => {
            let bin = PgBin::find(args.pg_bin.pg_bin.as_deref())?;
            let standbys = args.standbys.max(1);
            eprintln!("starting a primary and {standbys} standbys of the bench's own");
            // Files unsynced at creation: the cluster is thrown away; commits still fsync.
            let cluster = blocking(move || OwnedCluster::temporary(bin, standbys, false)).await?;
            owned.insert(cluster)
        }
    };
    anyhow::ensure!(!cluster.standbys().is_empty(), "the cluster has no standby");
    cluster.wait_streaming(STREAMING_WAIT).await?;
    let machine = format!(
        "{}, {} cores",
        cluster
            .bin
            .version()
            .unwrap_or_else(|_| "PostgreSQL".to_string()),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let measure = bench::run(cluster, &config, command, machine, |s| eprintln!("{s}"));
    // Ctrl-C ends the bench through here, so that a cluster of its own is stopped (dropped)
    // rather than left running in a temporary directory.
    let report = tokio::select! {
        report = measure => report?,
        _ = tokio::signal::ctrl_c() => {
            if args.cluster_dir.is_some() {
                restore(cluster).await;
            }
            anyhow::bail!("interrupted");
        }
    };
    drop(loaded);
    drop(owned);
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(
        args.out.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(args.out.join("index.html"), render::html(&report))?;
    for (name, svg) in render::svg_files(&report) {
        std::fs::write(args.out.join(name), svg)?;
    }
    print!("{}", render::table(&report));
    println!("\nreport: {}", args.out.join("index.html").display());
    let clean = report
        .policies
        .iter()
        .all(|p| p.lost.nothing_lost() && p.drill.as_ref().is_none_or(|d| d.lost.nothing_lost()));
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
