//! A server child process, its working directory and its log.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};
use tempfile::TempDir;
use tokio::time::Instant;

/// How often a readiness probe is retried.
const PROBE_INTERVAL: Duration = Duration::from_millis(10);

/// How long [`Process::stop`] waits for the process to exit before killing it.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How many log lines a startup failure shows.
const LOG_TAIL_LINES: usize = 30;

/// The free space `/dev/shm` needs for server data to go there: a container's
/// default of 64 MiB fills up with a few PostgreSQL clusters.
const MIN_SHM_FREE_BYTES: u64 = 1 << 30;

/// A running server process whose stdout and stderr go to a log file.
///
/// Dropping it kills the process and its children (`SIGKILL`) and waits for them,
/// so a server never outlives its guard, even when a test panics. With `TEST_LOG`
/// set, the process's part of the log is printed when it ends.
#[derive(Debug)]
pub(crate) struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
    /// Where this process's output starts in the log, which restarts append to.
    log_start: u64,
}

impl Process {
    /// Spawns `command` and waits until `ready` returns true.
    ///
    /// # Errors
    ///
    /// Fails when the process exits first (marked [`StartError::port_taken`] when it
    /// could not bind its port) or when `timeout` passes; the process is killed then.
    ///
    /// # Panics
    ///
    /// Panics when the log file cannot be opened or the binary cannot be started.
    pub(crate) async fn start<F>(
        name: &'static str,
        command: Command,
        log: &Path,
        timeout: Duration,
        mut ready: impl FnMut() -> F,
    ) -> Result<Self, StartError>
    where
        F: Future<Output = bool>,
    {
        let mut process = Self::spawn(name, command, log);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = process.exited() {
                return Err(process.start_error(&format!("{name} exited with {status}")));
            }
            if tokio::time::timeout_at(deadline, ready()).await == Ok(true) {
                // The probe may have reached another server that took the port first;
                // ours then exits, and the next round reports it.
                if process.exited().is_none() {
                    return Ok(process);
                }
                continue;
            }
            if Instant::now() >= deadline {
                let message = format!("{name} was not ready within {timeout:?}");
                return Err(process.start_error(&message));
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }

    fn spawn(name: &'static str, mut command: Command, log: &Path) -> Self {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()));
        let log_start = file
            .metadata()
            .unwrap_or_else(|e| panic!("cannot stat {}: {e}", log.display()))
            .len();
        let stderr = file
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot duplicate the handle of {}: {e}", log.display()));
        let child = command
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        Self {
            name,
            child,
            log: log.to_path_buf(),
            log_start,
        }
    }

    /// Sends `signal` and waits for the process to exit, killing it after a grace period.
    pub(crate) fn stop(&mut self, signal: Signal) {
        if self.exited().is_some() {
            return;
        }
        // The process may exit between the check and the signal; the wait below covers that.
        let _ = kill_process(Pid::from_child(&self.child), signal);
        let deadline = std::time::Instant::now() + STOP_TIMEOUT;
        while self.exited().is_none() {
            if std::time::Instant::now() >= deadline {
                self.kill();
                return;
            }
            std::thread::sleep(PROBE_INTERVAL);
        }
    }

    /// Kills the process and its child processes with `SIGKILL` and waits until they
    /// are gone.
    ///
    /// The children matter for PHP's built-in web server, whose workers survive their
    /// parent and keep serving its port; PostgreSQL's backends exit on their own.
    pub(crate) fn kill(&mut self) {
        // Read before the kill: orphans get a new parent and can no longer be found.
        // Only while the process is unreaped, so its id cannot belong to another one.
        let children = match self.child.try_wait() {
            Ok(None) => child_pids(self.child.id()),
            _ => Vec::new(),
        };
        // Killing an exited process fails harmlessly; wait reaps it either way.
        let _ = self.child.kill();
        let _ = self.child.wait();
        for &pid in &children {
            let _ = kill_process(pid, Signal::KILL);
        }
        let deadline = std::time::Instant::now() + STOP_TIMEOUT;
        while children.iter().any(|&pid| is_running(pid)) && std::time::Instant::now() < deadline {
            std::thread::sleep(PROBE_INTERVAL);
        }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .try_wait()
            .unwrap_or_else(|e| panic!("cannot check on {}: {e}", self.name))
    }

    fn start_error(&mut self, message: &str) -> StartError {
        self.kill();
        let output = self.output();
        let skip = output.lines().count().saturating_sub(LOG_TAIL_LINES);
        let tail = output.lines().skip(skip).collect::<Vec<_>>().join("\n");
        StartError {
            port_taken: output.to_lowercase().contains("address already in use"),
            message: format!("{message}; last lines of its log:\n{tail}"),
        }
    }

    /// This process's part of the log.
    fn output(&self) -> String {
        let mut output = String::new();
        // A log that cannot be read leaves the message without its tail, which is all
        // that can be done while reporting another failure.
        let _ = File::open(&self.log).and_then(|mut file| {
            file.seek(SeekFrom::Start(self.log_start))?;
            file.read_to_string(&mut output)
        });
        output
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if echo_logs() {
            eprintln!("----- {} log -----\n{}", self.name, self.output());
        }
    }
}

/// The child processes of `pid`, from Linux's `/proc/<pid>/task/*/children`; none
/// where that is missing.
fn child_pids(pid: u32) -> Vec<Pid> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|children| {
            children
                .split_whitespace()
                .filter_map(|child| Pid::from_raw(child.parse().ok()?))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Whether `pid` is alive and not a zombie: a zombie has closed its files and ports,
/// and only waits for its new parent to reap it.
fn is_running(pid: Pid) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero())) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may hold spaces.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X") | None)
}

