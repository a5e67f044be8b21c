//! What every Converge service runs on. Nothing here knows about orders or wallets.
//!
//! - [`config`]: the settings a service is built from.
//! - [`http`]: serving a router on a bound listener until shutdown, the JSON extractor that
//!   turns every rejection into `{"error": ...}`, the internal-secret guard.
//! - [`error`]: [`ApiError`], the one error type every handler returns.
//! - [`peer`]: calls to another service, with a timeout, the added network delay and errors
//!   that say whether a retry can help.
//! - [`metrics`]: a Prometheus registry per service.
//! - [`supervise`]: a service is a set of tasks; when one stops, all stop and say why.

pub mod config;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod metrics;
pub mod peer;
pub mod supervise;

pub use config::{Delay, Peers, Retention, ServiceConfig, Transport};
pub use error::ApiError;
pub use http::{ApiJson, ApiPath, ApiQuery};
pub use metrics::Metrics;
pub use peer::{CallError, Peer};
pub use supervise::{App, Task};

/// A named crash point: when the process was started with `FAILPOINTS=<name>=return` (in a
/// build with the `failpoints` feature), the process aborts here, as a power cut or a
/// `SIGKILL` would stop it, so recovery is tested from the real state a crash leaves. In a
/// normal build it compiles to nothing.
#[inline]
pub fn crash_point(name: &str) {
    #[cfg(feature = "failpoints")]
    if fail::eval(name, |_| ()).is_some() {
        eprintln!("crash point {name}: aborting the process");
        std::process::abort();
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}

/// Whether this build has its crash points (the `failpoints` feature): without them,
/// [`crash_point`] compiles to nothing and no crash point can be armed.
pub const CRASH_POINTS_BUILT: bool = cfg!(feature = "failpoints");

/// Arms crash point `name` in this process: the next pass there aborts it. `false` in a build
/// without crash points.
pub fn arm_crash_point(name: &str) -> bool {
    #[cfg(feature = "failpoints")]
    return fail::cfg(name, "return").is_ok();
    #[cfg(not(feature = "failpoints"))]
    {
        let _ = name;
        false
    }
}

/// A named point where a test makes an operation fail as its resource would (a write the disk
/// refused): true when the point is armed, in builds with the `failpoints` feature only.
pub fn failing_point(name: &str) -> bool {
    #[cfg(feature = "failpoints")]
    return fail::eval(name, |_| ()).is_some();
    #[cfg(not(feature = "failpoints"))]
    {
        let _ = name;
        false
    }
}
