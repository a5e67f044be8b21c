//! A whole Converge system in one process: five services, each on its own address with its
//! own database, talking over HTTP as they would across machines, and the gateway in front.

use std::net::SocketAddr;
use std::time::Duration;

use contracts::{Mode, ServiceName};
use runtime::{App, Delay, Peers, Retention, ServiceConfig, Task, Transport};
use storage::Location;
use storage::replication::ReadPolicy;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Per-service processing delays ("complex logic or delays").
#[derive(Debug, Clone, Copy, Default)]
pub struct Delays {
    pub account: Duration,
    pub order: Duration,
    pub payment: Duration,
    pub loyalty: Duration,
    pub stats: Duration,
}

impl Delays {
    pub fn of(&self, service: ServiceName) -> Duration {
        match service {
            ServiceName::Account => self.account,
            ServiceName::Order => self.order,
            ServiceName::Payment => self.payment,
            ServiceName::Loyalty => self.loyalty,
            ServiceName::Stats => self.stats,
        }
    }
}

#[derive(Clone)]
pub struct SystemConfig {
    pub mode: Mode,
    /// Where the services' databases are: one SQLite file each in a directory, or a schema
    /// each in one PostgreSQL database.
    pub location: Location,
    pub transport: Transport,
    /// Shared secret of the internal routes; never printed.
    pub secret: String,
    /// This process's name among the instances of each service (for leases). Kept across a
    /// restart, so that a restarted instance takes its leases back at once instead of waiting
    /// for them to expire; each instance of a service needs its own.
    pub instance: String,
    /// The user-facing address; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Each service's own address, or a free port on 127.0.0.1 when `None`.
    pub service_addrs: [Option<SocketAddr>; 5],
    pub call_timeout: Duration,
    pub network_delay: Duration,
    pub delays: Delays,
    pub cron_interval: Duration,
    pub in_doubt_after: Duration,
    pub retention: Retention,
    /// PostgreSQL hot standbys Stats reads from, and how.
    pub stats_standbys: Vec<String>,
    pub stats_read_policy: ReadPolicy,
    /// What the dashboard's controls must carry (it is printed in the dashboard's link).
    pub dashboard_token: dashboard::Token,
}

impl std::fmt::Debug for SystemConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemConfig")
            .field("mode", &self.mode)
            .field("location", &self.location)
            .field("transport", &self.transport)
            .field("secret", &"***")
            .field("instance", &self.instance)
            .field("listen", &self.listen)
            .field("service_addrs", &self.service_addrs)
            .field("call_timeout", &self.call_timeout)
            .field("network_delay", &self.network_delay)
            .field("delays", &self.delays)
            .field("cron_interval", &self.cron_interval)
            .field("in_doubt_after", &self.in_doubt_after)
            .field("retention", &self.retention)
            .field("dashboard_token", &self.dashboard_token)
            .finish()
    }
}

impl SystemConfig {
    /// A system on free ports with every delay off and the embedded transport: what tests and
    /// the demo start from.
    pub fn new(mode: Mode, location: Location) -> Self {
        Self {
            mode,
            location,
            transport: Transport::Embedded,
            secret: new_secret(),
            instance: runtime::config::instance_name(),
            listen: "127.0.0.1:0".parse().expect("a valid address"),
            service_addrs: [None; 5],
            call_timeout: Duration::from_millis(2_000),
            network_delay: Duration::ZERO,
            delays: Delays::default(),
            cron_interval: Duration::from_millis(1_000),
            in_doubt_after: Duration::from_millis(5_000),
            retention: Retention::default(),
            stats_standbys: Vec::new(),
            stats_read_policy: ReadPolicy::default(),
            dashboard_token: dashboard::Token::generate(),
        }
    }

    /// The settings of one service, given where its peers are.
    pub fn service_config(&self, service: ServiceName, peers: Peers) -> ServiceConfig {
        let mut config =
            ServiceConfig::new(self.mode, self.location.clone(), self.secret.clone(), peers);
        config.transport = self.transport.clone();
        config.instance = self.instance.clone();
        config.retention = self.retention;
        config.call_timeout = self.call_timeout;
        config.network_delay = Delay::new(self.network_delay);
        config.processing_delay = Delay::new(self.delays.of(service));
        config.cron_interval = self.cron_interval;
        config.in_doubt_after = self.in_doubt_after;
        if service == ServiceName::Stats {
            config.standbys = self.stats_standbys.clone();
            config.read_policy = self.stats_read_policy;
        }
        config
    }
}

/// Removes what a system kept outside its own directory: its PostgreSQL schemas and its
/// JetStream streams (a SQLite directory goes with its owner). For systems made to be thrown
/// away: a test's, a drill's.
pub async fn remove_storage(location: &Location, transport: &Transport) -> anyhow::Result<()> {
    if let Location::Postgres { url, schema_prefix } = location {
        let (url, prefix) = (url.clone(), schema_prefix.clone());
        tokio::task::spawn_blocking(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls)?;
            for service in [
                "account", "order", "payment", "loyalty", "stats", "baseline",
            ] {
                client.batch_execute(&format!(
                    "DROP SCHEMA IF EXISTS \"{prefix}{service}\" CASCADE"
                ))?;
            }
            Ok::<_, postgres::Error>(())
        })
        .await??;
    }
    if let Transport::Nats { url, prefix } = transport {
        let client = async_nats::connect(url.as_str()).await?;
        let jetstream = async_nats::jetstream::new(client);
        for producer in ["order", "payment"] {
            let name = format!("{prefix}_{producer}").to_ascii_uppercase();
            let _ = jetstream.delete_stream(&name).await;
        }
    }
    Ok(())
}

