//! When the system is quiet: every event produced has been consumed and nothing is in doubt.
//! That is the moment the eventual modes must agree, and what `converge check` waits for.

use std::collections::BTreeMap;

use contracts::ServiceName::{self, Loyalty, Order, Payment, Stats};
use contracts::internal::ServiceStatus;

/// Which services consume which feed. A feed is named after the service whose outbox it
/// reads, and a consumer keeps its position in it under that name.
pub const FEEDS: [(ServiceName, &[ServiceName]); 2] =
    [(Order, &[Payment, Loyalty, Stats]), (Payment, &[Order])];

/// Whether the system is quiet, given what each service said about itself (keyed by service
/// name; a service missing from the map did not answer).
///
/// Quiet means: every service answered; none holds a two-phase-commit entry in doubt; and
/// every consumer of a feed has reached its producer's outbox head. A position never recorded
/// counts as 0, and a head of `None` or 0 (strong mode has no outboxes) leaves nothing to
/// consume — so in strong mode, quiet is simply "nothing in doubt".
pub fn is_quiet(services: &BTreeMap<String, ServiceStatus>) -> bool {
    let status = |service: ServiceName| services.get(service.as_str());
    if ServiceName::ALL
        .iter()
        .any(|&service| status(service).is_none())
    {
        return false;
    }
    if services.values().any(|status| status.in_doubt > 0) {
        return false;
    }
    FEEDS.iter().all(|&(producer, consumers)| {
        let head = status(producer)
            .and_then(|status| status.outbox_head)
            .unwrap_or(0);
        consumers.iter().all(|&consumer| {
            let position = status(consumer)
                .and_then(|status| status.positions.get(producer.as_str()).copied())
                .unwrap_or(0);
            position >= head
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every service answered with nothing produced, consumed or in doubt: strong mode at rest.
    fn all_idle() -> BTreeMap<String, ServiceStatus> {
        ServiceName::ALL
            .iter()
            .map(|service| (service.as_str().to_owned(), ServiceStatus::default()))
            .collect()
    }

    fn set_head(services: &mut BTreeMap<String, ServiceStatus>, producer: &str, head: i64) {
        services.get_mut(producer).unwrap().outbox_head = Some(head);
    }

    fn set_position(
        services: &mut BTreeMap<String, ServiceStatus>,
        consumer: &str,
        feed: &str,
        position: i64,
    ) {
        services
            .get_mut(consumer)
            .unwrap()
            .positions
            .insert(feed.to_owned(), position);
    }

    /// Queue mode after every event has been consumed.
    fn all_caught_up() -> BTreeMap<String, ServiceStatus> {
        let mut services = all_idle();
        set_head(&mut services, "order", 7);
        set_head(&mut services, "payment", 3);
        for consumer in ["payment", "loyalty", "stats"] {
            set_position(&mut services, consumer, "order", 7);
        }
        set_position(&mut services, "order", "payment", 3);
        services
    }

    #[test]
    fn strong_mode_with_nothing_in_doubt_is_quiet() {
        assert!(is_quiet(&all_idle()));
    }

    #[test]
    fn anything_in_doubt_is_not_quiet() {
        let mut services = all_idle();
        services.get_mut("loyalty").unwrap().in_doubt = 1;
        assert!(!is_quiet(&services));
    }

    #[test]
    fn a_service_that_did_not_answer_is_not_quiet() {
        let mut services = all_idle();
        services.remove("stats");
        assert!(!is_quiet(&services));
        assert!(!is_quiet(&BTreeMap::new()));
    }

    #[test]
    fn every_consumer_at_its_producer_head_is_quiet() {
        assert!(is_quiet(&all_caught_up()));
    }

    #[test]
    fn one_consumer_behind_on_the_order_feed_is_not_quiet() {
        let mut services = all_caught_up();
        set_position(&mut services, "stats", "order", 6);
        assert!(!is_quiet(&services));
    }

    #[test]
    fn the_order_service_behind_on_the_payment_feed_is_not_quiet() {
        let mut services = all_caught_up();
        set_head(&mut services, "payment", 4);
        assert!(!is_quiet(&services));
    }

    #[test]
    fn an_absent_position_counts_as_zero() {
        let mut services = all_caught_up();
        services.get_mut("loyalty").unwrap().positions.clear();
        assert!(!is_quiet(&services));
    }

    #[test]
    fn an_empty_outbox_leaves_nothing_to_consume() {
        let mut services = all_idle();
        set_head(&mut services, "order", 0);
        set_head(&mut services, "payment", 0);
        assert!(is_quiet(&services));
    }

    #[test]
    fn in_doubt_counts_even_when_every_feed_is_consumed() {
        let mut services = all_caught_up();
        services.get_mut("payment").unwrap().in_doubt = 2;
        assert!(!is_quiet(&services));
    }
}
