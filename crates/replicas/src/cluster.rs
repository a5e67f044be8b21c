//! A local primary and its hot standbys, from the PostgreSQL server programs installed on this
//! machine: `initdb`, then `pg_basebackup -R` (one replication slot per standby), `pg_ctl`.
//!
//! Every node lives in one directory of its own (`<dir>/primary`, `<dir>/replica1`, … and a
//! log file beside each), listens on 127.0.0.1 only (no Unix socket, so nothing lands in the
//! machine's shared socket directory), and trusts loopback connections: a lab, not a server.
//! `<dir>/cluster.json` remembers the nodes, so `status` and `down` need only the directory.
//!
//! PostgreSQL refuses to run as root: run as root, every program runs as the `postgres` user
//! (`runuser -u postgres --`) and the directory is handed to it. Nothing is downloaded; when the
//! programs are missing, [`PgBin::find`] says what to install.
//!
//! The functions here block (they wait for child processes): async callers use
//! `spawn_blocking`.

use std::ffi::OsStr;
use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The lab's database on every node (created on the primary before the standbys are copied).
pub const DATABASE: &str = "converge";

/// The superuser every node is initialised with, whoever runs it, so URLs look the same.
pub const SUPERUSER: &str = "postgres";

/// Where `converge replicas up` puts a cluster by default.
pub const DEFAULT_DIR: &str = "./converge-replicas";

/// The programs a cluster needs; a directory holding them all is a PostgreSQL bin directory.
const TOOLS: [&str; 4] = ["initdb", "pg_ctl", "pg_basebackup", "postgres"];

/// The record of a cluster in its directory.
const STATE_FILE: &str = "cluster.json";

/// `pg_ctl -w` waits this long for a node to start or stop: a standby replays what it
/// missed before it accepts connections, which takes seconds after a long stop on two cores.
const PG_CTL_WAIT_S: u32 = 120;

/// How often [`Cluster::wait_streaming`] asks the primary: a standby connects within
/// milliseconds to a second; asking 20 times a second costs nothing and waits little.
const STREAMING_POLL: Duration = Duration::from_millis(50);

/// How long [`Cluster::wait_streaming`] waits by default for every standby to stream: a
/// standby connects within a second of starting; the rest is slack for a loaded machine.
pub const STREAMING_WAIT: Duration = Duration::from_secs(30);

