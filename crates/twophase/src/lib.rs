//! Two-phase commit, as strong mode uses it.
//!
//! The Order service coordinates; Account, Payment, Loyalty and Stats participate.
//!
//! 1. **Prepare.** The coordinator sends a [`PrepareRequest`] to every participant. A
//!    participant that can apply the order makes a *prepared* entry durable (Payment holds the
//!    funds, Loyalty and Stats record a pending entry that no read counts) and votes yes. A
//!    participant that cannot votes no with the reason.
//! 2. **Decide.** All yes: the coordinator logs `commit` durably, in the same transaction as
//!    the order itself. Anything else: abort, which needs no log (presumed abort).
//! 3. **Complete.** The coordinator sends the decision to every participant and answers the
//!    user only when all have applied it.
//!
//! Recovery: a coordinator that restarts resends `commit` for every logged decision not yet
//! completed. A participant that holds a prepared entry longer than a setting asks the
//! coordinator for the outcome ([`resolve_in_doubt`]); the coordinator answers from its log,
//! and if there is no decision it logs `abort` first, so a slow coordinator can never commit
//! what a participant was told to abort.
//!
//! Account is a *read-only* participant: it votes on "may this account order?" and has nothing
//! to apply, so commit and abort are no-ops for it (the classic read-only optimisation).

pub mod coordinator;
pub mod participant;

pub use contracts::internal::{Outcome, PrepareRequest, Vote};
pub use participant::{Participant, resolve_in_doubt, router};
