//! The `converge` binary's library: the only crate that wires the services together.
//!
//! - [`settings`]: every flag, each also an environment variable.
//! - [`system`]: starts the five services and the user-facing gateway in one process, each on
//!   its own address, and stops them (gracefully, or abruptly as a crash would).
//! - [`workload`]: a seeded workload of accounts, top-ups and orders, and the client that
//!   drives it through the public API.
//! - [`demo`]: the same workload through each mode, side by side.
//! - [`dead_letters`]: `converge dead-letters`, an operator's hands on set-aside events.
//! - [`soak`]: one mode at a steady rate for minutes, with memory and every table and database
//!   file sampled: the evidence that pruning keeps the disk bounded and memory stays flat.
//! - [`up`]: the services and the gateway as separate processes, which the drill and the
//!   crash tests also drive (kill, pause, restart).
//! - [`supervisor`]: `converge up`'s control routes, through which the dashboard kills and
//!   restarts a process.
//! - [`drill`]: a nemesis: faults injected one at a time into those processes under load.

pub mod baseline;
pub mod bench;
pub mod dead_letters;
pub mod demo;
pub mod drill;
pub mod floor;
pub mod settings;
pub mod soak;
pub mod supervisor;
pub mod system;
pub mod up;
pub use loadgen::workload;
