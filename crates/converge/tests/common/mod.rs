//! Helpers shared by the end-to-end tests: a real system on free ports with fresh storage, and
//! typed calls through its public API.

#![allow(dead_code)] // Each test binary uses a different part of this module.

pub mod retrying;

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use contracts::Mode;
use contracts::api::{Account, Order, OrderItem, PlaceOrderRequest, Wallet};
use converge::system::{System, SystemConfig};
use converge::workload::{Client, Placed};

/// The database and transport a test runs on: every test body runs once per pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backends {
    SqliteEmbedded,
    PostgresEmbedded,
    SqliteNats,
    PostgresNats,
}

impl Backends {
    pub fn is_postgres(self) -> bool {
        matches!(self, Backends::PostgresEmbedded | Backends::PostgresNats)
    }

    pub fn is_nats(self) -> bool {
        matches!(self, Backends::SqliteNats | Backends::PostgresNats)
    }
}

tokio::task_local! {
    /// The pair the running test body was given (by [`each_mode!`]).
    static BACKENDS: Backends;
}

/// Runs a test body on `backends`: [`spawn`] and [`config`] inside it use that pair.
pub async fn with_backends<F: Future>(backends: Backends, body: F) -> F::Output {
    BACKENDS.scope(backends, body).await
}

/// The pair of the running test body; SQLite and the embedded transport outside one.
pub fn backends() -> Backends {
    BACKENDS
        .try_with(|backends| *backends)
        .unwrap_or(Backends::SqliteEmbedded)
}

