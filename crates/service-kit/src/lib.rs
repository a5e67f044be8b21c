//! The skeleton every service is built on, written once.
//!
//! A service says only what is its own — its tables, its public routes, what it does as a
//! two-phase-commit participant or as a consumer — and [`Service`] does the rest: opens its
//! database (with the transport's tables), makes its metrics and its peers, runs the strong
//! or eventual machinery its mode needs (participant routes and in-doubt resolver; or the
//! consumer of a feed, over the embedded transport or NATS), serves its outbox, keeps its
//! bookkeeping pruned, and serves everything with the internal routes behind the secret.
//!
//! ```text
//! let mut service = Service::open(ServiceName::Stats, config, MIGRATIONS, listener, shutdown).await?;
//! let stats = Stats::new(service.db().clone(), service.metrics().clone());
//! match service.mode() {
//!     Mode::Strong => service.participant(Arc::new(stats.clone())),
//!     Mode::Queue | Mode::Cron => service.consume(ServiceName::Order, stats.clone()),
//! }
//! Ok(service.serve(public_routes(stats)))
//! ```

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use contracts::{Mode, ServiceName};
use runtime::{App, Metrics, Peer, ServiceConfig, Task, Transport};
use storage::{Db, Migration};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use transport::admin::{Admin, Head};
use transport::nats::{Broker, NatsFeed};
use transport::prune::{OutboxRetention, Passed, Rule};
use transport::relay::Relay;
use transport::{Apply, Consumer, ConsumerConfig, EventFeed, HttpFeed, Outbox};

/// A participant's crash points: `<service>::after-prepare` and `<service>::after-commit`,
/// once the step is durable and before the coordinator hears of it.
fn with_crash_points(routes: Router, service: ServiceName) -> Router {
    use contracts::internal::{COMMIT_MANY_PATH, PREPARE_MANY_PATH};
    routes.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| async move {
            let point = match request.uri().path() {
                PREPARE_MANY_PATH => Some("after-prepare"),
                COMMIT_MANY_PATH => Some("after-commit"),
                _ => None,
            };
            let response = next.run(request).await;
            if let Some(point) = point
                && response.status().is_success()
            {
                runtime::crash_point(&format!("{service}::{point}"));
            }
            response
        },
    ))
}

/// The consumers of `producer`'s feed, by name.
fn consumers_of(producer: ServiceName) -> Vec<&'static str> {
    contracts::internal::consumers_of(producer)
        .iter()
        .map(|c| c.as_str())
        .collect()
}

/// A service being assembled.
pub struct Service {
    name: ServiceName,
    config: ServiceConfig,
    db: Db,
    metrics: Metrics,
    http: reqwest::Client,
    listener: TcpListener,
    shutdown: CancellationToken,
    tasks: Vec<Task>,
    /// Internal routes that do work for other services: they pay the processing delay.
    work: Router,
    /// Internal routes that only report or administer: they stay fast however slow the
    /// service is, so that a slow service can still say how far it has got.
    admin_routes: Router,
    admin: Admin,
    rules: Vec<Rule>,
    outbox: Option<OutboxRetention>,
    /// With NATS: this service's connection to the broker.
    broker: Option<Broker>,
}

