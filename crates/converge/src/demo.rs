//! `converge demo`: the same seeded workload through each mode, on embedded storage, and a
//! table of what each mode costs the user against what it costs the system.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use contracts::Mode;
use contracts::api::{PlaceOrderRequest, Progress, Totals};
use futures::StreamExt;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};

use crate::settings::DemoArgs;
use crate::system::{System, SystemConfig};
use crate::workload::{Client, Workload};

/// How long the demo waits for an eventual mode to go quiet before it reports a failure.
/// Generous: at the default load the slowest mode (cron) is quiet within two intervals.
const QUIET_TIMEOUT: Duration = Duration::from_secs(60);

/// One mode's row of the table.
#[derive(Debug, Clone)]
pub struct ModeResult {
    pub mode: Mode,
    pub acknowledged: usize,
    pub refused: usize,
    pub cancelled: usize,
    pub failed: usize,
    pub ack_p50: Duration,
    pub ack_p99: Duration,
    pub orders_per_s: f64,
    /// From the last acknowledgement until every service had applied every order.
    pub agreed_after: Duration,
    pub apply_lag_max_ms: i64,
    pub violations: Vec<String>,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<Vec<ModeResult>> {
    let workload = Workload::generate(args.seed, args.accounts, args.orders);
    let progress = ProgressBar::new((workload.orders.len() * args.modes.len()) as u64);
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg:<28} [{bar:30}] {pos}/{len} orders ({elapsed})",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    progress.enable_steady_tick(Duration::from_millis(120));
    let temp = tempfile::tempdir()?;
    let root = args
        .data_dir
        .clone()
        .unwrap_or_else(|| temp.path().to_owned());
    let mut results = Vec::new();
    for mode in args.modes.iter().copied().map(Mode::from) {
        let mut config = SystemConfig::new(mode, root.join(mode.as_str()));
        args.knobs.apply(&mut config);
        let result = run_mode(config, &workload, args.concurrency.max(1), &progress).await?;
        results.push(result);
    }
    progress.finish_and_clear();
    Ok(results)
}

async fn run_mode(
    config: SystemConfig,
    workload: &Workload,
    concurrency: usize,
    progress: &ProgressBar,
) -> anyhow::Result<ModeResult> {
    let mode = config.mode;
    progress.set_message(format!("{mode}: starting"));
    let system = System::start(config).await?;
    let client = Client::new(&system.url);

    progress.set_message(format!("{mode}: opening accounts"));
    let mut account_ids = Vec::with_capacity(workload.accounts.len());
    for plan in &workload.accounts {
        let account = client.create_account(&plan.name).await?;
        client.top_up(&account.id, plan.top_up_cents).await?;
        if plan.suspended {
            client.suspend(&account.id).await?;
        }
        account_ids.push(account.id);
    }

    progress.set_message(format!("{mode}: placing orders"));
    // Microseconds, up to a minute, three significant digits.
    let latencies = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let started = Instant::now();
    let answers: Vec<_> = futures::stream::iter(workload.orders.iter())
        .map(|plan| {
            let account_id = match plan.account {
                Some(i) => account_ids[i].clone(),
                None => contracts::ids::AccountId::generate().to_string(),
            };
            let request = PlaceOrderRequest {
                account_id: account_id.clone(),
                items: plan.items.clone(),
            };
            let client = client.clone();
            let latencies = latencies.clone();
            async move {
                let placed = client
                    .place_order(&request, Some(&plan.idempotency_key))
                    .await;
                latencies
                    .lock()
                    .expect("never poisoned")
                    .saturating_record(placed.latency.as_micros() as u64);
                progress.inc(1);
                (account_id, placed)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let last_ack = Instant::now();

    let mut acknowledged = Vec::new();
    let (mut refused, mut failed) = (0, 0);
    for (account_id, placed) in answers {
        match (placed.status, placed.order) {
            (Some(status), Some(order)) if status.is_success() => {
                acknowledged.push((order.id, account_id))
            }
            (Some(status), _) if status.is_client_error() => refused += 1,
            _ => failed += 1,
        }
    }

    progress.set_message(format!("{mode}: waiting to agree"));
    wait_quiet(&client, QUIET_TIMEOUT).await?;
    let agreed_after = last_ack.elapsed();

    progress.set_message(format!("{mode}: checking"));
    let options = checker::CheckOptions {
        acknowledged: acknowledged.clone(),
        ..Default::default()
    };
    let report = checker::check(client.http(), client.base(), &options).await?;
    let totals: Totals = client.get("/stats").await?;
    let metrics = client
        .http()
        .get(format!("{}/metrics", client.base()))
        .send()
        .await?
        .text()
        .await?;
    system.stop().await?;

    let histogram = latencies.lock().expect("never poisoned");
    Ok(ModeResult {
        mode,
        acknowledged: acknowledged.len(),
        refused,
        cancelled: acknowledged.len().saturating_sub(totals.orders as usize),
        failed,
        ack_p50: Duration::from_micros(histogram.value_at_quantile(0.50)),
        ack_p99: Duration::from_micros(histogram.value_at_quantile(0.99)),
        orders_per_s: workload.orders.len() as f64 / elapsed.as_secs_f64(),
        agreed_after,
        apply_lag_max_ms: max_gauge(&metrics, "converge_apply_lag_max_ms"),
        violations: report.violations.iter().map(ToString::to_string).collect(),
    })
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

/// The largest value of a gauge over every service in a Prometheus text exposition.
fn max_gauge(text: &str, name: &str) -> i64 {
    text.lines()
        .filter(|line| line.starts_with(name) && line[name.len()..].starts_with(['{', ' ']))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, f64::max) as i64
}

/// The side-by-side table.
pub fn table(results: &[ModeResult]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
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
    ));
    for r in results {
        out.push_str(&format!(
            "{:<7} {:>6} {:>8} {:>10} {:>9} {:>9} {:>9.0} {:>13} {:>14} {:>11}\n",
            r.mode.as_str(),
            r.acknowledged,
            r.refused,
            r.cancelled,
            format_ms(r.ack_p50),
            format_ms(r.ack_p99),
            r.orders_per_s,
            format_ms(r.agreed_after),
            format!("{} ms", r.apply_lag_max_ms),
            r.violations.len(),
        ));
    }
    out
}

fn format_ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1_000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::max_gauge;

    #[test]
    fn the_largest_gauge_over_services_is_read() {
        let text = "# TYPE converge_apply_lag_max_ms gauge\n\
                    converge_apply_lag_max_ms{service=\"stats\"} 12\n\
                    converge_apply_lag_max_ms{service=\"loyalty\"} 40\n\
                    converge_apply_lag_max_ms_other 99\n";
        assert_eq!(max_gauge(text, "converge_apply_lag_max_ms"), 40);
    }
}
