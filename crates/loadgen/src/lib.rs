//! Load generation for Converge: a seeded workload and the client that drives it through the
//! public API.

pub mod workload;
