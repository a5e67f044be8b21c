//! Every setting is a flag and an environment variable, with a default that runs on a fresh
//! machine. `converge <command> --help` prints this file's doc comments.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use contracts::{Mode, ServiceName};

use crate::system::{Delays, SystemConfig};

#[derive(Debug, Parser)]
#[command(
    name = "converge",
    version,
    about = "Five food-ordering services under strong, queue and cron consistency, side by side."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the system: all five services and the user-facing address, or one service.
    Serve(Box<ServeArgs>),
    /// Run the five services and the gateway as separate processes (one or several instances
    /// of each), until Ctrl-C.
    Up(Box<UpArgs>),
    /// Verify the invariants of a running system through its public API.
    Check(CheckArgs),
    /// Drive the same seeded workload through each mode and print them side by side.
    Demo(DemoArgs),
    /// Measure the trade-off: latency and throughput against the inconsistency window, per
    /// mode, with a report (report.json, index.html).
    Bench(BenchArgs),
    /// A nemesis: the services as separate processes under a seeded load, hurt one fault at a
    /// time (kill, pause, wrong secret, full disk, delay spike, slow Stats); per fault the
    /// availability during it, the time to agree after it and the checker's verdict.
    Drill(Box<DrillArgs>),
    /// Run one mode at a steady rate for long (minutes) and watch memory and every table and
    /// database file: what is pruned stays bounded, memory stays flat.
    Soak(Box<SoakArgs>),
    /// Replicated database nodes: a local PostgreSQL primary with hot standbys (up, status,
    /// down) and the bench of its replication policies.
    Replicas(replicas::Args),
    /// The events a service set aside: list them (with their bodies), replay or discard one,
    /// through the service's internal routes and the shared secret.
    DeadLetters(crate::dead_letters::Args),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Strong,
    Queue,
    Cron,
}

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Strong => Mode::Strong,
            ModeArg::Queue => Mode::Queue,
            ModeArg::Cron => Mode::Cron,
        }
    }
}

/// What `--service` may start on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Part {
    Account,
    Order,
    Payment,
    Loyalty,
    Stats,
    /// The user-facing address alone, in front of services started elsewhere.
    Gateway,
}