/// The PostgreSQL server the tests use: the machine's own unless
/// `CONVERGE_TEST_POSTGRES_URL` says otherwise.
pub fn postgres_url() -> String {
    std::env::var("CONVERGE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The NATS server the tests use: the machine's own unless `CONVERGE_TEST_NATS_URL` says
/// otherwise.
pub fn nats_url() -> String {
    std::env::var("CONVERGE_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A schema (and stream) prefix no other test (in this run or another) uses.
pub fn unique_prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "t{}_{}_{}_",
        NEXT.fetch_add(1, Ordering::Relaxed),
        std::process::id(),
        &random[..8]
    )
}

/// A running system and what a test needs to drive it.
pub struct TestSystem {
    pub system: Option<System>,
    pub client: Client,
    pub config: SystemConfig,
    /// Held so the databases live as long as the test.
    _dir: Option<tempfile::TempDir>,
}

/// Settings for a system in `mode` on the running test's backends, with fresh storage (a
/// new directory, or new schemas). Timeouts are short so that tests of failures do not wait
/// long.
pub fn config(mode: Mode) -> (SystemConfig, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let backends = backends();
    let prefix = unique_prefix();
    let location = if backends.is_postgres() {
        storage::Location::Postgres {
            url: postgres_url(),
            schema_prefix: prefix.clone(),
        }
    } else {
        storage::Location::Sqlite {
            dir: dir.path().to_owned(),
        }
    };
    let mut config = SystemConfig::new(mode, location);
    if backends.is_nats() {
        config.transport = runtime::Transport::Nats {
            url: nats_url(),
            prefix: prefix.trim_end_matches('_').to_owned(),
        };
    }
    config.cron_interval = Duration::from_millis(200);
    config.in_doubt_after = Duration::from_millis(500);
    config.call_timeout = Duration::from_millis(2_000);
    (config, dir)
}

/// Starts a system in `mode` on free ports, with fresh storage on the test's backends.
pub async fn spawn(mode: Mode) -> TestSystem {
    let (config, dir) = config(mode);
    spawn_with(config, Some(dir)).await
}

/// Starts a system with the given settings; `dir`, if any, is removed when the test ends.
pub async fn spawn_with(config: SystemConfig, dir: Option<tempfile::TempDir>) -> TestSystem {
    let system = System::start(config.clone())
        .await
        .expect("the system starts");
    TestSystem {
        client: Client::new(&system.url),
        system: Some(system),
        config,
        _dir: dir,
    }
}

impl TestSystem {
    /// The SQLite directory of a test on SQLite.
    pub fn data_dir(&self) -> &Path {
        match &self.config.location {
            storage::Location::Sqlite { dir } => dir,
            storage::Location::Postgres { .. } => panic!("a PostgreSQL test has no data directory"),
        }
    }

    pub fn mode(&self) -> Mode {
        self.config.mode
    }

    /// Stops the system as a crash would, and starts it again on the same data directory
    /// (on new ports).
    pub async fn crash_and_restart(&mut self) {
        self.system.take().expect("running").kill().await;
        let system = System::start(self.config.clone())
            .await
            .expect("the system restarts");
        self.client = Client::new(&system.url);
        self.system = Some(system);
    }

    /// An account with `balance_cents` in its wallet.
    pub async fn account_with(&self, balance_cents: i64) -> Account {
        let account = self
            .client
            .create_account("test customer")
            .await
            .expect("account created");
        if balance_cents > 0 {
            self.client
                .top_up(&account.id, balance_cents)
                .await
                .expect("topped up");
        }
        account
    }

    pub async fn place(
        &self,
        account_id: &str,
        items: &[(&str, i64, i64)],
        key: Option<&str>,
    ) -> Placed {
        self.client
            .place_order(&order_request(account_id, items), key)
            .await
    }

    pub async fn order(&self, id: &str) -> Order {
        self.client
            .get(&format!("/orders/{id}"))
            .await
            .expect("order readable")
    }

    pub async fn wallet(&self, account_id: &str) -> Wallet {
        self.client
            .get(&format!("/wallets/{account_id}"))
            .await
            .expect("wallet readable")
    }

    /// Waits until every event is consumed and nothing is in doubt.
    pub async fn wait_quiet(&self) {
        converge::demo::wait_quiet(&self.client, Duration::from_secs(30))
            .await
            .expect("the system becomes quiet");
    }

    /// Runs the independent checker; panics with every violation if there is one.
    pub async fn assert_invariants(&self, acknowledged: &[(String, String)]) {
        let options = checker::CheckOptions {
            acknowledged: acknowledged.to_vec(),
            ..Default::default()
        };
        let report = checker::check(self.client.http(), self.client.base(), &options)
            .await
            .expect("the system can be read");
        assert!(
            report.is_clean(),
            "invariants violated:\n{}",
            report
                .violations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// Raw request through the public address, for bad-input tests.
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> (u16, serde_json::Value) {
        let mut request = self
            .client
            .http()
            .request(method, format!("{}{path}", self.client.base()))
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.expect("the gateway answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("status {status}: body is not JSON: {text:?}"));
        (status, json)
    }

    pub async fn stop(mut self) {
        if let Some(system) = self.system.take() {
            system.stop().await.expect("a clean stop");
        }
        clean_up(&self.config).await;
    }
}

/// Drops what a test left on the shared servers: its PostgreSQL schemas and NATS streams.
pub async fn clean_up(config: &SystemConfig) {
    converge::system::remove_storage(&config.location, &config.transport)
        .await
        .expect("the test's schemas and streams are removed");
}

pub fn order_request(account_id: &str, items: &[(&str, i64, i64)]) -> PlaceOrderRequest {
    PlaceOrderRequest {
        account_id: account_id.to_owned(),
        items: items
            .iter()
            .map(|(sku, quantity, unit_price_cents)| OrderItem {
                sku: (*sku).to_owned(),
                quantity: *quantity,
                unit_price_cents: *unit_price_cents,
            })
            .collect(),
    }
}

/// The expected status of an acknowledged order in each mode.
pub fn ack_status(mode: Mode) -> u16 {
    if mode == Mode::Strong { 201 } else { 202 }
}

/// Runs one async test body once per backend pair and mode, as separate tests named
/// `<name>::<pair>::<mode>` (as ripgrep runs each test under each regex engine).
#[macro_export]
macro_rules! each_mode {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            $crate::each_mode!(@pair sqlite_embedded, SqliteEmbedded, $body, strong);
            $crate::each_mode!(@pair postgres_embedded, PostgresEmbedded, $body, strong);
            // Strong mode has no event transport: its NATS pairs would repeat the above.
            $crate::each_mode!(@pair sqlite_nats, SqliteNats, $body);
            $crate::each_mode!(@pair postgres_nats, PostgresNats, $body);
        }
    };
    (@pair $pair:ident, $backends:ident, $body:expr, strong) => {
        mod $pair {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn strong() {
                common::with_backends(common::Backends::$backends, ($body)(contracts::Mode::Strong))
                    .await
            }

            $crate::each_mode!(@eventual $backends, $body);
        }
    };
    (@pair $pair:ident, $backends:ident, $body:expr) => {
        mod $pair {
            use super::*;

            $crate::each_mode!(@eventual $backends, $body);
        }
    };
    (@eventual $backends:ident, $body:expr) => {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn queue() {
                common::with_backends(common::Backends::$backends, ($body)(contracts::Mode::Queue))
                    .await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cron() {
                common::with_backends(common::Backends::$backends, ($body)(contracts::Mode::Cron))
                    .await
            }
    };
}

/// Runs one async test body once per backend pair, as separate tests `<name>::<pair>`.
#[macro_export]
macro_rules! each_pair {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_embedded() {
                common::with_backends(common::Backends::SqliteEmbedded, ($body)()).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_embedded() {
                common::with_backends(common::Backends::PostgresEmbedded, ($body)()).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_nats() {
                common::with_backends(common::Backends::SqliteNats, ($body)()).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_nats() {
                common::with_backends(common::Backends::PostgresNats, ($body)()).await
            }
        }
    };
}
