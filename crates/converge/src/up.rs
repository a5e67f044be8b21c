//! `converge up`: the five services and the gateway as separate OS processes, as they would
//! run across machines: one process per instance of each service (`--instances N`), each
//! `converge serve --service NAME`, sharing a secret and the backends.
//!
//! [`Cluster`] is also what the drill and the crash tests drive: it can kill a process
//! (`SIGKILL`), pause and resume it (`SIGSTOP`/`SIGCONT`), and start it again, with other
//! environment variables if asked (a wrong secret, a crash point).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use contracts::{Mode, ServiceName};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// How long a process may take to answer `/health` after it starts: a debug build's start-up
/// with migrations on PostgreSQL takes a second or two; past this, something is wrong.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a graceful stop (`SIGTERM`) may take before the process is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The environment variable that makes a child stop when its parent goes (see
/// [`exit_with_parent`]).
pub const EXIT_WITH_PARENT: &str = "CONVERGE_EXIT_WITH_PARENT";

/// A part of the system that runs as processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    Service(ServiceName),
    Gateway,
}

impl Part {
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Service(service) => service.as_str(),
            Part::Gateway => "gateway",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        if name == "gateway" {
            return Some(Part::Gateway);
        }
        ServiceName::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .map(Part::Service)
    }
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to start.
#[derive(Clone)]
pub struct Plan {
    /// The `converge` executable the processes run.
    pub binary: PathBuf,
    pub mode: Mode,
    /// Processes per service (the gateway is one).
    pub instances: usize,
    /// The gateway's address; port 0 picks a free one.
    pub listen: SocketAddr,
    pub secret: String,
    /// Token of the dashboard's controls, passed to the gateway.
    pub dashboard_token: String,
    /// Where the logs go.
    pub run_dir: PathBuf,
    /// Flags every process gets (backends, knobs, retention).
    pub args: Vec<String>,
    /// Environment every process gets (settings that may be secret, such as a database URL).
    pub env: Vec<(String, String)>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("binary", &self.binary)
            .field("mode", &self.mode)
            .field("instances", &self.instances)
            .field("listen", &self.listen)
            .field("run_dir", &self.run_dir)
            .field("args", &self.args)
            .finish_non_exhaustive()
    }
}

/// One process of the system.
struct Process {
    part: Part,
    index: usize,
    addr: SocketAddr,
    /// What it is called among its service's instances (for leases), kept across restarts so
    /// that a restarted instance takes its work back at once.
    instance: String,
    child: Option<Child>,
    /// Environment for this process only (a crash point, a wrong secret), on top of the
    /// plan's.
    env: Vec<(String, String)>,
}

/// A running system of separate processes.
pub struct Cluster {
    plan: Plan,
    processes: Vec<Process>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("plan", &self.plan)
            .field("processes", &self.processes.len())
            .finish()
    }
}

impl Cluster {
    /// Starts every process (services first, then the gateway) and waits until each answers
    /// `/health`.
    pub async fn start(plan: Plan) -> anyhow::Result<Self> {
        anyhow::ensure!(plan.instances >= 1, "--instances must be at least 1");
        std::fs::create_dir_all(plan.run_dir.join("logs"))
            .with_context(|| format!("cannot create {}", plan.run_dir.display()))?;
        let mut processes = Vec::new();
        for service in ServiceName::ALL {
            for index in 0..plan.instances {
                processes.push(Process {
                    part: Part::Service(service),
                    index,
                    addr: free_addr()?,
                    instance: format!("{service}-{index}"),
                    child: None,
                    env: Vec::new(),
                });
            }
        }
        let gateway_addr = if plan.listen.port() == 0 {
            free_addr()?
        } else {
            plan.listen
        };
        processes.push(Process {
            part: Part::Gateway,
            index: 0,
            addr: gateway_addr,
            instance: "gateway-0".into(),
            child: None,
            env: Vec::new(),
        });
        let mut cluster = Self { plan, processes };
        for i in 0..cluster.processes.len() {
            cluster.spawn(i)?;
        }
        for i in 0..cluster.processes.len() {
            cluster.wait_healthy(i).await?;
        }
        Ok(cluster)
    }

    /// The user-facing address.
    pub fn url(&self) -> String {
        format!("http://{}", self.gateway().addr)
    }