impl Part {
    pub fn service(self) -> Option<ServiceName> {
        Some(match self {
            Part::Account => ServiceName::Account,
            Part::Order => ServiceName::Order,
            Part::Payment => ServiceName::Payment,
            Part::Loyalty => ServiceName::Loyalty,
            Part::Stats => ServiceName::Stats,
            Part::Gateway => return None,
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// How the services keep each other up to date.
    #[arg(long, env = "CONVERGE_MODE", value_enum, default_value = "queue")]
    pub mode: ModeArg,
    /// Address to listen on: the user-facing address, or with --service that service's own.
    #[arg(long, env = "CONVERGE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub backends: Backends,
    /// Start only this part. The others' addresses come from --account-addr and friends.
    #[arg(long, env = "CONVERGE_SERVICE", value_enum)]
    pub service: Option<Part>,
    /// Shared secret of the internal routes, at least 16 bytes. Generated when not given,
    /// which only works when all services run in this one process.
    #[arg(long, env = "CONVERGE_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// This process's name among the instances of a service, for the leases that let one
    /// instance at a time consume a feed or recover decisions. Give each instance its own,
    /// and keep it across restarts so that a restarted instance takes its work back at once.
    /// Random when not given.
    #[arg(long, env = "CONVERGE_INSTANCE")]
    pub instance: Option<String>,
    /// Token the dashboard's controls (load, and later delays and faults) must carry; it is
    /// printed in the dashboard's link. Generated when not given; give two systems the same
    /// one to drive both from one page (`/dashboard?compare=…`).
    #[arg(long, env = "CONVERGE_DASHBOARD_TOKEN", hide_env_values = true)]
    pub dashboard_token: Option<dashboard::Token>,
    /// With `--service gateway`: the control routes of the supervisor that started the
    /// processes (`converge up` sets it), through which the dashboard kills and restarts one.
    #[arg(long, env = "CONVERGE_SUPERVISOR_URL")]
    pub supervisor_url: Option<String>,
    #[command(flatten)]
    pub addrs: ServiceAddrs,
    #[command(flatten)]
    pub knobs: Knobs,
    #[command(flatten)]
    pub retention: RetentionArgs,
}

#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// How the services keep each other up to date.
    #[arg(long, env = "CONVERGE_MODE", value_enum, default_value = "queue")]
    pub mode: ModeArg,
    /// The user-facing address (the gateway's).
    #[arg(long, env = "CONVERGE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Processes per service. More than one needs PostgreSQL (--database-url): instances of a
    /// service share its database.
    #[arg(long, env = "CONVERGE_INSTANCES", default_value_t = 1)]
    pub instances: usize,
    /// Where the processes' logs go (`<service>-<n>.log`).
    #[arg(long, env = "CONVERGE_RUN_DIR", default_value = "./converge-run")]
    pub run_dir: PathBuf,
    #[command(flatten)]
    pub backends: Backends,
    #[command(flatten)]
    pub knobs: Knobs,
    #[command(flatten)]
    pub retention: RetentionArgs,
}

/// Where the data lives and how events travel.
#[derive(Debug, Clone, Args)]
pub struct Backends {
    /// Directory of the services' databases, one SQLite file per service (when no
    /// --database-url is given).
    #[arg(long, env = "CONVERGE_DATA_DIR", default_value = "./converge-data")]
    pub data_dir: PathBuf,
    /// PostgreSQL instead of SQLite: `postgres://user[:password]@host[:port]/database`. Each
    /// service owns the schema `<prefix><service>` there and never reads another's.
    #[arg(long, env = "CONVERGE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Prefix of the services' PostgreSQL schemas, so several systems can share a database.
    #[arg(
        long,
        env = "CONVERGE_DATABASE_SCHEMA_PREFIX",
        default_value = "converge_"
    )]
    pub database_schema_prefix: String,
    /// How events travel in the eventual modes: `embedded` (each producer serves its outbox
    /// over HTTP; no server needed) or `nats` (NATS JetStream).
    #[arg(
        long,
        env = "CONVERGE_TRANSPORT",
        value_enum,
        default_value = "embedded"
    )]
    pub transport: TransportArg,
    /// The NATS server, with --transport nats.
    #[arg(
        long,
        env = "CONVERGE_NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        hide_env_values = true
    )]
    pub nats_url: String,
    /// Prefix of the JetStream streams and consumers, so several systems can share a server.
    #[arg(long, env = "CONVERGE_NATS_PREFIX", default_value = "converge")]
    pub nats_prefix: String,
    /// PostgreSQL hot standbys of the --database-url server that Stats reads from, separated
    /// by commas (`converge replicas up` starts some). Writes always go to the primary.
    #[arg(
        long,
        env = "CONVERGE_STATS_REPLICA_URLS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub stats_replica_urls: Vec<String>,
    /// Where Stats' reads go when it has standbys: `primary`, `replica` (the primary only for
    /// a read whose token no standby has replayed in time) or `any` (every node in turn).
    #[arg(
        long,
        env = "CONVERGE_STATS_READ_FROM",
        value_enum,
        default_value = "replica"
    )]
    pub stats_read_from: ReadFromArg,
    /// How long a Stats read that carries a `converge-read-token` waits for a standby to
    /// replay it before it goes to the primary.
    #[arg(long, env = "CONVERGE_STATS_READ_WAIT_MS", default_value_t = 50)]
    pub stats_read_wait_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReadFromArg {
    Primary,
    Replica,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransportArg {
    Embedded,
    Nats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreArg {
    Sqlite,
    Postgres,
}

impl Backends {
    /// Every flag at its default (or its environment variable): SQLite files and the embedded
    /// feed on a fresh machine.
    pub fn defaults() -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            backends: Backends,
        }
        Only::parse_from(["converge"]).backends
    }

    /// The same settings as flags, for a child process (`converge up`).
    pub fn to_args(&self) -> Vec<String> {
        // URLs may carry passwords: they go by environment (see `to_env`), not on the command
        // line, where `ps` shows them.
        vec![
            format!("--database-schema-prefix={}", self.database_schema_prefix),
            format!("--nats-prefix={}", self.nats_prefix),
            format!(
                "--transport={}",
                match self.transport {
                    TransportArg::Embedded => "embedded",
                    TransportArg::Nats => "nats",
                }
            ),
            format!(
                "--stats-read-from={}",
                match self.stats_read_from {
                    ReadFromArg::Primary => "primary",
                    ReadFromArg::Replica => "replica",
                    ReadFromArg::Any => "any",
                }
            ),
            format!("--stats-read-wait-ms={}", self.stats_read_wait_ms),
        ]
    }

    /// The settings that may be secret (or that one process may be given differently), as
    /// environment variables for a child process.
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        // The data directory too, so that one process can be given another (a small disk).
        let mut env = vec![
            ("CONVERGE_NATS_URL", self.nats_url.clone()),
            ("CONVERGE_DATA_DIR", self.data_dir.display().to_string()),
        ];
        if let Some(url) = &self.database_url {
            env.push(("CONVERGE_DATABASE_URL", url.clone()));
        }
        if !self.stats_replica_urls.is_empty() {
            env.push((
                "CONVERGE_STATS_REPLICA_URLS",
                self.stats_replica_urls.join(","),
            ));
        }
        env
    }

    /// Where Stats reads, and how long a read waits for a standby to catch up.
    pub fn stats_read_policy(&self) -> storage::replication::ReadPolicy {
        use storage::replication::{ReadFrom, ReadPolicy};
        ReadPolicy {
            from: match self.stats_read_from {
                ReadFromArg::Primary => ReadFrom::Primary,
                ReadFromArg::Replica => ReadFrom::Replicas,
                ReadFromArg::Any => ReadFrom::Any,
            },
            wait_max: Duration::from_millis(self.stats_read_wait_ms),
            ..ReadPolicy::default()
        }
    }

    pub fn location(&self) -> anyhow::Result<storage::Location> {
        Ok(storage::Location::parse(
            self.database_url.as_deref(),
            &self.data_dir,
            &self.database_schema_prefix,
        )?)
    }

    pub fn transport(&self) -> runtime::Transport {
        match self.transport {
            TransportArg::Embedded => runtime::Transport::Embedded,
            TransportArg::Nats => runtime::Transport::Nats {
                url: self.nats_url.clone(),
                prefix: self.nats_prefix.clone(),
            },
        }
    }
}

