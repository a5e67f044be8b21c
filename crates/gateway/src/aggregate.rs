//! The answers the gateway builds from every service: health, metrics, dead letters and
//! progress. Each asks the five services at once, so one slow service costs one call timeout,
//! not five.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use contracts::ServiceName;
use contracts::api::Progress;
use contracts::internal::{
    ConsumerState, DEAD_LETTERS_PATH, DeadLetter, DeadLetterList, METRICS_PATH, STATUS_PATH,
    ServiceStatus,
};
use runtime::ApiError;
use serde::Serialize;

use crate::Gateway;
use crate::progress::is_quiet;

/// The Prometheus text format's content type.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4";

/// Asks every instance of every service at once; answers in [`ServiceName::ALL`] order, each
/// service with its instances' answers in the order they were given.
async fn ask_all<'g, T, F, Fut>(gateway: &'g Gateway, ask: F) -> Vec<(ServiceName, Vec<T>)>
where
    F: Fn(ServiceName, &'g str) -> Fut,
    Fut: Future<Output = T>,
{
    futures::future::join_all(ServiceName::ALL.map(|service| {
        let answers = futures::future::join_all(
            gateway
                .all_instances(service)
                .iter()
                .map(|base| ask(service, base.as_str())),
        );
        async move { (service, answers.await) }
    }))
    .await
}

#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    services: BTreeMap<&'static str, &'static str>,
}

/// `GET /health`: `200` when every service's `/health` answers `200` (at one instance at
/// least), else `503`; both name each service `ok` or `unavailable`.
pub async fn health(State(gateway): State<Arc<Gateway>>) -> Response {
    let answers: Vec<(ServiceName, bool)> = ask_all(&gateway, |service, base| {
        let request = gateway.request_to(base, Method::GET, "/health");
        let gateway = &gateway;
        async move {
            matches!(gateway.send(service, request).await,
                Ok(response) if response.status() == StatusCode::OK)
        }
    })
    .await
    .into_iter()
    // A service is up while one of its instances is.
    .map(|(service, oks)| (service, oks.into_iter().any(|ok| ok)))
    .collect();
    let all_ok = answers.iter().all(|&(_, ok)| ok);
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let body = Health {
        status: word(all_ok),
        services: answers
            .iter()
            .map(|&(service, ok)| (service.as_str(), word(ok)))
            .collect(),
    };
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `GET /metrics`: every service's metrics in one Prometheus text exposition. A service that
/// does not answer is left out, with a `# service X unavailable` comment saying so.
pub async fn metrics(State(gateway): State<Arc<Gateway>>) -> Response {
    let answers = ask_all(&gateway, |service, base| {
        gateway.get_internal_text(service, base, METRICS_PATH)
    })
    .await;
    let mut text = String::new();
    let mut expositions = Vec::new();
    for (service, instances) in &answers {
        for answer in instances {
            match answer {
                Ok(exposition) => expositions.push(exposition.as_str()),
                Err(_) => {
                    let _ = writeln!(text, "# service {service} unavailable");
                }
            }
        }
    }
    text.push_str(&merge_expositions(expositions));
    ([(CONTENT_TYPE, PROMETHEUS_TEXT)], text).into_response()
}

/// Joins the expositions of several registries into one.
///
/// Every service names its metrics alike (`converge_apply_lag_seconds{service="…"}`), and the text
/// format allows one `# HELP` and one `# TYPE` per metric family, with the family's samples
/// together; concatenating the texts would repeat them, which strict parsers refuse. So each
/// family keeps its first `HELP` and `TYPE` and gathers every service's samples, families in
/// the order first seen. Other comments are dropped.
pub fn merge_expositions<'a>(texts: impl IntoIterator<Item = &'a str>) -> String {
    let mut families = Families::default();
    for text in texts {
        // The family whose HELP or TYPE came last: its samples follow it.
        let mut current: Option<&str> = None;
        for line in text.lines().map(str::trim_end) {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split_whitespace().next().unwrap_or_default();
                families.get(name).help.get_or_insert(line);
                current = Some(name);
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split_whitespace().next().unwrap_or_default();
                families.get(name).kind.get_or_insert(line);
                current = Some(name);
            } else if !line.is_empty() && !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap_or_default();
                // A histogram's `_bucket`, `_sum` and `_count` belong to the family above them.
                let owner = current
                    .filter(|family| name.starts_with(family))
                    .unwrap_or(name);
                families.get(owner).samples.push(line);
            }
        }
    }

    let mut merged = String::new();
    for family in &families.in_order {
        for line in family
            .help
            .iter()
            .chain(&family.kind)
            .chain(&family.samples)
        {
            merged.push_str(line);
            merged.push('\n');
        }
    }
    merged
}

