//! The cluster commands, `up`, `status` and `down`, as `converge replicas` runs them.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use replicas::cli::{Command, DirArgs, DownArgs, PgBinArgs, UpArgs};
use replicas::cluster::{Cluster, PgBin, StopMode};
use replicas::{Args, run};

/// Stops whatever a failed test left running in `dir`.
struct StopOnDrop(PathBuf);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Ok(c) = Cluster::load(&self.0) {
            let _ = c.stop(StopMode::Immediate);
        }
    }
}

fn up(dir: &Path, count: usize) -> Args {
    Args {
        command: Command::Up(UpArgs {
            count,
            dir: DirArgs {
                dir: dir.to_path_buf(),
            },
            port: None,
            pg_bin: PgBinArgs { pg_bin: None },
        }),
    }
}

fn down(dir: &Path, remove: bool) -> Args {
    Args {
        command: Command::Down(DownArgs {
            dir: DirArgs {
                dir: dir.to_path_buf(),
            },
            remove,
        }),
    }
}

fn status(dir: &Path) -> Args {
    Args {
        command: Command::Status(DirArgs {
            dir: dir.to_path_buf(),
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_status_down() {
    if common::pg_bin().is_none() {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = temp.path().join("lab");
    let _guard = StopOnDrop(dir.clone());

    assert_eq!(run(up(&dir, 1)).await.unwrap(), ExitCode::SUCCESS);
    let cluster = Cluster::load(&dir).unwrap();
    assert_eq!(cluster.standby_names(), ["replica1"]);
    assert!((0..2).all(|i| cluster.is_running(i).unwrap()));
    let port = cluster.nodes[1].port;
    assert_eq!(
        cluster.url(1),
        format!("postgres://postgres@127.0.0.1:{port}/converge")
    );
    assert_eq!(run(status(&dir)).await.unwrap(), ExitCode::SUCCESS);

    // Up again: the same cluster, still up; asking for another size is refused.
    assert_eq!(run(up(&dir, 1)).await.unwrap(), ExitCode::SUCCESS);
    assert_eq!(Cluster::load(&dir).unwrap(), cluster);
    assert!(run(up(&dir, 3)).await.is_err());

    assert_eq!(run(down(&dir, false)).await.unwrap(), ExitCode::SUCCESS);
    assert!((0..2).all(|i| !cluster.is_running(i).unwrap()));
    assert_eq!(
        run(status(&dir)).await.unwrap(),
        ExitCode::FAILURE,
        "stopped is not healthy"
    );

    // Up restarts the stopped nodes; down --remove takes the directory away.
    assert_eq!(run(up(&dir, 1)).await.unwrap(), ExitCode::SUCCESS);
    assert!(cluster.is_running(1).unwrap());
    assert_eq!(run(down(&dir, true)).await.unwrap(), ExitCode::SUCCESS);
    assert!(!dir.exists());
}

#[test]
fn missing_binaries_say_what_to_install() {
    let error = PgBin::find(Some(Path::new("/nonexistent/bin")))
        .unwrap_err()
        .to_string();
    assert!(error.contains("apt-get install postgresql"), "{error}");
    assert!(
        error.contains("/nonexistent/bin") && error.contains("--pg-bin"),
        "{error}"
    );
}

#[tokio::test]
async fn commands_on_a_directory_without_a_cluster_say_so() {
    let temp = tempfile::tempdir().unwrap();
    let error = run(status(temp.path())).await.unwrap_err().to_string();
    assert!(error.contains("converge replicas up"), "{error}");
}