/// How long bookkeeping is kept before it is pruned.
#[derive(Debug, Clone, Args)]
pub struct RetentionArgs {
    /// Outbox events stay this long after every consumer has passed them.
    #[arg(long, env = "CONVERGE_OUTBOX_RETENTION_S", default_value_t = 60)]
    pub outbox_retention_s: u64,
    /// An `Idempotency-Key` and its answer are kept this long; a retry after that is new.
    #[arg(long, env = "CONVERGE_IDEMPOTENCY_TTL_S", default_value_t = 24 * 60 * 60)]
    pub idempotency_ttl_s: u64,
    /// Completed two-phase-commit decisions (and participants' tombstones of aborted
    /// prepares) are kept this long.
    #[arg(long, env = "CONVERGE_DECISIONS_RETENTION_S", default_value_t = 60 * 60)]
    pub decisions_retention_s: u64,
    /// How often each service prunes what it no longer needs.
    #[arg(long, env = "CONVERGE_PRUNE_INTERVAL_S", default_value_t = 60)]
    pub prune_interval_s: u64,
}

impl RetentionArgs {
    /// The same settings as flags, for a child process (`converge up`).
    pub fn to_args(&self) -> Vec<String> {
        vec![
            format!("--outbox-retention-s={}", self.outbox_retention_s),
            format!("--idempotency-ttl-s={}", self.idempotency_ttl_s),
            format!("--decisions-retention-s={}", self.decisions_retention_s),
            format!("--prune-interval-s={}", self.prune_interval_s),
        ]
    }

    pub fn retention(&self) -> runtime::Retention {
        let s = Duration::from_secs;
        runtime::Retention {
            outbox: s(self.outbox_retention_s),
            idempotency_keys: s(self.idempotency_ttl_s),
            decisions: s(self.decisions_retention_s),
            interval: s(self.prune_interval_s.max(1)),
        }
    }
}

