//! What a rule finds, and how it is judged once the check knows the moment it read.

use std::collections::HashMap;

use serde::Serialize;

use crate::{InFlight, Invariant, Violation};

/// How a [`Finding`] is judged: whether something still moving can explain it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Wrong at any moment: no lag explains it (an order counted twice, a wrong total).
    Broken,
    /// What a service still applying an order looks like (an order still `accepted`, a
    /// confirmed order not yet counted): a violation once the system is settled, still in
    /// flight before.
    Lagging,
    /// What a two-phase commit in doubt looks like (funds held for it): a violation once
    /// `/progress` says quiet, which is exactly when nothing is in doubt.
    InDoubt,
}

/// One difference a rule found, not yet judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub standing: Standing,
    pub invariant: Invariant,
    /// `None` for a rule over every account.
    pub account_id: Option<String>,
    /// `None` for a rule over a whole account.
    pub order_id: Option<String>,
    /// What differs, with both numbers; it reads right both as a violation and as what is
    /// still pending.
    pub message: String,
}

impl Finding {
    pub(crate) fn new(
        standing: Standing,
        invariant: Invariant,
        account_id: Option<&str>,
        order_id: Option<&str>,
        message: String,
    ) -> Self {
        Self {
            standing,
            invariant,
            account_id: account_id.map(str::to_owned),
            order_id: order_id.map(str::to_owned),
            message,
        }
    }
}

/// What the check knows about the moment it read the system.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moment {
    /// Every order must have reached every service: the system was quiet, or the caller says
    /// it must be settled. Then a [`Standing::Lagging`] finding is a violation.
    pub settled: bool,
    /// `/progress` said quiet for the whole check: no two-phase commit was in doubt. Then a
    /// [`Standing::InDoubt`] finding is a violation.
    pub quiet: bool,
}

/// Findings sorted into what is wrong and what is still moving.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Judged {
    pub violations: Vec<Violation>,
    /// One entry per order (or account, for a sum) with everything pending for it, in the
    /// order first found.
    pub in_flight: Vec<InFlight>,
}

/// Sorts `findings` into violations and entries still in flight, given the `moment`.
pub fn judge(findings: impl IntoIterator<Item = Finding>, moment: Moment) -> Judged {
    let mut judged = Judged::default();
    // Where each (account, order) sits in `in_flight`, so one order gets one entry.
    let mut entry_of: HashMap<(Option<String>, Option<String>), usize> = HashMap::new();
    for finding in findings {
        let is_violation = match finding.standing {
            Standing::Broken => true,
            Standing::Lagging => moment.settled,
            Standing::InDoubt => moment.quiet,
        };
        if is_violation {
            judged.violations.push(Violation {
                invariant: finding.invariant,
                account_id: finding.account_id,
                order_id: finding.order_id,
                message: finding.message,
            });
            continue;
        }
        let key = (finding.account_id, finding.order_id);
        match entry_of.get(&key) {
            Some(&at) => judged.in_flight[at].pending.push(finding.message),
            None => {
                entry_of.insert(key.clone(), judged.in_flight.len());
                judged.in_flight.push(InFlight {
                    account_id: key.0,
                    order_id: key.1,
                    pending: vec![finding.message],
                });
            }
        }
    }
    judged
}