    /// The address of one process.
    pub fn addr(&self, part: Part, index: usize) -> Option<SocketAddr> {
        self.find(part, index).map(|i| self.processes[i].addr)
    }

    pub fn secret(&self) -> &str {
        &self.plan.secret
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Every process, as `(part, index)`.
    pub fn processes(&self) -> Vec<(Part, usize)> {
        self.processes.iter().map(|p| (p.part, p.index)).collect()
    }

    /// Kills a process as a crash would (`SIGKILL`) and waits for it to be gone.
    pub async fn kill(&mut self, part: Part, index: usize) -> anyhow::Result<()> {
        let i = self.index_of(part, index)?;
        if let Some(mut child) = self.processes[i].child.take() {
            signal(&child, Signal::SIGKILL)?;
            let _ = child.wait().await;
        }
        Ok(())
    }

    /// Starts a process again (after [`Cluster::kill`]) on the same address, with `env` on
    /// top of the plan's (replacing what it had before), and waits until it answers.
    pub async fn restart(
        &mut self,
        part: Part,
        index: usize,
        env: Vec<(String, String)>,
    ) -> anyhow::Result<()> {
        let i = self.index_of(part, index)?;
        if self.processes[i].child.is_some() {
            self.kill(part, index).await?;
        }
        self.processes[i].env = env;
        self.spawn(i)?;
        self.wait_healthy(i).await
    }

    /// Starts a process again without waiting for it to answer (one meant to fail, or to
    /// crash at a crash point).
    pub async fn restart_unwatched(
        &mut self,
        part: Part,
        index: usize,
        env: Vec<(String, String)>,
    ) -> anyhow::Result<()> {
        let i = self.index_of(part, index)?;
        if self.processes[i].child.is_some() {
            self.kill(part, index).await?;
        }
        self.processes[i].env = env;
        self.spawn(i)
    }

    /// Whether a process has exited (crashed at a crash point, say), and how.
    pub fn exited(
        &mut self,
        part: Part,
        index: usize,
    ) -> anyhow::Result<Option<std::process::ExitStatus>> {
        let i = self.index_of(part, index)?;
        match self.processes[i].child.as_mut() {
            Some(child) => {
                let status = child.try_wait()?;
                if status.is_some() {
                    self.processes[i].child = None;
                }
                Ok(status)
            }
            None => Ok(None),
        }
    }

    /// Whether a process runs now, and its process id (it may have exited by itself since it
    /// was started: that is noticed here).
    pub fn running(&mut self, part: Part, index: usize) -> anyhow::Result<Option<u32>> {
        self.exited(part, index)?;
        Ok(self.pid(part, index))
    }

    /// The operating system's id of a running process (to change its limits, say).
    pub fn pid(&self, part: Part, index: usize) -> Option<u32> {
        let i = self.find(part, index)?;
        self.processes[i].child.as_ref().and_then(Child::id)
    }

    /// Freezes a process (`SIGSTOP`): it holds its connections and answers nothing.
    pub fn pause(&self, part: Part, index: usize) -> anyhow::Result<()> {
        self.send(part, index, Signal::SIGSTOP)
    }

    /// Thaws a paused process (`SIGCONT`).
    pub fn resume(&self, part: Part, index: usize) -> anyhow::Result<()> {
        self.send(part, index, Signal::SIGCONT)
    }

    /// Stops every process gracefully (`SIGTERM`, gateway first), killing those that take too
    /// long.
    pub async fn stop(mut self) {
        self.stop_all().await;
    }

    /// [`Cluster::stop`], for a cluster that is shared (the supervisor's).
    pub async fn stop_all(&mut self) {
        for process in self.processes.iter_mut().rev() {
            let Some(mut child) = process.child.take() else {
                continue;
            };
            let _ = signal(&child, Signal::SIGCONT);
            let _ = signal(&child, Signal::SIGTERM);
            if tokio::time::timeout(STOP_TIMEOUT, child.wait())
                .await
                .is_err()
            {
                tracing::warn!(part = %process.part, index = process.index, "did not stop in time; killed");
                let _ = child.kill().await;
            }
        }
    }

    fn gateway(&self) -> &Process {
        self.processes
            .iter()
            .find(|p| p.part == Part::Gateway)
            .expect("the gateway is planned")
    }

    fn find(&self, part: Part, index: usize) -> Option<usize> {
        self.processes
            .iter()
            .position(|p| p.part == part && p.index == index)
    }

    fn index_of(&self, part: Part, index: usize) -> anyhow::Result<usize> {
        self.find(part, index)
            .ok_or_else(|| anyhow::anyhow!("no process {part}-{index}"))
    }

    fn send(&self, part: Part, index: usize, sig: Signal) -> anyhow::Result<()> {
        let i = self.index_of(part, index)?;
        match &self.processes[i].child {
            Some(child) => signal(child, sig),
            None => anyhow::bail!("{part}-{index} is not running"),
        }
    }

    /// The addresses of every instance of `service`, comma-separated, as peers are given.
    fn addrs_of(&self, service: ServiceName) -> String {
        self.processes
            .iter()
            .filter(|p| p.part == Part::Service(service))
            .map(|p| p.addr.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let (part, index, addr) = {
            let p = &self.processes[i];
            (p.part, p.index, p.addr)
        };
        let log_path = self
            .plan
            .run_dir
            .join("logs")
            .join(format!("{part}-{index}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let mut command = Command::new(&self.plan.binary);
        command
            .arg("serve")
            .arg(format!("--service={part}"))
            .arg(format!("--listen={addr}"))
            .arg(format!("--mode={}", self.plan.mode))
            .arg(format!("--instance={}", self.processes[i].instance))
            .args(ServiceName::ALL.map(|s| format!("--{s}-addr={}", self.addrs_of(s))))
            .args(&self.plan.args)
            .env("CONVERGE_SECRET", &self.plan.secret)
            .env("CONVERGE_DASHBOARD_TOKEN", &self.plan.dashboard_token)
            .env(EXIT_WITH_PARENT, "1")
            .envs(self.plan.env.iter().map(|(k, v)| (k, v)))
            .envs(self.processes[i].env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", self.plan.binary.display()))?;
        self.processes[i].child = Some(child);
        Ok(())
    }

    async fn wait_healthy(&mut self, i: usize) -> anyhow::Result<()> {
        let (part, index, addr) = {
            let p = &self.processes[i];
            (p.part, p.index, p.addr)
        };
        // The gateway's /health is every service's; a service's own /health is its own.
        let url = format!("http://{addr}/health");
        let http = runtime::peer::http_client();
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.exited(part, index)? {
                let log = self
                    .plan
                    .run_dir
                    .join("logs")
                    .join(format!("{part}-{index}.log"));
                anyhow::bail!(
                    "{part}-{index} exited ({status}) while starting; see {}",
                    log.display()
                );
            }
            let answer = http.get(&url).timeout(Duration::from_secs(2)).send().await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{part}-{index} did not answer {url} within {START_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn signal(child: &Child, sig: Signal) -> anyhow::Result<()> {
    let pid = child
        .id()
        .ok_or_else(|| anyhow::anyhow!("the process has already exited"))?;
    kill(Pid::from_raw(pid as i32), sig).with_context(|| format!("cannot send {sig} to {pid}"))
}

/// A free loopback address (bound, then released: another process could take it in between,
/// which on a test machine is rare enough).
fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// In a process that `converge up` started: stops when `up` goes away, however it went (a
/// `SIGKILL` of `up` runs none of its clean-up), by watching the parent process id.
pub async fn exit_with_parent() {
    let parent = nix::unistd::getppid();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if nix::unistd::getppid() != parent {
            tracing::warn!("the process that started this one is gone; stopping");
            return;
        }
    }
}

/// In a service's process: a write past the file-size limit (`RLIMIT_FSIZE`, which is how the
/// drill fills a disk) fails with `EFBIG`, which the storage treats as a full disk, instead of
/// ending the process with `SIGXFSZ`'s default action. Catching the signal (the handler stays
/// installed once its stream is dropped) is all it takes.
pub fn survive_file_size_limit() {
    use tokio::signal::unix::{SignalKind, signal};
    if let Err(error) = signal(SignalKind::from_raw(Signal::SIGXFSZ as i32)) {
        tracing::warn!(%error, "cannot catch SIGXFSZ: a file-size limit would end this process");
    }
}

/// The run directory's logs of one process, for messages.
pub fn log_of(run_dir: &Path, part: Part, index: usize) -> PathBuf {
    run_dir.join("logs").join(format!("{part}-{index}.log"))
}