/// Where each service listens (all in one process) or is reached (with --service: then one
/// address, or several separated by commas for several instances). A free port when not
/// given.
#[derive(Debug, Clone, Args)]
pub struct ServiceAddrs {
    #[arg(long, env = "CONVERGE_ACCOUNT_ADDR")]
    pub account_addr: Option<String>,
    #[arg(long, env = "CONVERGE_ORDER_ADDR")]
    pub order_addr: Option<String>,
    #[arg(long, env = "CONVERGE_PAYMENT_ADDR")]
    pub payment_addr: Option<String>,
    #[arg(long, env = "CONVERGE_LOYALTY_ADDR")]
    pub loyalty_addr: Option<String>,
    #[arg(long, env = "CONVERGE_STATS_ADDR")]
    pub stats_addr: Option<String>,
}

impl ServiceAddrs {
    /// As given, in the order of [`ServiceName::ALL`].
    pub fn all(&self) -> [Option<&str>; 5] {
        [
            self.account_addr.as_deref(),
            self.order_addr.as_deref(),
            self.payment_addr.as_deref(),
            self.loyalty_addr.as_deref(),
            self.stats_addr.as_deref(),
        ]
    }

    /// Each service's one address, for starting them all in this process.
    pub fn listen(&self) -> anyhow::Result<[Option<SocketAddr>; 5]> {
        let mut addrs = [None; 5];
        for (slot, (given, service)) in addrs
            .iter_mut()
            .zip(self.all().into_iter().zip(ServiceName::ALL))
        {
            if let Some(given) = given {
                *slot = Some(given.parse().map_err(|e| {
                    anyhow::anyhow!("--{service}-addr {given:?} is not one address: {e}")
                })?);
            }
        }
        Ok(addrs)
    }
}

/// The knobs that show the trade-off.
#[derive(Debug, Clone, Args)]
pub struct Knobs {
    /// Longest wait for one call to another service before it counts as not answering
    /// (strong mode then aborts the order with 503).
    #[arg(long, env = "CONVERGE_CALL_TIMEOUT_MS", default_value_t = 2_000)]
    pub call_timeout_ms: u64,
    /// Added to every call between services and every feed read: a slower network.
    #[arg(long, env = "CONVERGE_NETWORK_DELAY_MS", default_value_t = 0)]
    pub network_delay_ms: u64,
    /// Processing delay of the Account service, per two-phase-commit step or batch of events.
    #[arg(long, env = "CONVERGE_ACCOUNT_DELAY_MS", default_value_t = 0)]
    pub account_delay_ms: u64,
    /// Processing delay of the Order service, per batch of Payment's verdicts.
    #[arg(long, env = "CONVERGE_ORDER_DELAY_MS", default_value_t = 0)]
    pub order_delay_ms: u64,
    /// Processing delay of the Payment service, per two-phase-commit step or batch of events.
    #[arg(long, env = "CONVERGE_PAYMENT_DELAY_MS", default_value_t = 0)]
    pub payment_delay_ms: u64,
    /// Processing delay of the Loyalty service, per two-phase-commit step or batch of events.
    #[arg(long, env = "CONVERGE_LOYALTY_DELAY_MS", default_value_t = 0)]
    pub loyalty_delay_ms: u64,
    /// Processing delay of the Stats service ("complex logic or delays"), per
    /// two-phase-commit step or batch of events.
    #[arg(long, env = "CONVERGE_STATS_DELAY_MS", default_value_t = 0)]
    pub stats_delay_ms: u64,
    /// Cron mode: how often the batch job wakes.
    #[arg(long, env = "CONVERGE_CRON_INTERVAL_MS", default_value_t = 1_000)]
    pub cron_interval_ms: u64,
    /// Strong mode: how long a participant holds a prepared entry before it asks the
    /// coordinator how the transaction ended.
    #[arg(long, env = "CONVERGE_IN_DOUBT_AFTER_MS", default_value_t = 5_000)]
    pub in_doubt_after_ms: u64,
}

impl Knobs {
    /// The same settings as flags, for a child process (`converge up`).
    pub fn to_args(&self) -> Vec<String> {
        vec![
            format!("--call-timeout-ms={}", self.call_timeout_ms),
            format!("--network-delay-ms={}", self.network_delay_ms),
            format!("--account-delay-ms={}", self.account_delay_ms),
            format!("--order-delay-ms={}", self.order_delay_ms),
            format!("--payment-delay-ms={}", self.payment_delay_ms),
            format!("--loyalty-delay-ms={}", self.loyalty_delay_ms),
            format!("--stats-delay-ms={}", self.stats_delay_ms),
            format!("--cron-interval-ms={}", self.cron_interval_ms),
            format!("--in-doubt-after-ms={}", self.in_doubt_after_ms),
        ]
    }

