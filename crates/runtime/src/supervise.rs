//! A service is a set of tasks: its HTTP server and its background workers (consumers,
//! the cron job, two-phase-commit recovery). They are supervised siblings: when one stops,
//! the process says which and why, and stops the others.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// One named task of a service.
pub struct Task {
    pub name: String,
    future: Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>,
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task").field("name", &self.name).finish()
    }
}

impl Task {
    pub fn new(
        name: impl Into<String>,
        future: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            future: Box::pin(future),
        }
    }

    /// The same task under another name (the CLI prefixes each with its service).
    pub fn renamed(self, name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            future: self.future,
        }
    }
}

/// A built service: where it listens and the tasks that make it run.
#[derive(Debug)]
pub struct App {
    pub name: String,
    pub addr: SocketAddr,
    pub tasks: Vec<Task>,
    /// Cancelled to stop every task of the app; tasks watch it.
    pub shutdown: CancellationToken,
}

impl App {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Runs every task until the shutdown token is cancelled or one task stops.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        run_tasks(self.tasks, self.shutdown).await
    }
}

/// Runs tasks side by side. The first to stop (or the token) stops them all; an error or a
/// task that stops before shutdown was asked for is reported and returned.
pub async fn run_tasks(tasks: Vec<Task>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut set = JoinSet::new();
    for task in tasks {
        let name = task.name;
        let future = task.future;
        set.spawn(async move { (name, future.await) });
    }
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        let (name, result) = match joined {
            Ok(done) => done,
            Err(e) => ("a task".to_owned(), Err(anyhow::anyhow!("panicked: {e}"))),
        };
        match result {
            Ok(()) if shutdown.is_cancelled() => tracing::debug!(task = name, "stopped"),
            Ok(()) => {
                tracing::error!(task = name, "stopped on its own; stopping the others");
                first_error.get_or_insert_with(|| anyhow::anyhow!("{name} stopped on its own"));
            }
            Err(e) => {
                tracing::error!(
                    task = name,
                    error = format!("{e:#}"),
                    "failed; stopping the others"
                );
                first_error.get_or_insert(e.context(format!("{name} failed")));
            }
        }
        shutdown.cancel();
    }
    first_error.map_or(Ok(()), Err)
}
