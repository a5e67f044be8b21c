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
    Serve(ServeArgs),
    /// Verify the invariants of a running system through its public API.
    Check(CheckArgs),
    /// Drive the same seeded workload through each mode and print them side by side.
    Demo(DemoArgs),
    /// Measure the trade-off: latency and throughput against the inconsistency window, per
    /// mode, with a report (report.json, index.html).
    Bench(BenchArgs),
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
    /// Directory of the services' databases, one SQLite file per service.
    #[arg(long, env = "CONVERGE_DATA_DIR", default_value = "./converge-data")]
    pub data_dir: PathBuf,
    /// Start only this part. The others' addresses come from --account-addr and friends.
    #[arg(long, env = "CONVERGE_SERVICE", value_enum)]
    pub service: Option<Part>,
    /// Shared secret of the internal routes. Generated when not given, which only works when
    /// all services run in this one process.
    #[arg(long, env = "CONVERGE_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Token the dashboard's controls (load, and later delays and faults) must carry; it is
    /// printed in the dashboard's link. Generated when not given; give two systems the same
    /// one to drive both from one page (`/dashboard?compare=…`).
    #[arg(long, env = "CONVERGE_DASHBOARD_TOKEN", hide_env_values = true)]
    pub dashboard_token: Option<dashboard::Token>,
    #[command(flatten)]
    pub addrs: ServiceAddrs,
    #[command(flatten)]
    pub knobs: Knobs,
}

/// Where each service listens (all in one process) or is reached (with --service). A free
/// port when not given.
#[derive(Debug, Clone, Args)]
pub struct ServiceAddrs {
    #[arg(long, env = "CONVERGE_ACCOUNT_ADDR")]
    pub account_addr: Option<SocketAddr>,
    #[arg(long, env = "CONVERGE_ORDER_ADDR")]
    pub order_addr: Option<SocketAddr>,
    #[arg(long, env = "CONVERGE_PAYMENT_ADDR")]
    pub payment_addr: Option<SocketAddr>,
    #[arg(long, env = "CONVERGE_LOYALTY_ADDR")]
    pub loyalty_addr: Option<SocketAddr>,
    #[arg(long, env = "CONVERGE_STATS_ADDR")]
    pub stats_addr: Option<SocketAddr>,
}

impl ServiceAddrs {
    pub fn all(&self) -> [Option<SocketAddr>; 5] {
        [
            self.account_addr,
            self.order_addr,
            self.payment_addr,
            self.loyalty_addr,
            self.stats_addr,
        ]
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
    /// Wait up to this long for the system to be quiet (every event consumed, nothing in
    /// doubt) before checking; 0 checks at once.
    #[arg(long, env = "CONVERGE_WAIT_S", default_value_t = 0)]
    pub wait_s: u64,
    /// Do not count orders still `accepted` as violations (for a check under load).
    #[arg(long)]
    pub allow_unsettled: bool,
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

/// What `converge bench` runs: the modes as the user names them, `baseline` included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchMode {
    /// A bare endpoint that commits the order durably and answers: this machine's floor.
    Baseline,
    Strong,
    Queue,
    Cron,
}

impl BenchMode {
    pub fn name(self) -> &'static str {
        match self {
            BenchMode::Baseline => "baseline",
            BenchMode::Strong => "strong",
            BenchMode::Queue => "queue",
            BenchMode::Cron => "cron",
        }
    }

    pub fn mode(self) -> Option<Mode> {
        match self {
            BenchMode::Baseline => None,
            BenchMode::Strong => Some(Mode::Strong),
            BenchMode::Queue => Some(Mode::Queue),
            BenchMode::Cron => Some(Mode::Cron),
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
        default_value = "baseline,strong,queue,cron"
    )]
    pub modes: Vec<BenchMode>,
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