    /// Every service's processing delay.
    pub fn delays(&self) -> Delays {
        let ms = Duration::from_millis;
        Delays {
            account: ms(self.account_delay_ms),
            order: ms(self.order_delay_ms),
            payment: ms(self.payment_delay_ms),
            loyalty: ms(self.loyalty_delay_ms),
            stats: ms(self.stats_delay_ms),
        }
    }

    /// Fills the knobs of a system configuration.
    pub fn apply(&self, config: &mut SystemConfig) {
        let ms = Duration::from_millis;
        config.call_timeout = ms(self.call_timeout_ms);
        config.network_delay = ms(self.network_delay_ms);
        config.delays = self.delays();
        config.cron_interval = ms(self.cron_interval_ms.max(1));
        config.in_doubt_after = ms(self.in_doubt_after_ms.max(1));
    }
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The user-facing address of the system to check.
    #[arg(long, env = "CONVERGE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// How long to wait for the system to be quiet (every event consumed, nothing in doubt)
    /// before checking. If it is not quiet by then, the check says what is still in flight.
    #[arg(long, env = "CONVERGE_WAIT_S", default_value_t = 60)]
    pub wait_s: u64,
    /// Check at once, without waiting: what is still in flight is listed, not counted as a
    /// violation.
    #[arg(long)]
    pub now: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Modes to run, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "strong,queue,cron"
    )]
    pub modes: Vec<ModeArg>,
    /// Orders offered per second, at constant intervals.
    #[arg(long, env = "CONVERGE_DEMO_RATE", default_value_t = 200)]
    pub rate: u64,
    /// How long each mode is offered orders.
    #[arg(long, env = "CONVERGE_DEMO_DURATION_S", default_value_t = 3.0)]
    pub duration_s: f64,
    /// Accounts the orders are spread over (plus four probe accounts).
    #[arg(long, env = "CONVERGE_DEMO_ACCOUNTS", default_value_t = 24)]
    pub accounts: usize,
    /// Requests in flight at most.
    #[arg(long, env = "CONVERGE_DEMO_CONNECTIONS", default_value_t = 64)]
    pub connections: usize,
    /// Seed of the workload: the same seed places the same orders in every mode and run.
    #[arg(long, env = "CONVERGE_DEMO_SEED", default_value_t = 7)]
    pub seed: u64,
    /// Where the report (report.json, index.html) goes.
    #[arg(long, env = "CONVERGE_DEMO_OUT", default_value = "./converge-report")]
    pub out: PathBuf,
    #[command(flatten)]
    pub knobs: Knobs,
}

/// What `converge bench` runs: the modes as the user names them, `floor` and `baseline`
/// included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchMode {
    /// The machine's limit: the plainest durable endpoint (one writer thread that owns its
    /// connection and commits every waiting order in one transaction), sharing no code with
    /// Converge.
    Floor,
    /// The same parse and validation as the Order service, one durable insert through
    /// Converge's storage layer, and nothing else.
    Baseline,
    Strong,
    Queue,
    Cron,
}

impl BenchMode {
    pub fn name(self) -> &'static str {
        match self {
            BenchMode::Floor => "floor",
            BenchMode::Baseline => "baseline",
            BenchMode::Strong => "strong",
            BenchMode::Queue => "queue",
            BenchMode::Cron => "cron",
        }
    }

    pub fn mode(self) -> Option<Mode> {
        match self {
            BenchMode::Floor | BenchMode::Baseline => None,
            BenchMode::Strong => Some(Mode::Strong),
            BenchMode::Queue => Some(Mode::Queue),
            BenchMode::Cron => Some(Mode::Cron),
        }
    }
}

/// The servers of the bench's and the soak's PostgreSQL and NATS runs.
#[derive(Debug, Clone, Args)]
pub struct ServerUrls {
    /// The PostgreSQL database of `--store postgres` runs (each run in schemas of its own,
    /// dropped after).
    #[arg(
        long,
        env = "CONVERGE_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test",
        hide_env_values = true
    )]
    pub database_url: String,
    /// The NATS server of `--transport nats` runs (each run with streams of its own, deleted
    /// after).
    #[arg(
        long,
        env = "CONVERGE_BENCH_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,
}

