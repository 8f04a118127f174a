//! Bridge settings.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// How the bridge listens and treats its sessions.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address the `fleet bridge` command binds (WebSocket at `/ws`, SSE at `/events`).
    pub listen: SocketAddr,
    /// Events a session may have queued before it is closed as a slow consumer (4008).
    /// Progress events of one connection coalesce, so they take one slot.
    pub queue_size: usize,
    /// Seconds between pings; a session silent for twice as long is dropped, and so is one
    /// whose socket accepts no frame for that long.
    pub ping_interval_seconds: u64,
    /// Seconds a WebSocket client has to send its `auth` message (else 4002).
    pub auth_timeout_seconds: u64,
    /// Most events a reconnecting session may replay; a longer gap gets `resync` ("too old")
    /// and a fresh snapshot, as the stream's limits would. Also the most stream sequences a
    /// snapshot reads back for events the status writer has not stored yet.
    pub max_replay: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8081)),
            queue_size: 256,
            ping_interval_seconds: 20,
            auth_timeout_seconds: 10,
            max_replay: 1000,
        }
    }
}

impl Config {
    pub(crate) fn ping_interval(&self) -> Duration {
        Duration::from_secs(self.ping_interval_seconds.max(1))
    }

    /// How long a session may stay silent, or a send may stay blocked.
    pub(crate) fn dead_after(&self) -> Duration {
        2 * self.ping_interval()
    }

    pub(crate) fn auth_timeout(&self) -> Duration {
        Duration::from_secs(self.auth_timeout_seconds)
    }
}