impl Service {
    /// Opens the service's database (its own migrations and the transport's) and gets ready to
    /// be assembled. Fails if the database cannot be opened or belongs to another mode.
    pub async fn open(
        name: ServiceName,
        config: ServiceConfig,
        migrations: &'static [Migration],
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let db = Db::open(
            &config.location,
            name.as_str(),
            &[migrations, transport::MIGRATIONS],
            config.mode,
        )
        .await?;
        tracing::debug!(service = %name, place = db.place(), "database open");
        let broker = match &config.transport {
            Transport::Embedded => None,
            Transport::Nats { url, prefix } => Some(Broker::connect(url, prefix).await?),
        };
        Ok(Self {
            broker,
            name,
            metrics: Metrics::of_process(name.as_str(), &config.instance),
            http: runtime::peer::http_client(),
            admin: Admin {
                db: db.clone(),
                head: None,
                in_doubt_sql: None,
                consumers: Vec::new(),
            },
            db,
            config,
            listener,
            shutdown,
            tasks: Vec::new(),
            work: Router::new(),
            admin_routes: Router::new(),
            rules: Vec::new(),
            outbox: None,
        })
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn mode(&self) -> Mode {
        self.config.mode
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Another service, as this one calls it.
    pub fn peer(&self, service: ServiceName) -> Peer {
        Peer::new(
            service.as_str(),
            self.config.peers.url(service),
            self.http.clone(),
            self.config.secret.as_str(),
            self.config.call_timeout,
            self.config.network_delay.clone(),
        )
    }

    /// This service produces events: its outbox is served to its consumers (the embedded
    /// transport) or relayed to the broker, and pruned once they have passed it.
    pub fn outbox(&mut self) -> Outbox {
        let outbox = Outbox::new(self.db.clone());
        match &self.config.transport {
            Transport::Embedded => {
                self.admin_routes = std::mem::take(&mut self.admin_routes)
                    .merge(transport::feed::router(outbox.clone(), self.db.clone()));
                self.admin.head = Some(Head::Outbox(outbox.clone()));
                self.outbox = Some(OutboxRetention {
                    outbox: outbox.clone(),
                    passed: Passed::Readers(consumers_of(self.name)),
                    keep: self.config.retention.outbox,
                });
            }
            Transport::Nats { .. } => {
                let broker = self.broker.clone().expect("connected in open");
                let stream = broker.stream_name(self.name.as_str());
                self.admin.head = Some(Head::Relay {
                    stream: stream.clone(),
                });
                self.outbox = Some(OutboxRetention {
                    outbox: outbox.clone(),
                    passed: Passed::Relay(stream),
                    keep: self.config.retention.outbox,
                });
                let relay = Relay {
                    db: self.db.clone(),
                    outbox: outbox.clone(),
                    broker,
                    producer: self.name.as_str(),
                    consumers: consumers_of(self.name),
                    instance: self.config.instance.clone(),
                };
                let name = format!("{} relay to the broker", self.name);
                let shutdown = self.shutdown.clone();
                self.task(name, relay.run(shutdown));
            }
        }
        outbox
    }

    /// Strong mode: this service takes part in every order's two-phase commit. Its steps pay
    /// the processing delay; an entry left prepared too long is resolved with the coordinator.
    pub fn participant<P: twophase::Participant>(&mut self, participant: Arc<P>) {
        let routes = with_crash_points(twophase::router(participant.clone()), self.name);
        self.work = std::mem::take(&mut self.work).merge(routes);
        let name = format!("{} in-doubt resolver", self.name);
        let resolver = twophase::resolve_in_doubt(
            participant,
            self.peer(ServiceName::Order),
            self.config.in_doubt_after,
            self.shutdown.clone(),
        );
        self.task(name, resolver);
    }

    /// Eventual modes: this service applies `producer`'s events with `handler`, as they come
    /// (queue) or at each tick (cron).
    pub fn consume<A: Apply>(&mut self, producer: ServiceName, handler: A) {
        let schedule =
            transport::consumer::schedule_for(self.config.mode, self.config.cron_interval);
        let mut config = ConsumerConfig::new(schedule);
        config.processing_delay = self.config.processing_delay.clone();
        config.name = self.name.as_str().to_owned();
        match &self.config.transport {
            Transport::Embedded => {
                let feed =
                    HttpFeed::new(producer.as_str(), self.peer(producer), self.name.as_str());
                self.run_consumer(producer, feed, handler, config);
            }
            Transport::Nats { .. } => {
                let broker = self.broker.clone().expect("connected in open");
                let feed = NatsFeed::new(
                    broker,
                    producer.as_str(),
                    consumers_of(producer),
                    self.name.as_str(),
                );
                self.run_consumer(producer, feed, handler, config);
            }
        }
    }

    fn run_consumer<F: EventFeed, A: Apply>(
        &mut self,
        producer: ServiceName,
        feed: F,
        handler: A,
        config: ConsumerConfig,
    ) {
        let (consumer, control) = Consumer::new(
            self.db.clone(),
            feed,
            handler,
            config,
            self.metrics.clone(),
            &self.config.instance,
        );
        self.admin.consumers.push(control);
        let name = format!("{} consumer of the {producer} feed", self.name);
        let shutdown = self.shutdown.clone();
        self.task(name, consumer.run(shutdown));
    }

    /// Internal routes that do work others ask of this service (they pay the processing
    /// delay).
    pub fn work_routes(&mut self, routes: Router) {
        self.work = std::mem::take(&mut self.work).merge(routes);
    }

    /// Internal routes that report or administer (they never pay the processing delay).
    pub fn admin_routes(&mut self, routes: Router) {
        self.admin_routes = std::mem::take(&mut self.admin_routes).merge(routes);
    }

    /// The query that counts this service's entries in doubt (prepared, not yet decided);
    /// the system is not quiet while there are any.
    pub fn in_doubt(&mut self, sql: &'static str) {
        self.admin.in_doubt_sql = Some(sql);
    }

    /// A rule for what of this service's bookkeeping may be deleted.
    pub fn prune(&mut self, rule: Rule) {
        self.rules.push(rule);
    }

    /// A background task of this service, supervised with the others.
    pub fn task(
        &mut self,
        name: impl Into<String>,
        task: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        self.tasks.push(Task::new(name, task));
    }

    /// Serves `public` and the internal routes until shutdown.
    pub fn serve(mut self, public: Router) -> anyhow::Result<App> {
        let housekeeping = transport::prune::run(
            self.db.clone(),
            self.outbox.take(),
            std::mem::take(&mut self.rules),
            self.config.retention.interval,
            self.shutdown.clone(),
        );
        self.task(format!("{} housekeeping", self.name), housekeeping);
        let internal =
            runtime::http::with_processing_delay(self.work, self.config.processing_delay.clone())
                .merge(self.admin_routes)
                .merge(transport::admin::router(self.admin));
        let router = runtime::http::service_router(
            public,
            internal,
            &self.config.secret,
            self.metrics,
            runtime::http::Knobs {
                processing: self.config.processing_delay,
                network: self.config.network_delay,
            },
        );
        let addr = self.listener.local_addr()?;
        self.tasks.push(runtime::http::serve_task(
            self.listener,
            router,
            self.shutdown.clone(),
        ));
        Ok(App {
            name: self.name.to_string(),
            addr,
            tasks: self.tasks,
            shutdown: self.shutdown,
        })
    }
}