/// What can go wrong with a cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL's server programs ({}) were not found (looked in: {looked}). Nothing is \
         downloaded: install them (Debian/Ubuntu: `apt-get install postgresql`), or name \
         their directory with --pg-bin or CONVERGE_PG_BIN",
        TOOLS.join(", ")
    )]
    BinariesMissing { looked: String },
    #[error(
        "running as root, and there is no `postgres` user to run PostgreSQL as (it refuses \
         to run as root): `apt-get install postgresql` creates one, or run as another user"
    )]
    NoPostgresUser,
    #[error("the `postgres` user cannot write {0}: pick a --dir whose parents it can enter")]
    NotReachable(PathBuf),
    #[error(
        "{0} holds no cluster ({STATE_FILE} is missing): start one with `converge replicas up`"
    )]
    NotACluster(PathBuf),
    #[error("{0} exists and is not a cluster directory: pick another --dir, or empty it")]
    DirInUse(PathBuf),
    #[error("{dir} holds a cluster of {has} standbys, not {asked}: `down --remove` it first")]
    CountMismatch {
        dir: PathBuf,
        has: usize,
        asked: usize,
    },
    #[error("port {0} on 127.0.0.1 is taken: pick another --port")]
    PortTaken(u16),
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        command: String,
        status: String,
        output: String,
    },
    #[error("standbys not streaming after {waited:?}: {missing:?} (see their logs in {dir})")]
    NotStreaming {
        waited: Duration,
        missing: Vec<String>,
        dir: PathBuf,
    },
    #[error("{STATE_FILE}: {0}")]
    State(#[from] serde_json::Error),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A directory holding PostgreSQL's server programs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgBin(PathBuf);

impl PgBin {
    /// Finds the server programs: `explicit` (a `--pg-bin` flag) if given, else
    /// `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin` (Debian keeps them
    /// off the PATH), else the PATH.
    pub fn find(explicit: Option<&Path>) -> Result<Self, ClusterError> {
        let mut looked = Vec::new();
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(dir) = explicit {
            candidates.push(dir.to_path_buf());
        } else {
            if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
                let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
                if out.status.success() && !dir.is_empty() {
                    candidates.push(dir.into());
                }
            } else {
                looked.push("pg_config (not on the PATH)".to_string());
            }
            candidates.extend(debian_bins());
            if let Some(path) = std::env::var_os("PATH") {
                candidates.extend(std::env::split_paths(&path));
            }
        }
        for dir in candidates {
            if TOOLS.iter().all(|t| dir.join(t).is_file()) {
                return Ok(Self(dir));
            }
            looked.push(dir.display().to_string());
        }
        if looked.is_empty() {
            looked.push("nowhere: no candidate directory".to_string());
        }
        Err(ClusterError::BinariesMissing {
            looked: looked.join(", "),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.0
    }

    fn tool(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// `postgres --version`, e.g. `postgres (PostgreSQL) 15.19`.
    pub fn version(&self) -> Result<String, ClusterError> {
        let out = run(Command::new(self.tool("postgres")).arg("--version"))?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

/// `/usr/lib/postgresql/<version>/bin`, newest version first.
fn debian_bins() -> Vec<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.0));
    versions.into_iter().map(|(_, p)| p).collect()
}

/// Who the server programs run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunAs {
    /// Whoever runs this (not root).
    Me,
    /// Run as root: the `postgres` user, through `runuser`.
    Postgres { uid: u32, gid: u32 },
}

impl RunAs {
    fn detect() -> Result<Self, ClusterError> {
        // The owner of /proc/self is this process's effective user: no unsafe `geteuid`.
        if fs::metadata("/proc/self")?.uid() != 0 {
            return Ok(RunAs::Me);
        }
        let id = |flag: &str| -> Option<u32> {
            let out = Command::new("id").args([flag, SUPERUSER]).output().ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().parse().ok())?
        };
        match (id("-u"), id("-g")) {
            (Some(uid), Some(gid)) => Ok(RunAs::Postgres { uid, gid }),
            _ => Err(ClusterError::NoPostgresUser),
        }
    }

    fn command(self, program: impl AsRef<OsStr>) -> Command {
        match self {
            RunAs::Me => Command::new(program),
            RunAs::Postgres { .. } => {
                let mut c = Command::new("runuser");
                c.args(["-u", SUPERUSER, "--"]).arg(program);
                c
            }
        }
    }

    /// Hands `dir` to the user the servers run as.
    fn own(self, dir: &Path) -> Result<(), ClusterError> {
        if let RunAs::Postgres { uid, gid } = self {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
        }
        Ok(())
    }
}

/// Runs a command, failing with its output when it fails.
fn run(command: &mut Command) -> Result<Output, ClusterError> {
    let text = format!("{command:?}").replace('"', "");
    let out = command.output().map_err(|source| ClusterError::Spawn {
        program: text.clone(),
        source,
    })?;
    if out.status.success() {
        return Ok(out);
    }
    let mut output = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if output.is_empty() {
        output = String::from_utf8_lossy(&out.stdout).trim().to_string();
    }
    Err(ClusterError::Command {
        command: text,
        status: out.status.to_string(),
        output,
    })
}

/// A node's part in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Standby,
}

/// One PostgreSQL server of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// `primary`, `replica1`, `replica2`, …: also the standby's `application_name` (what
    /// `synchronous_standby_names` lists) and its replication slot.
    pub name: String,
    pub role: Role,
    pub port: u16,
}

/// How a node is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Clients are disconnected, then a clean shutdown (a primary first sends the standbys
    /// every WAL record).
    Fast,
    /// Killed at once; recovery runs at the next start. For tests' cleanup.
    Immediate,
}

/// What to create.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub dir: PathBuf,
    pub standbys: usize,
    /// The primary's port; standbys take the next ones. `None`: free ports.
    pub port: Option<u16>,
    pub bin: PgBin,
    /// Whether `initdb` and `pg_basebackup` sync their files to disk. Off is faster, for
    /// throw-away clusters (tests): the servers fsync their commits either way.
    pub sync_files: bool,
}

/// A primary with its standbys, as recorded in `<dir>/cluster.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    pub dir: PathBuf,
    pub bin: PgBin,
    /// The primary first, then the standbys in order.
    pub nodes: Vec<Node>,
}