impl ServerUrls {
    /// The run's database and transport, on these servers.
    pub fn backends(&self, store: StoreArg, transport: TransportArg) -> crate::bench::Backends {
        use crate::bench::{Backends, Store, Transport};
        Backends {
            store: match store {
                StoreArg::Sqlite => Store::Sqlite,
                StoreArg::Postgres => Store::Postgres {
                    url: self.database_url.clone(),
                },
            },
            transport: match transport {
                TransportArg::Embedded => Transport::Embedded,
                TransportArg::Nats => Transport::Nats {
                    url: self.nats_url.clone(),
                },
            },
        }
    }
}

/// `--rate 2000` (orders per second, open loop) or `--rate max` (closed loop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    PerSecond(u64),
    Max,
}

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "max" {
            return Ok(Rate::Max);
        }
        match s.parse::<u64>() {
            Ok(n) if n > 0 => Ok(Rate::PerSecond(n)),
            _ => Err(format!(
                "expected a positive number of orders per second or \"max\", got {s:?}"
            )),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Modes to measure, in order. `baseline` gives the floor every mode is compared to.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "floor,baseline,strong,queue,cron"
    )]
    pub modes: Vec<BenchMode>,
    /// Databases to run every mode on: `sqlite` (a file per service) and/or `postgres` (a
    /// schema per service at --database-url).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        env = "CONVERGE_BENCH_STORE",
        default_value = "sqlite"
    )]
    pub store: Vec<StoreArg>,
    /// Event transports to run the eventual modes on: `embedded` and/or `nats`.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        env = "CONVERGE_BENCH_TRANSPORT",
        default_value = "embedded"
    )]
    pub transport: Vec<TransportArg>,
    #[command(flatten)]
    pub servers: ServerUrls,
    /// Offered load: orders per second at constant intervals (open loop, latency counted from
    /// each order's intended send time), or `max` for as fast as --connections allow.
    #[arg(long, env = "CONVERGE_BENCH_RATE", default_value = "500")]
    pub rate: Rate,
    /// Requests in flight at most.
    #[arg(long, env = "CONVERGE_BENCH_CONNECTIONS", default_value_t = 256)]
    pub connections: usize,
    /// How long each run offers load.
    #[arg(long, env = "CONVERGE_BENCH_DURATION_S", default_value_t = 10.0)]
    pub duration_s: f64,
    /// Ordinary accounts the orders are spread over (plus four probe accounts).
    #[arg(long, env = "CONVERGE_BENCH_ACCOUNTS", default_value_t = 200)]
    pub accounts: usize,
    /// Seed of the workload.
    #[arg(long, env = "CONVERGE_BENCH_SEED", default_value_t = 7)]
    pub seed: u64,
    /// Stats processing delays to sweep, each a separate run of every mode ("the seed's
    /// experiment": strong latency rises with it, queue stays flat and its window grows).
    #[arg(
        long,
        env = "CONVERGE_BENCH_STATS_DELAY_MS",
        value_delimiter = ',',
        default_value = "0"
    )]
    pub stats_delay_ms: Vec<u64>,
    /// Acknowledged orders per second the visibility probe follows.
    #[arg(long, env = "CONVERGE_BENCH_PROBE_PER_S", default_value_t = 20)]
    pub probe_per_s: u32,
    /// Where report.json and index.html go.
    #[arg(long, env = "CONVERGE_BENCH_OUT", default_value = "./converge-report")]
    pub out: PathBuf,
    /// Cron mode: how often the batch job wakes.
    #[arg(long, env = "CONVERGE_CRON_INTERVAL_MS", default_value_t = 1_000)]
    pub cron_interval_ms: u64,
    /// Longest wait for one call between services.
    #[arg(long, env = "CONVERGE_CALL_TIMEOUT_MS", default_value_t = 2_000)]
    pub call_timeout_ms: u64,
    /// Added to every call between services.
    #[arg(long, env = "CONVERGE_NETWORK_DELAY_MS", default_value_t = 0)]
    pub network_delay_ms: u64,
}