/// Metric families in the order first seen, each found by name.
#[derive(Default)]
struct Families<'a> {
    in_order: Vec<Family<'a>>,
    index: HashMap<&'a str, usize>,
}

#[derive(Default)]
struct Family<'a> {
    help: Option<&'a str>,
    kind: Option<&'a str>,
    samples: Vec<&'a str>,
}

impl<'a> Families<'a> {
    fn get(&mut self, name: &'a str) -> &mut Family<'a> {
        let next = self.in_order.len();
        let at = *self.index.entry(name).or_insert(next);
        if at == next {
            self.in_order.push(Family::default());
        }
        &mut self.in_order[at]
    }
}

/// `GET /dead-letters`: every service's dead letters, by service, without their bodies (event
/// bodies are for operators, through the internal routes). All or nothing: a service left out
/// would read as one with no dead letters, so one that does not answer makes it `503`.
pub async fn dead_letters(
    State(gateway): State<Arc<Gateway>>,
) -> Result<Json<BTreeMap<&'static str, Vec<DeadLetter>>>, ApiError> {
    let answers = ask_all(&gateway, |service, base| {
        gateway.get_internal_json::<DeadLetterList>(service, base, DEAD_LETTERS_PATH)
    })
    .await;
    let mut by_service = BTreeMap::new();
    for (service, instances) in answers {
        // Every instance reads the same database: the first that answers says it all.
        let answer = instances
            .into_iter()
            .reduce(|first, next| first.or(next))
            .unwrap_or_else(|| Err(ApiError::Unavailable(format!("{service} has no address"))));
        let mut letters = answer?.dead_letters;
        letters.iter_mut().for_each(|letter| letter.body = None);
        by_service.insert(service.as_str(), letters);
    }
    Ok(Json(by_service))
}

/// `GET /progress`: each service's status and whether the system is quiet. A service that did
/// not answer is absent from `services`, and then the system is not quiet.
pub async fn progress(State(gateway): State<Arc<Gateway>>) -> Json<Progress> {
    let answers = ask_all(&gateway, |service, base| {
        gateway.get_internal_json::<ServiceStatus>(service, base, STATUS_PATH)
    })
    .await;
    let services: BTreeMap<String, ServiceStatus> = answers
        .into_iter()
        .filter_map(|(service, instances)| {
            let statuses = instances.into_iter().filter_map(Result::ok).collect();
            Some((service.as_str().to_owned(), merge_instances(statuses)?))
        })
        .collect();
    Json(Progress {
        quiet: is_quiet(&services),
        services,
    })
}

/// One service's status from what its instances said: positions and heads are read from the
/// one database they share, so any instance's reading will do (the first); each feed's
/// consumer runs in one instance at a time, and its state is that instance's, not the
/// `standby` of the others. `None` if no instance answered.
pub fn merge_instances(statuses: Vec<ServiceStatus>) -> Option<ServiceStatus> {
    let mut statuses = statuses.into_iter();
    let mut merged = statuses.next()?;
    for other in statuses {
        for (feed, consumer) in other.consumers {
            let entry = merged
                .consumers
                .entry(feed)
                .or_insert_with(|| consumer.clone());
            if entry.state == ConsumerState::Standby && consumer.state != ConsumerState::Standby {
                entry.state = consumer.state;
                entry.stuck_since_ms = consumer.stuck_since_ms;
                entry.last_error = consumer.last_error;
            }
        }
    }
    Some(merged)
}

#[cfg(test)]
mod tests {
    use super::merge_expositions;

