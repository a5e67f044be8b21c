//! When the system is quiet: every event produced has been consumed and nothing is in doubt.
//! That is the moment the eventual modes must agree, and what `converge check` waits for.

use std::collections::BTreeMap;

use contracts::ServiceName;
use contracts::events::Cursor;
use contracts::internal::{FEEDS, ServiceStatus};

/// Whether the system is quiet, given what each service said about itself (keyed by service
/// name; a service missing from the map did not answer).
///
/// Quiet means: every service answered; none holds a two-phase-commit entry in doubt; every
/// event committed to an outbox is published (with a broker); and every consumer of a feed
/// has reached its producer's head. A position never recorded counts as the start, and a head
/// of `None` (strong mode has no outboxes) leaves nothing to consume — so in strong mode,
/// quiet is simply "nothing in doubt".
pub fn is_quiet(services: &BTreeMap<String, ServiceStatus>) -> bool {
    let status = |service: ServiceName| services.get(service.as_str());
    if ServiceName::ALL
        .iter()
        .any(|&service| status(service).is_none())
    {
        return false;
    }
    if services
        .values()
        .any(|status| status.in_doubt > 0 || status.unpublished > 0)
    {
        return false;
    }
    FEEDS.iter().all(|&(producer, consumers)| {
        let head = status(producer)
            .and_then(|status| status.outbox_head)
            .unwrap_or(Cursor::START);
        consumers.iter().all(|&consumer| {
            let position = status(consumer)
                .and_then(|status| status.consumers.get(producer.as_str()))
                .map_or(Cursor::START, |c| c.position);
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
        services.get_mut(producer).unwrap().outbox_head = Some(Cursor::new(0, head));
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
            .consumers
            .entry(feed.to_owned())
            .or_default()
            .position = Cursor::new(0, position);
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
        services.get_mut("loyalty").unwrap().consumers.clear();
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
    fn events_not_yet_published_to_the_broker_are_not_quiet() {
        let mut services = all_caught_up();
        services.get_mut("order").unwrap().unpublished = 1;
        assert!(!is_quiet(&services));
    }

    #[test]
    fn positions_compare_by_transaction_then_sequence() {
        let mut services = all_caught_up();
        services.get_mut("order").unwrap().outbox_head = Some(Cursor::new(9, 2));
        assert!(
            !is_quiet(&services),
            "7 in transaction 0 is before 2 in transaction 9"
        );
        for consumer in ["payment", "loyalty", "stats"] {
            services
                .get_mut(consumer)
                .unwrap()
                .consumers
                .get_mut("order")
                .unwrap()
                .position = Cursor::new(9, 2);
        }
        assert!(is_quiet(&services));
    }

    #[test]
    fn in_doubt_counts_even_when_every_feed_is_consumed() {
        let mut services = all_caught_up();
        services.get_mut("payment").unwrap().in_doubt = 2;
        assert!(!is_quiet(&services));
    }
}