/// A random shared secret for the internal routes, for when none is given (32 hex digits:
/// 128 bits).
pub fn new_secret() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Builds one service on a bound listener.
pub async fn build_service(
    service: ServiceName,
    config: ServiceConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<App> {
    match service {
        ServiceName::Account => service_account::build(config, listener, shutdown).await,
        ServiceName::Order => service_order::build(config, listener, shutdown).await,
        ServiceName::Payment => service_payment::build(config, listener, shutdown).await,
        ServiceName::Loyalty => service_loyalty::build(config, listener, shutdown).await,
        ServiceName::Stats => service_stats::build(config, listener, shutdown).await,
    }
}

/// How many call timeouts the gateway waits for a service. A strong-mode order can take a
/// prepare round, then up to three commit rounds, each bounded by the call timeout; the
/// gateway outwaits all of them, so it never answers 503 for an order that then gets placed.
const GATEWAY_TIMEOUT_FACTOR: u32 = 5;

/// The gateway as a task, with the dashboard (`/dashboard`) on the same address.
pub fn gateway_task(
    listener: TcpListener,
    peers: Peers,
    secret: String,
    call_timeout: Duration,
    dashboard: dashboard::DashboardConfig,
    shutdown: CancellationToken,
) -> Task {
    let router = gateway::router(gateway::Gateway::new(
        peers,
        secret,
        call_timeout * GATEWAY_TIMEOUT_FACTOR,
    ))
    .merge(dashboard::router(dashboard));
    runtime::http::serve_task(listener, router, shutdown)
}

/// The dashboard of the system whose user-facing address is `listener`'s: it reads the
/// system through that address (on loopback when it listens on every interface), and acts
/// on the services at `peers` with the system's secret (delays, pausing consumers, dead
/// letters).
pub fn dashboard_config(
    listener: &TcpListener,
    config: &SystemConfig,
    peers: &Peers,
    shutdown: &CancellationToken,
) -> anyhow::Result<dashboard::DashboardConfig> {
    let mut addr = listener.local_addr()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let services = dashboard::ServiceAdmin::new(config.secret.clone(), |service| {
        peers.url(service).to_owned()
    });
    let mut dashboard = dashboard::DashboardConfig::new(
        format!("http://{addr}"),
        config.mode.to_string(),
        config.dashboard_token.clone(),
    )
    .with_services(services);
    dashboard.shutdown = shutdown.clone();
    Ok(dashboard)
}

/// A running system.
#[derive(Debug)]
pub struct System {
    /// The user-facing address, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// The live dashboard, with its control token: `…/dashboard#token=…`.
    pub dashboard_link: String,
    pub peers: Peers,
    pub mode: Mode,
    shutdown: CancellationToken,
    running: JoinHandle<anyhow::Result<()>>,
}

impl System {
    /// Binds every address, builds every service and starts them all. Services are built in
    /// order, but none calls another before it is asked to, so the order does not matter.
    pub async fn start(config: SystemConfig) -> anyhow::Result<Self> {
        let mut listeners = Vec::with_capacity(5);
        for (service, addr) in ServiceName::ALL.into_iter().zip(config.service_addrs) {
            let addr = addr.unwrap_or_else(|| "127.0.0.1:0".parse().expect("a valid address"));
            let listener = TcpListener::bind(addr).await.map_err(|e| {
                anyhow::anyhow!("cannot listen on {addr} for the {service} service: {e}")
            })?;
            listeners.push(listener);
        }
        let url_of = |l: &TcpListener| -> anyhow::Result<String> {
            Ok(format!("http://{}", l.local_addr()?))
        };
        let peers = Peers {
            account: url_of(&listeners[0])?,
            order: url_of(&listeners[1])?,
            payment: url_of(&listeners[2])?,
            loyalty: url_of(&listeners[3])?,
            stats: url_of(&listeners[4])?,
        };
        let gateway_listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        let url = format!("http://{}", gateway_listener.local_addr()?);

        let shutdown = CancellationToken::new();
        let gateway_shutdown = shutdown.child_token();
        let dashboard = dashboard_config(&gateway_listener, &config, &peers, &gateway_shutdown)?;
        let dashboard_link = dashboard.link();
        let mut tasks = Vec::new();
        for (service, listener) in ServiceName::ALL.into_iter().zip(listeners) {
            let app = build_service(
                service,
                config.service_config(service, peers.clone()),
                listener,
                shutdown.child_token(),
            )
            .await
            .map_err(|e| e.context(format!("cannot start the {service} service")))?;
            tasks.extend(app.tasks.into_iter().map(|task| {
                let name = format!("{service}: {}", task.name);
                task.renamed(name)
            }));
        }
        tasks.push(gateway_task(
            gateway_listener,
            peers.clone(),
            config.secret.clone(),
            config.call_timeout,
            dashboard,
            gateway_shutdown,
        ));
        let running = tokio::spawn(runtime::supervise::run_tasks(tasks, shutdown.clone()));
        Ok(Self {
            url,
            dashboard_link,
            peers,
            mode: config.mode,
            shutdown,
            running,
        })
    }

    /// Stops gracefully: servers finish the requests in flight, workers stop between batches.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.running.await?
    }

    /// Stops abruptly, as a crash would: every task is dropped wherever it is. What was
    /// committed is on disk; what was not is rolled back by SQLite.
    pub async fn kill(self) {
        self.running.abort();
        let _ = self.running.await;
    }

    /// Waits until the system stops by itself (a task failed) or `signal` completes.
    pub async fn run_until(
        self,
        signal: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let shutdown = self.shutdown.clone();
        let mut running = self.running;
        tokio::select! {
            result = &mut running => return result?,
            _ = signal => {}
        }
        shutdown.cancel();
        running.await?
    }
}
