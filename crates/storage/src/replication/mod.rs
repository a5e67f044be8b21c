//! Reading from PostgreSQL hot standbys with session guarantees.
//!
//! - [`lsn`]: a position in the write-ahead log.
//! - [`session`]: the pure decisions: which node a read goes to, and whether it waits for a
//!   standby to replay the reader's floor or goes to the primary.
//!
//! [`crate::Db`] opens reader connections to each standby next to the primary's and runs a
//! read under these decisions ([`crate::Db::read_fresh`]).

pub mod lsn;
pub mod session;

pub use lsn::Lsn;
pub use session::{ReadFrom, ReadPolicy, ReplicaView, Step, Target};
