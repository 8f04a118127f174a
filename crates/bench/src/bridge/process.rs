//! The `fleet bridge` process under test: spawned from the bench's own
//! binary, so that its memory and CPU are its own.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::Error;

/// How long the bridge may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the bridge may take to close its sessions on SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `fleet bridge`, killed if dropped.
#[derive(Debug)]
pub(crate) struct BridgeChild {
    child: Child,
    pid: u32,
    addr: SocketAddr,
}

impl BridgeChild {
    /// Starts `program bridge` on a free loopback port with the bench's
    /// environment (its `FLEET_NATS__*` and `FLEET_DATABASE__*`) and the
    /// token key `key`, and waits until it listens.
    ///
    /// # Errors
    ///
    /// [`Error::SpawnBridge`], or [`Error::BridgeExited`] when it stops
    /// before listening, [`Error::BridgeNotListening`] when it takes too
    /// long.
    pub(crate) async fn spawn(program: &Path, key: &str) -> Result<Self, Error> {
        let addr = free_port().map_err(Error::SpawnBridge)?;
        let mut child = Command::new(program)
            .arg("bridge")
            .arg("--listen")
            .arg(addr.to_string())
            .env("FLEET_AUTH__KEY", key)
            // Every client comes from loopback, and a tenant's clients may
            // hold the same token: the per-address and per-token session
            // limits would refuse all but a few.
            .env("FLEET_BRIDGE__MAX_SESSIONS_PER_ADDRESS", "0")
            .env("FLEET_BRIDGE__MAX_SESSIONS_PER_TOKEN", "0")
            .env_remove("FLEET_AUTH__ISSUER")
            .env_remove("FLEET_AUTH__AUDIENCE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(Error::SpawnBridge)?;
        let pid = child.id().ok_or(Error::BridgeExited { status: None })?;
        wait_listening(&mut child, addr).await?;
        info!(pid, %addr, "Bridge process listening.");
        Ok(Self { child, pid, addr })
    }

    /// Where it listens.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// A memory figure of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in MB
    /// (10^6 bytes; the file counts KiB).
    pub(crate) fn rss_mb(&self, field: &str) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()?;
        Some((kib * 1024.0 / 100_000.0).round() / 10.0)
    }

    /// Sends SIGTERM and waits for the process to exit; kills it when it
    /// takes too long.
    pub(crate) async fn stop(mut self) {
        let pid = i32::try_from(self.pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid
            && let Err(e) = rustix::process::kill_process(pid, rustix::process::Signal::TERM)
        {
            warn!(error.message = %e, "Could not signal the bridge process.");
        }
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => warn!(%status, "The bridge process exited with a failure."),
            Ok(Err(e)) => warn!(error.message = %e, "Could not wait for the bridge process."),
            Err(_) => {
                warn!("The bridge process did not stop in time; killing it.");
                let _ = self.child.kill().await;
            }
        }
    }
}

/// A loopback address with a port free a moment ago.
fn free_port() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

async fn wait_listening(child: &mut Child, addr: SocketAddr) -> Result<(), Error> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().map_err(Error::SpawnBridge)? {
            return Err(exited(status));
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::BridgeNotListening {
                seconds: START_TIMEOUT.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn exited(status: ExitStatus) -> Error {
    Error::BridgeExited {
        status: Some(status.to_string()),
    }
}
