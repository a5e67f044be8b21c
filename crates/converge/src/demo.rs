//! `converge demo`: the same seeded workload through each mode, on embedded storage, and a
//! table of what each mode costs the user against what it costs the system. It is a short
//! [`bench`](crate::bench): the same measurements, the same report.

use std::time::{Duration, Instant};

use contracts::api::Progress;
use report::model::Run;

use crate::bench::Plan;
use crate::settings::{BenchMode, DemoArgs, Rate};
use crate::workload::Client;

/// The plan of a demo: its modes at its rate for its duration.
pub fn plan(args: &DemoArgs, command: String) -> Plan {
    let ms = Duration::from_millis;
    Plan {
        command,
        modes: args
            .modes
            .iter()
            .map(|m| match m {
                crate::settings::ModeArg::Strong => BenchMode::Strong,
                crate::settings::ModeArg::Queue => BenchMode::Queue,
                crate::settings::ModeArg::Cron => BenchMode::Cron,
            })
            .collect(),
        rate: Rate::PerSecond(args.rate.max(1)),
        connections: args.connections.max(1),
        duration: Duration::from_secs_f64(args.duration_s.max(0.1)),
        accounts: args.accounts.max(1),
        seed: args.seed,
        stats_delays_ms: vec![args.knobs.stats_delay_ms],
        probe_per_s: 20,
        cron_interval: ms(args.knobs.cron_interval_ms.max(1)),
        call_timeout: ms(args.knobs.call_timeout_ms),
        network_delay: ms(args.knobs.network_delay_ms),
        // The Stats delay is the sweep's (of one value here).
        delays: args.knobs.delays(),
        // The demo needs no server.
        backends: vec![crate::bench::Backends::embedded()],
    }
}

/// Polls `GET /progress` until the system is quiet: every event consumed by every service,
/// no two-phase commit in doubt.
pub async fn wait_quiet(client: &Client, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let progress: Progress = client.get("/progress").await?;
        if progress.quiet {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the system did not become quiet within {} s: {}",
            timeout.as_secs(),
            serde_json::to_string(&progress.services)?
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The side-by-side table of the demo.
pub fn table(runs: &[Run]) -> String {
    let mut out = format!(
        "{:<7} {:>6} {:>8} {:>10} {:>9} {:>9} {:>9} {:>13} {:>14} {:>11}\n",
        "mode",
        "acked",
        "refused",
        "cancelled",
        "ack p50",
        "ack p99",
        "orders/s",
        "agreed after",
        "max apply lag",
        "violations"
    );
    for run in runs {
        let lag = run.apply_lag.iter().map(|l| l.max_ms).fold(0.0, f64::max);
        out.push_str(&format!(
            "{:<7} {:>6} {:>8} {:>10} {:>9} {:>9} {:>9.0} {:>13} {:>14} {:>11}\n",
            run.mode,
            run.acknowledged,
            run.refused,
            run.cancelled,
            format_ms(run.ack_latency.p50),
            format_ms(run.ack_latency.p99),
            run.achieved_rate,
            format_ms(run.converged_after_ms),
            format_ms(lag),
            run.violations.len(),
        ));
    }
    out
}

fn format_ms(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.0} ms")
    }
}