#[expect(
    clippy::disallowed_methods,
    reason = "TEST_LOG switches on server logs in tests"
)]
fn echo_logs() -> bool {
    std::env::var_os("TEST_LOG").is_some()
}

/// Why a server did not start.
#[derive(Debug)]
pub(crate) struct StartError {
    /// The server could not bind a port: another process took it after
    /// [`free_ports`](crate::ports::free_ports) found it free.
    pub(crate) port_taken: bool,
    /// What happened, with the end of the server's log.
    pub(crate) message: String,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Creates the temporary directory that holds one server's data and log.
///
/// See [`data_root`] for where.
///
/// # Panics
///
/// Panics when the directory cannot be created.
pub(crate) fn work_dir(server: &str) -> TempDir {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    let root = ROOT.get_or_init(data_root);
    tempfile::Builder::new()
        .prefix(&format!("fleet-testkit-{server}-"))
        .tempdir_in(root)
        .unwrap_or_else(|e| {
            panic!(
                "cannot create a directory for {server} in {}: {e}",
                root.display()
            )
        })
}

/// `$TMPDIR` when it is set; otherwise memory-backed `/dev/shm` when it has room,
/// because on a disk-backed `/tmp` a PostgreSQL guard starts several times slower
/// (it copies a template cluster) and `CREATE DATABASE` too; otherwise `/tmp`.
#[expect(
    clippy::disallowed_methods,
    reason = "TMPDIR is the user's choice of temporary directory"
)]
fn data_root() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let shm_has_room = || {
        rustix::fs::statvfs(shm)
            .is_ok_and(|fs| fs.f_bavail.saturating_mul(fs.f_frsize) >= MIN_SHM_FREE_BYTES)
    };
    if std::env::var_os("TMPDIR").is_none() && shm_has_room() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// An HTTP client for probes and admin calls.
///
/// It keeps no idle connections, so a guard shared by tests on different Tokio
/// runtimes never reuses a connection whose runtime is gone.
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_else(|e| panic!("cannot build an HTTP client: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[tokio::test]
    async fn a_process_that_cannot_bind_reports_a_taken_port_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let script = "echo starting; echo 'listen tcp 127.0.0.1:4: bind: address already in use' >&2; exit 1";
        let log = dir.path().join("server.log");

        let started = Process::start(
            "sh",
            shell(script),
            &log,
            Duration::from_secs(5),
            async || false,
        )
        .await;

        let error = started.unwrap_err();
        assert!(error.port_taken);
        assert!(
            error.message.starts_with("sh exited with exit status: 1"),
            "{error}"
        );
        assert!(
            error
                .message
                .ends_with("starting\nlisten tcp 127.0.0.1:4: bind: address already in use"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_process_that_never_gets_ready_is_killed_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");

        let started = Process::start(
            "sh",
            shell("sleep 30"),
            &log,
            Duration::from_millis(100),
            async || false,
        )
        .await;

        let error = started.unwrap_err();
        assert!(!error.port_taken);
        assert!(
            error.message.starts_with("sh was not ready within 100ms"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_restarted_process_reports_only_its_own_part_of_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        std::fs::write(&log, "address already in use, an earlier run said\n").unwrap();

        let started = Process::start(
            "sh",
            shell("echo crashed; exit 3"),
            &log,
            Duration::from_secs(5),
            async || false,
        )
        .await;

        let error = started.unwrap_err();
        assert!(!error.port_taken, "{error}");
        assert!(
            error.message.ends_with("last lines of its log:\ncrashed"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn stop_sends_the_signal_and_waits_for_the_exit() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        let script =
            "trap 'echo interrupted; exit 0' INT; echo ready; while :; do sleep 0.01; done";
        // Ready once the trap is set, or the signal would end the shell unhandled.
        let trapping =
            async || std::fs::read_to_string(&log).is_ok_and(|log| log.contains("ready"));
        let mut process =
            Process::start("sh", shell(script), &log, Duration::from_secs(5), trapping)
                .await
                .unwrap();

        process.stop(Signal::INT);

        assert!(process.exited().unwrap().success());
    }
}
