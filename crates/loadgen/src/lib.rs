//! Load generation for Converge: a seeded workload, an open-loop load driver that does not
//! hide latency behind a closed loop, a probe of what clients see while the load runs, and
//! the statistics over what they record.
//!
//! - [`workload`]: the seeded accounts and orders, and the typed [`Client`](workload::Client)
//!   of the public API;
//! - [`driver`]: places orders at a constant rate (or as fast as it can) and records the
//!   acknowledgement latency, free of coordinated omission;
//! - [`probe`]: t-visibility and k-staleness, measured through the public per-order reads;
//! - [`stats`]: percentiles, CDFs, visibility curves, and the services' Prometheus
//!   histograms.
//!
//! Wiring the driver and the probe together:
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use loadgen::driver::{Driver, LoadConfig};
//! use loadgen::probe::{Probe, ProbeConfig};
//! use loadgen::workload::{Client, Workload};
//!
//! let client = Client::new("http://127.0.0.1:8080");
//! let config = LoadConfig { rate: Some(500), connections: 64, duration: Duration::from_secs(30) };
//! let workload = Arc::new(Workload::timed(42, 100, config.planned().unwrap_or(100_000)));
//! let opened = Arc::new(workload.open(&client).await?);
//!
//! let probe = Probe::start(
//!     client.clone(),
//!     ProbeConfig { probe_accounts: opened.probes.clone(), ..ProbeConfig::default() },
//! );
//! let observer = probe.observer();
//! let load = Driver::new(client.clone(), config)
//!     .on_ack(move |ack| observer.observe(ack))
//!     .run(move |i| {
//!         let order = workload.order_at(i);
//!         (opened.request(&order), order.idempotency_key)
//!     })
//!     .await;
//! probe.stop(); // k-staleness is measured under load only
//! // ... wait for the system to go quiet, check it ...
//! let seen = probe.finish().await;
//!
//! let latency = loadgen::stats::percentiles(&load.histogram);
//! let (k_mean, k_p99, k_max) = loadgen::stats::k_staleness_summary(&seen.k);
//! println!("p99 {} ms, stats visible at 100 ms: {:?}, k p99 {k_p99}", latency.p99_ms,
//!     seen.curve("stats").map(|c| c[7]));
//! # let _ = (k_mean, k_max);
//! # Ok(())
//! # }
//! ```

pub mod driver;
pub mod probe;
pub mod stats;
pub mod workload;
