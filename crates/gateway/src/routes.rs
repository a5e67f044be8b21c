//! Every route of the public API and who answers it: one table, read by the router and by the
//! test that checks the OpenAPI document against it.

use axum::http::Method;
use contracts::ServiceName::{self, Account, Loyalty, Order, Payment, Stats};

/// Who answers a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Forwarded unchanged to the service that owns the data.
    Service(ServiceName),
    /// Answered by the gateway from what every service says.
    Gateway(Own),
}

/// The routes the gateway answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Own {
    Health,
    Metrics,
    DeadLetters,
    Progress,
    OpenApi,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub method: Method,
    /// In axum's syntax, which is also OpenAPI's: `/orders/{id}`.
    pub path: &'static str,
    pub target: Target,
}

const fn get(path: &'static str, target: Target) -> Route {
    Route {
        method: Method::GET,
        path,
        target,
    }
}

const fn post(path: &'static str, target: Target) -> Route {
    Route {
        method: Method::POST,
        path,
        target,
    }
}

use Target::{Gateway, Service};

/// The whole public API. Nothing under `/internal` belongs here.
pub static ROUTES: &[Route] = &[
    post("/accounts", Service(Account)),
    get("/accounts", Service(Account)),
    get("/accounts/{id}", Service(Account)),
    post("/accounts/{id}/suspend", Service(Account)),
    post("/wallets/{account_id}/top-ups", Service(Payment)),
    get("/wallets/{account_id}", Service(Payment)),
    get("/wallets/{account_id}/payments", Service(Payment)),
    get("/payments/{order_id}", Service(Payment)),
    post("/orders", Service(Order)),
    get("/orders/{id}", Service(Order)),
    get("/accounts/{id}/orders", Service(Order)),
    get("/loyalty/{account_id}", Service(Loyalty)),
    get("/loyalty/{account_id}/ledger", Service(Loyalty)),
    get("/loyalty/{account_id}/ledger/{order_id}", Service(Loyalty)),
    get("/stats", Service(Stats)),
    get("/stats/accounts/{account_id}", Service(Stats)),
    get("/stats/minutes", Service(Stats)),
    get("/stats/orders/{order_id}", Service(Stats)),
    get("/health", Gateway(Own::Health)),
    get("/metrics", Gateway(Own::Metrics)),
    get("/dead-letters", Gateway(Own::DeadLetters)),
    get("/progress", Gateway(Own::Progress)),
    get("/openapi.json", Gateway(Own::OpenApi)),
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn no_route_is_internal_or_listed_twice() {
        let mut seen = BTreeSet::new();
        for route in ROUTES {
            assert!(
                !route.path.starts_with("/internal"),
                "{} is internal",
                route.path
            );
            assert!(
                seen.insert((route.method.as_str(), route.path)),
                "{} {} is listed twice",
                route.method,
                route.path
            );
        }
    }

    #[test]
    fn every_service_has_a_route() {
        for service in ServiceName::ALL {
            assert!(
                ROUTES
                    .iter()
                    .any(|route| route.target == Target::Service(service)),
                "{service} has no public route"
            );
        }
    }
}
