//! Replicated database nodes: the strong/eventual trade-off one level down, on PostgreSQL
//! streaming replication.
//!
//! A tour, from the pure core outwards:
//!
//! 1. [`lsn`]: [`Lsn`], a position in the write-ahead log — parsed from and printed as
//!    PostgreSQL's `X/Y`, ordered as the number it is. (It lives in `storage::replication`,
//!    with [`session`]: the Stats service reads its own replicas with the same decisions.)
//! 2. [`session`]: session guarantees as pure decisions. A client's [`Session`] carries the
//!    token of its last write and the highest LSN it has read; [`ReadPolicy`] decides which node
//!    a read goes to and whether it waits for a replica to catch up or goes to the primary.
//! 3. [`read`]: the thin database side of those decisions over `tokio-postgres` — the write
//!    token, a standby's replay position, and [`read::read`], one read under a session.
//! 4. [`policy`]: asynchronous, synchronous (`remote_apply`), first-of-the-list and quorum
//!    replication, switched on a running primary.
//! 5. [`cluster`]: a primary and N hot standbys from the installed PostgreSQL programs, in a
//!    directory of their own (`converge replicas up`/`status`/`down`).
//! 6. [`stats`] and [`pbs`]: the arithmetic of the measurements — percentiles, t-visibility,
//!    staleness — and the visibility predicted from measured delays after *Probabilistically
//!    Bounded Staleness*.
//! 7. [`bench`](mod@bench): the measurement (`converge replicas bench`): a seeded, Stats-like workload
//!    per policy, a probe per replica, session clients with and without guarantees, and the
//!    drill that stops a standby under load.
//! 8. [`model`] and [`render`]: what a bench found (`report.json`) and how it is shown (a
//!    terminal table, a self-contained `index.html`).
//! 9. [`cli`]: the `converge replicas` commands: [`Args`] and [`run`].

pub mod bench;
pub mod cli;
pub mod cluster;
pub mod db;
pub mod model;
pub mod pbs;
pub mod policy;
pub mod read;
pub mod render;
pub mod stats;

pub use cli::{Args, run};
pub use lsn::Lsn;
pub use policy::Policy;
pub use session::{Guarantees, ReadFrom, ReadPolicy, Session, Step, Target};
pub use storage::replication::{lsn, session};