/// `n` free ports on 127.0.0.1, all held until all are found so none repeats; from `base`
/// upwards when given (each must be free).
fn free_ports(n: usize, base: Option<u16>) -> Result<Vec<u16>, ClusterError> {
    let mut held = Vec::with_capacity(n);
    for k in 0..n {
        let port = match base {
            Some(p) => p
                .checked_add(k as u16)
                .ok_or(ClusterError::PortTaken(u16::MAX))?,
            None => 0,
        };
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .map_err(|_| ClusterError::PortTaken(port))?;
        held.push(listener);
    }
    held.iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect::<Result<Vec<_>, ClusterError>>()
}

/// The lab's settings, appended to the primary's `postgresql.conf` (the standbys copy it);
/// each node's port follows them.
const LAB_SETTINGS: &str = "\n# converge replicas: a loopback-only lab cluster\n\
         listen_addresses = '127.0.0.1'\n\
         # no Unix socket: nothing in the machine's shared socket directory\n\
         unix_socket_directories = ''\n\
         # writers, probes, watchers and sessions of a bench, with room to spare\n\
         max_connections = 200\n\
         shared_buffers = '64MB'\n\
         wal_level = replica\n\
         max_wal_senders = 16\n\
         max_replication_slots = 16\n\
         hot_standby = on\n\
         # the policy (synchronous_standby_names, synchronous_commit) is set per run with ALTER SYSTEM\n\
         synchronous_commit = on\n";

impl Cluster {
    /// Creates and starts a cluster in `options.dir` (created; it must be empty or absent):
    /// `initdb` the primary, start it, create the [`DATABASE`], then per standby a
    /// `pg_basebackup -R` with its own slot, started as a hot standby. Waits until every standby
    /// streams.
    pub fn create(options: &ClusterOptions) -> Result<Self, ClusterError> {
        let run_as = RunAs::detect()?;
        // A given --port is checked first, so that a taken one leaves nothing behind. Free
        // ports are picked each just before its node starts: a port found free and released is
        // free for anyone, and initdb or a base backup in between would widen that window.
        let ports = match options.port {
            Some(_) => free_ports(options.standbys + 1, options.port)?,
            None => vec![0; options.standbys + 1],
        };
        fs::create_dir_all(&options.dir)?;
        let dir = options.dir.canonicalize()?;
        if fs::read_dir(&dir)?.next().is_some() {
            return Err(ClusterError::DirInUse(dir));
        }
        run_as.own(&dir)?;
        if run_as != RunAs::Me {
            let reachable = run_as.command("test").args(["-w"]).arg(&dir).status();
            if !reachable.is_ok_and(|s| s.success()) {
                return Err(ClusterError::NotReachable(dir));
            }
        }
        let mut nodes = vec![Node {
            name: "primary".to_string(),
            role: Role::Primary,
            port: ports[0],
        }];
        nodes.extend((1..=options.standbys).map(|k| Node {
            name: format!("replica{k}"),
            role: Role::Standby,
            port: ports[k],
        }));
        let mut cluster = Self {
            dir,
            bin: options.bin.clone(),
            nodes,
        };
        cluster.save()?;
        cluster.init_primary(run_as, options.sync_files)?;
        cluster.settle_port(0)?;
        cluster.start_node(0)?;
        cluster.create_database(run_as)?;
        for i in 1..cluster.nodes.len() {
            cluster.clone_standby(run_as, i, options.sync_files)?;
            cluster.settle_port(i)?;
            cluster.start_node(i)?;
        }
        Ok(cluster)
    }

    /// Gives node `i` a free port if it has none yet, and writes its port in its configuration
    /// (last in `postgresql.conf`, so a standby's overrides the primary's it copied) and in
    /// `cluster.json`.
    fn settle_port(&mut self, i: usize) -> Result<(), ClusterError> {
        if self.nodes[i].port == 0 {
            self.nodes[i].port = free_ports(1, None)?[0];
        }
        let node = &self.nodes[i];
        let conf = self.data_dir(i).join("postgresql.conf");
        append(
            &conf,
            &format!(
                "\n# converge replicas: {}\nport = {}\n",
                node.name, node.port
            ),
        )?;
        self.save()
    }

