//! One account's snapshot, indexed by order: what each service holds for each order.

use std::collections::{BTreeMap, HashMap};

use crate::model::{AccountSnapshot, LedgerEntry, Order, OrderStatus, Payment, StatsFact};

/// The snapshot of one account, with every service's records grouped by the order they are for.
pub(super) struct AccountIndex<'a> {
    pub(super) account: &'a str,
    /// The account's distinct orders, each once, in the order first listed, with how many
    /// times the listing showed it.
    pub(super) orders: Vec<(&'a Order, usize)>,
    pub(super) by_id: HashMap<&'a str, &'a Order>,
    /// Stats' fact of each order it answered for; the first, if it answered twice.
    pub(super) facts: HashMap<&'a str, &'a StatsFact>,
    /// Ordered by order id, so what is found about orders that are not listed comes out in a
    /// stable order.
    pub(super) ledger: BTreeMap<&'a str, Vec<&'a LedgerEntry>>,
    pub(super) payments: BTreeMap<&'a str, Vec<&'a Payment>>,
}

impl<'a> AccountIndex<'a> {
    pub(super) fn of(snapshot: &'a AccountSnapshot) -> Self {
        let orders = distinct_orders(snapshot);
        let by_id = orders.iter().map(|(o, _)| (o.id.as_str(), *o)).collect();
        let mut facts = HashMap::with_capacity(snapshot.stats_facts.len());
        for fact in &snapshot.stats_facts {
            facts.entry(fact.order_id.as_str()).or_insert(fact);
        }
        Self {
            account: &snapshot.account_id,
            orders,
            by_id,
            facts,
            ledger: group(&snapshot.ledger, |e| &e.order_id),
            payments: group(&snapshot.payments, |p| &p.order_id),
        }
    }

    /// The distinct orders that are confirmed.
    pub(super) fn confirmed(&self) -> impl Iterator<Item = &'a Order> + '_ {
        self.orders
            .iter()
            .map(|(o, _)| *o)
            .filter(|o| o.status == OrderStatus::Confirmed)
    }

    /// Stats' facts of the listed orders, each once.
    pub(super) fn listed_facts(&self) -> impl Iterator<Item = &'a StatsFact> + '_ {
        self.orders
            .iter()
            .filter_map(|(o, _)| self.facts.get(o.id.as_str()).copied())
    }

    /// The ledger entries for `order_id`, none if there are none.
    pub(super) fn ledger_of(&self, order_id: &str) -> &[&'a LedgerEntry] {
        self.ledger.get(order_id).map_or(&[], Vec::as_slice)
    }

    /// The payments for `order_id`, none if there are none.
    pub(super) fn payments_of(&self, order_id: &str) -> &[&'a Payment] {
        self.payments.get(order_id).map_or(&[], Vec::as_slice)
    }
}

/// The account's distinct orders, each once, in the order first listed.
pub(super) fn distinct_orders(snapshot: &AccountSnapshot) -> Vec<(&Order, usize)> {
    let mut position: HashMap<&str, usize> = HashMap::with_capacity(snapshot.orders.len());
    let mut distinct: Vec<(&Order, usize)> = Vec::with_capacity(snapshot.orders.len());
    for order in &snapshot.orders {
        match position.get(order.id.as_str()) {
            Some(&i) => distinct[i].1 += 1,
            None => {
                position.insert(&order.id, distinct.len());
                distinct.push((order, 1));
            }
        }
    }
    distinct
}

fn group<'a, T>(
    items: &'a [T],
    key: impl Fn(&'a T) -> &'a String,
) -> BTreeMap<&'a str, Vec<&'a T>> {
    let mut grouped: BTreeMap<&str, Vec<&T>> = BTreeMap::new();
    for item in items {
        grouped.entry(key(item).as_str()).or_default().push(item);
    }
    grouped
}