    fn exposition(service: &str, applied: u64) -> String {
        format!(
            "# HELP converge_events_total Events applied.\n\
             # TYPE converge_events_total counter\n\
             converge_events_total{{service=\"{service}\"}} {applied}\n\
             # HELP converge_apply_lag_seconds Lag.\n\
             # TYPE converge_apply_lag_seconds histogram\n\
             converge_apply_lag_seconds_bucket{{service=\"{service}\",le=\"+Inf\"}} 1\n\
             converge_apply_lag_seconds_sum{{service=\"{service}\"}} 3\n\
             converge_apply_lag_seconds_count{{service=\"{service}\"}} 1\n"
        )
    }

    #[test]
    fn each_family_is_described_once_with_every_services_samples() {
        let loyalty = exposition("loyalty", 4);
        let stats = exposition("stats", 5);
        let merged = merge_expositions([loyalty.as_str(), stats.as_str()]);
        assert_eq!(
            merged,
            "# HELP converge_events_total Events applied.\n\
             # TYPE converge_events_total counter\n\
             converge_events_total{service=\"loyalty\"} 4\n\
             converge_events_total{service=\"stats\"} 5\n\
             # HELP converge_apply_lag_seconds Lag.\n\
             # TYPE converge_apply_lag_seconds histogram\n\
             converge_apply_lag_seconds_bucket{service=\"loyalty\",le=\"+Inf\"} 1\n\
             converge_apply_lag_seconds_sum{service=\"loyalty\"} 3\n\
             converge_apply_lag_seconds_count{service=\"loyalty\"} 1\n\
             converge_apply_lag_seconds_bucket{service=\"stats\",le=\"+Inf\"} 1\n\
             converge_apply_lag_seconds_sum{service=\"stats\"} 3\n\
             converge_apply_lag_seconds_count{service=\"stats\"} 1\n"
        );
    }

    /// What promtool checks of an exposition's shape and names: each family described once,
    /// its samples together after its description, counters ending in `_total`, units in
    /// base units, spelled out. Returns the families seen, by kind.
    fn lint(text: &str) -> Vec<(String, String)> {
        let mut families: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(
                    families.iter().all(|(seen, _)| seen != name),
                    "{name} is described twice"
                );
                if kind == "counter" {
                    assert!(name.ends_with("_total"), "counter {name} lacks _total");
                }
                for abbreviated in ["_ms", "_us", "_ns", "_sec", "_milliseconds"] {
                    assert!(
                        !name.contains(&format!("{abbreviated}_")) && !name.ends_with(abbreviated),
                        "{name}: base units, spelled out"
                    );
                }
                families.push((name.to_owned(), kind.to_owned()));
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let (family, kind) = families.last().expect("a sample before any TYPE");
                let own = match kind.as_str() {
                    "histogram" => ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|suffix| name.strip_suffix(suffix) == Some(family)),
                    _ => name == family,
                };
                assert!(own, "{name} is not with its family (after {family})");
            }
        }
        families
    }

    #[test]
    fn the_services_real_metrics_merge_into_one_valid_exposition() {
        let services = ["order", "payment", "stats"].map(runtime::Metrics::new);
        for metrics in &services {
            // Touch every labelled family, so that each shows up with samples.
            metrics.observe_apply(contracts::now_ms() - 5);
            metrics
                .events
                .with_label_values(&["order", "applied"])
                .inc();
            metrics.consumer_stuck.with_label_values(&["order"]).set(1);
            metrics.consumer_retries.with_label_values(&["order"]).inc();
        }
        let texts = services.map(|metrics| metrics.render());
        let merged = merge_expositions(texts.iter().map(String::as_str));
        let families = lint(&merged);
        assert!(
            families
                .iter()
                .any(|(name, kind)| name == "converge_apply_lag_seconds" && kind == "histogram"),
            "{families:?}"
        );
        assert_eq!(
            merged.matches("service=\"stats\"").count(),
            texts[2].matches("service=\"stats\"").count(),
            "every sample of every service is kept"
        );
    }

    #[test]
    fn samples_without_a_description_keep_their_own_family() {
        let merged = merge_expositions(["up 1\n", "\nup 0\n# just a comment\n"]);
        assert_eq!(merged, "up 1\nup 0\n");
        assert_eq!(merge_expositions([]), "");
    }
}