    /// The cluster recorded in `dir`.
    pub fn load(dir: &Path) -> Result<Self, ClusterError> {
        let file = dir.join(STATE_FILE);
        let text = fs::read_to_string(&file).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ClusterError::NotACluster(dir.to_path_buf()),
            _ => e.into(),
        })?;
        Ok(serde_json::from_str(&text)?)
    }

    /// Whether `dir` holds a cluster.
    pub fn exists(dir: &Path) -> bool {
        dir.join(STATE_FILE).is_file()
    }

    fn save(&self) -> Result<(), ClusterError> {
        fs::write(
            self.dir.join(STATE_FILE),
            serde_json::to_string_pretty(self)?,
        )?;
        Ok(())
    }

    /// The primary.
    pub fn primary(&self) -> &Node {
        &self.nodes[0]
    }

    /// The standbys, in order.
    pub fn standbys(&self) -> &[Node] {
        &self.nodes[1..]
    }

    /// The standbys' names, as `synchronous_standby_names` lists them.
    pub fn standby_names(&self) -> Vec<String> {
        self.standbys().iter().map(|n| n.name.clone()).collect()
    }

    /// Node `i`'s data directory.
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.join(&self.nodes[i].name)
    }

    /// Node `i`'s server log.
    pub fn log_file(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.log", self.nodes[i].name))
    }

    /// Node `i`'s URL, for clients. (A standby's `application_name`, what
    /// `synchronous_standby_names` lists, is its node name: the name its WAL receiver gives the
    /// primary, not one for clients to take.)
    pub fn url(&self, i: usize) -> String {
        format!(
            "postgres://{SUPERUSER}@127.0.0.1:{}/{DATABASE}",
            self.nodes[i].port
        )
    }

    /// Node `i` as a libpq key-value string, for `tokio_postgres::connect`.
    pub fn conninfo(&self, i: usize) -> String {
        format!(
            "host=127.0.0.1 port={} user={SUPERUSER} dbname={DATABASE} application_name=converge-{}",
            self.nodes[i].port, self.nodes[i].name
        )
    }

    fn init_primary(&self, run_as: RunAs, sync_files: bool) -> Result<(), ClusterError> {
        let mut initdb = run_as.command(self.bin.tool("initdb"));
        initdb
            .current_dir(&self.dir)
            .arg("-D")
            .arg(self.data_dir(0))
            .args(["-U", SUPERUSER, "--auth=trust", "--encoding=UTF8"]);
        if !sync_files {
            initdb.arg("--no-sync");
        }
        run(&mut initdb)?;
        let conf = self.data_dir(0).join("postgresql.conf");
        append(&conf, LAB_SETTINGS)
    }

    fn create_database(&self, run_as: RunAs) -> Result<(), ClusterError> {
        let port = self.nodes[0].port.to_string();
        run(run_as
            .command(self.bin.dir().join("createdb"))
            .current_dir(&self.dir)
            .args(["-h", "127.0.0.1", "-p", &port, "-U", SUPERUSER, DATABASE]))?;
        Ok(())
    }

    fn clone_standby(&self, run_as: RunAs, i: usize, sync_files: bool) -> Result<(), ClusterError> {
        let node = &self.nodes[i];
        let source = format!(
            "host=127.0.0.1 port={} user={SUPERUSER} application_name={}",
            self.nodes[0].port, node.name
        );
        let mut backup = run_as.command(self.bin.tool("pg_basebackup"));
        backup
            .current_dir(&self.dir)
            .arg("-d")
            .arg(&source)
            .arg("-D")
            .arg(self.data_dir(i))
            // -R: standby.signal and primary_conninfo (with the application_name above);
            // -C -S: a slot of its own, so the primary keeps the WAL a stopped standby misses.
            .args([
                "-R",
                "-X",
                "stream",
                "-C",
                "-S",
                &node.name,
                "--checkpoint=fast",
            ]);
        if !sync_files {
            backup.arg("--no-sync");
        }
        run(&mut backup).map(|_| ())
    }

    fn pg_ctl(&self, i: usize) -> Result<Command, ClusterError> {
        let mut c = RunAs::detect()?.command(self.bin.tool("pg_ctl"));
        c.current_dir(&self.dir).arg("-D").arg(self.data_dir(i));
        Ok(c)
    }

    /// Starts node `i` unless it runs; waits until it accepts connections.
    pub fn start_node(&self, i: usize) -> Result<(), ClusterError> {
        if self.is_running(i)? {
            return Ok(());
        }
        let mut c = self.pg_ctl(i)?;
        c.arg("-l")
            .arg(self.log_file(i))
            .args(["-w", "-t", &PG_CTL_WAIT_S.to_string(), "start"]);
        run(&mut c).map(|_| ())
    }

    /// Stops node `i` if it runs.
    pub fn stop_node(&self, i: usize, mode: StopMode) -> Result<(), ClusterError> {
        if !self.is_running(i)? {
            return Ok(());
        }
        let mode = match mode {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        };
        let mut c = self.pg_ctl(i)?;
        c.args(["-w", "-t", &PG_CTL_WAIT_S.to_string(), "-m", mode, "stop"]);
        run(&mut c).map(|_| ())
    }

    /// Whether node `i`'s server runs (`pg_ctl status`).
    pub fn is_running(&self, i: usize) -> Result<bool, ClusterError> {
        let mut c = self.pg_ctl(i)?;
        let status = c
            .arg("status")
            .output()
            .map_err(|source| ClusterError::Spawn {
                program: "pg_ctl status".to_string(),
                source,
            })?
            .status;
        Ok(status.success())
    }

    /// Starts every node that does not run, the primary first.
    pub fn start(&self) -> Result<(), ClusterError> {
        (0..self.nodes.len()).try_for_each(|i| self.start_node(i))
    }

    /// Stops every node, the primary first: a primary stopping `fast` sends its standbys every
    /// record before it exits, so they stop with everything it had.
    pub fn stop(&self, mode: StopMode) -> Result<(), ClusterError> {
        let mut first_error = None;
        for i in 0..self.nodes.len() {
            if let Err(e) = self.stop_node(i, mode) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Waits until every standby streams from the primary (`pg_stat_replication`), at most
    /// `timeout`.
    pub async fn wait_streaming(&self, timeout: Duration) -> Result<(), ClusterError> {
        let started = Instant::now();
        loop {
            let missing = match crate::db::connect(&self.conninfo(0)).await {
                Ok(primary) => {
                    let rows = primary
                        .query(
                            "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'",
                            &[],
                        )
                        .await?;
                    let streaming: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
                    self.standby_names()
                        .into_iter()
                        .filter(|n| !streaming.contains(n))
                        .collect()
                }
                Err(_) => vec![self.nodes[0].name.clone()],
            };
            if missing.is_empty() {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(ClusterError::NotStreaming {
                    waited: timeout,
                    missing,
                    dir: self.dir.clone(),
                });
            }
            tokio::time::sleep(STREAMING_POLL).await;
        }
    }
}

fn append(file: &Path, text: &str) -> Result<(), ClusterError> {
    use std::io::Write;
    let mut f = fs::OpenOptions::new().append(true).open(file)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// A cluster that is stopped when dropped (immediately: it is thrown away), in a temporary
/// directory removed after it. For tests and for a bench that brings its own cluster.
pub struct OwnedCluster {
    cluster: Cluster,
    /// Dropped after the servers are stopped (fields drop after `Drop::drop`).
    _dir: Option<tempfile::TempDir>,
}

impl OwnedCluster {
    /// A fresh cluster with `standbys` hot standbys on free ports, in a new temporary directory.
    pub fn temporary(bin: PgBin, standbys: usize, sync_files: bool) -> Result<Self, ClusterError> {
        let temp = tempfile::Builder::new()
            .prefix("converge-replicas-")
            .tempdir()?;
        // The `postgres` user must enter it when the servers run as that user.
        fs::set_permissions(temp.path(), fs::Permissions::from_mode(0o755))?;
        let options = ClusterOptions {
            dir: temp.path().join("cluster"),
            standbys,
            port: None,
            bin,
            sync_files,
        };
        let cluster = match Cluster::create(&options) {
            Ok(c) => c,
            Err(e) => {
                // Whatever started must not outlive the directory.
                if let Ok(c) = Cluster::load(&options.dir) {
                    let _ = c.stop(StopMode::Immediate);
                }
                return Err(e);
            }
        };
        Ok(Self {
            cluster,
            _dir: Some(temp),
        })
    }
}

impl std::ops::Deref for OwnedCluster {
    type Target = Cluster;

    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

impl Drop for OwnedCluster {
    fn drop(&mut self) {
        let _ = self.cluster.stop(StopMode::Immediate);
    }
}
