//! Where the steps of one account's audit put what they find.

use super::findings::{Finding, Standing};
use crate::Invariant;

/// The findings of one account, each naming that account.
pub(super) struct Sink<'a> {
    account: &'a str,
    pub(super) findings: Vec<Finding>,
}

impl<'a> Sink<'a> {
    pub(super) fn new(account: &'a str) -> Self {
        Self {
            account,
            findings: Vec::new(),
        }
    }

    /// Wrong at any moment.
    pub(super) fn broken(&mut self, invariant: Invariant, order: Option<&str>, message: String) {
        self.push(Standing::Broken, invariant, order, message);
    }

    /// Explained by a service still applying; a violation once the system is settled.
    pub(super) fn lagging(&mut self, invariant: Invariant, order: Option<&str>, message: String) {
        self.push(Standing::Lagging, invariant, order, message);
    }

    /// Explained by a two-phase commit in doubt; a violation once the system is quiet.
    pub(super) fn in_doubt(&mut self, invariant: Invariant, order: Option<&str>, message: String) {
        self.push(Standing::InDoubt, invariant, order, message);
    }

    fn push(
        &mut self,
        standing: Standing,
        invariant: Invariant,
        order: Option<&str>,
        message: String,
    ) {
        self.findings.push(Finding::new(
            standing,
            invariant,
            Some(self.account),
            order,
            message,
        ));
    }
}