#[derive(Debug, Clone, Args)]
pub struct DrillArgs {
    /// The modes to drill, one fresh system each.
    #[arg(long, value_enum, default_value = "all")]
    pub mode: DrillMode,
    /// The faults, separated by commas. Each runs on every service it may hit in turn (kill
    /// and pause: all five), unless --random draws them.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = crate::drill::fault::Kind::ALL)]
    pub faults: Vec<crate::drill::fault::Kind>,
    /// Draw this many faults (and their services) from --faults at random, by --seed.
    #[arg(long)]
    pub random: Option<usize>,
    /// Seeds the workload and the random faults: the same seed, the same drill.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// How long each fault is in force, in seconds.
    #[arg(long, default_value_t = 5.0)]
    pub fault_s: f64,
    /// Load before each fault, in seconds.
    #[arg(long, default_value_t = 2.0)]
    pub steady_s: f64,
    /// How long the system may take to agree after a fault, in seconds.
    #[arg(long, default_value_t = 60)]
    pub agree_timeout_s: u64,
    /// Orders offered per second.
    #[arg(long, default_value_t = 50)]
    pub rate: u64,
    /// Accounts of the workload.
    #[arg(long, default_value_t = 20)]
    pub accounts: usize,
    /// Where drill.json, the timelines, index.html and the processes' logs go.
    #[arg(long, default_value = "drill-report")]
    pub out: PathBuf,
    /// The databases and transport (the drill always uses fresh storage: a temporary SQLite
    /// directory, or schemas and streams of its own).
    #[command(flatten)]
    pub backends: Backends,
    #[command(flatten)]
    pub knobs: Knobs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DrillMode {
    Strong,
    Queue,
    Cron,
    All,
}

impl DrillMode {
    pub fn modes(self) -> Vec<Mode> {
        match self {
            DrillMode::Strong => vec![Mode::Strong],
            DrillMode::Queue => vec![Mode::Queue],
            DrillMode::Cron => vec![Mode::Cron],
            DrillMode::All => Mode::ALL.to_vec(),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct SoakArgs {
    /// The mode to soak.
    #[arg(long, value_enum, default_value = "queue")]
    pub mode: ModeArg,
    /// The database: `sqlite` (a file per service, in a temporary directory) or `postgres` (a
    /// schema per service at --database-url, dropped after).
    #[arg(
        long,
        value_enum,
        env = "CONVERGE_BENCH_STORE",
        default_value = "sqlite"
    )]
    pub store: StoreArg,
    /// The event transport: `embedded` or `nats`.
    #[arg(
        long,
        value_enum,
        env = "CONVERGE_BENCH_TRANSPORT",
        default_value = "embedded"
    )]
    pub transport: TransportArg,
    #[command(flatten)]
    pub servers: ServerUrls,
    /// Orders offered per second, at constant intervals (open loop). For the memory target,
    /// 80 % of the mode's ceiling (`converge bench --modes queue --rate max`).
    #[arg(long, default_value_t = 500)]
    pub rate: u64,
    /// How long the load runs: `90s`, `10m`, `1h` (a bare number is seconds).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub duration: Duration,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 256)]
    pub connections: usize,
    /// Ordinary accounts the orders are spread over (plus four probe accounts).
    #[arg(long, default_value_t = 200)]
    pub accounts: usize,
    /// Seed of the workload.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// How long outbox events (once passed), idempotency keys and completed decisions are
    /// kept: short, so that pruning shows within the run (`serve` keeps them 60 s, 24 h and
    /// 1 h).
    #[arg(long, default_value_t = 30)]
    pub retention_s: u64,
    /// How often each service prunes.
    #[arg(long, default_value_t = 5)]
    pub prune_interval_s: u64,
    /// How often memory, tables and files are measured.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub sample_every: Duration,
    /// Where soak.json, the SVG charts and index.html go.
    #[arg(long, default_value = "./converge-soak")]
    pub out: PathBuf,
}

/// `90s`, `10m`, `1.5h` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let seconds = match unit {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        "h" => 3_600.0,
        _ => return Err(format!("unknown unit {unit:?} in {s:?}: use ms, s, m or h")),
    };
    match number.trim().parse::<f64>() {
        Ok(n) if n > 0.0 && n.is_finite() => Ok(Duration::from_secs_f64(n * seconds)),
        _ => Err(format!(
            "expected a positive duration such as 90s or 10m, got {s:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("-3m").is_err());
    }
}
