//! The soak end to end, shortened to seconds with a retention of one second: what an operator
//! relies on when the system runs for months — nothing lost or counted twice, and the
//! bookkeeping tables (the outbox, the idempotency keys) pruned instead of growing with the
//! orders.

use std::time::Duration;

use contracts::Mode;
use converge::bench::Backends;
use converge::soak::{self, Plan, Soak};

fn short_plan() -> Plan {
    let second = Duration::from_secs(1);
    Plan {
        command: "converge soak (test)".into(),
        mode: Mode::Queue,
        backends: Backends::embedded(),
        rate: 100,
        duration: Duration::from_secs(15),
        connections: 32,
        accounts: 16,
        seed: 5,
        retention: runtime::Retention {
            outbox: second,
            idempotency_keys: second,
            decisions: second,
            interval: second,
        },
        sample_every: second,
    }
}

/// The most rows `table` of `service` held in the last five seconds of the load.
fn recent_max_rows(soak: &Soak, service: &str, table: &str) -> u64 {
    let end = soak.samples.last().expect("samples").t_s;
    soak.samples
        .iter()
        .filter(|s| s.t_s >= end - 5.0)
        .filter_map(|s| s.database(service)?.rows.get(table).copied())
        .max()
        .unwrap_or_else(|| panic!("no {service}.{table} in the samples"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_is_clean_and_prunes_the_bookkeeping() {
    let soak = soak::run(&short_plan(), |_| {}).await.unwrap();

    assert!(soak.violations.is_empty(), "{:?}", soak.violations);
    assert!(
        soak.acknowledged >= 1_000,
        "{} acknowledged",
        soak.acknowledged
    );
    assert!(soak.samples.len() >= 10, "{} samples", soak.samples.len());
    // Every acknowledged order put at least one event in Order's outbox and one key in its
    // table: kept for a second, only those of the last few seconds may remain.
    for (service, table) in [
        ("order", "outbox"),
        ("payment", "outbox"),
        ("order", "idempotency_keys"),
    ] {
        let rows = recent_max_rows(&soak, service, table);
        assert!(
            rows < soak.acknowledged / 2,
            "{service}.{table} held {rows} rows for {} orders: not pruned",
            soak.acknowledged
        );
    }
    // Business data is never pruned: every acknowledged order is still there once the system
    // has caught up (the last sample).
    let orders = recent_max_rows(&soak, "order", "orders");
    assert!(orders >= soak.acknowledged, "{orders} orders kept");

    let out = tempfile::tempdir().unwrap();
    let page = soak::write(&soak, out.path()).unwrap();
    let html = std::fs::read_to_string(page).unwrap();
    assert!(html.contains("<svg"), "the page shows the charts");
    let written: Soak =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("soak.json")).unwrap())
            .unwrap();
    assert_eq!(written.samples.len(), soak.samples.len());
    for chart in ["rss.svg", "database-size.svg", "rows-order.svg"] {
        let svg = std::fs::read_to_string(out.path().join(chart)).unwrap();
        assert!(svg.starts_with("<svg xmlns="), "{chart} opens on its own");
    }
}
