//! Bridge settings.

use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;
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
    /// Most bytes a WebSocket client may send before its `auth` message is
    /// accepted: the message with its frame headers, and any control
    /// frames. More, or a frame announcing more, is refused with 1009 and
    /// never buffered.
    pub max_auth_message_bytes: usize,
    /// Largest frame, and largest message, a client may send once
    /// authenticated (the bridge ignores what it sends then); larger is
    /// refused with 1009.
    pub max_message_bytes: usize,
    /// Most open sessions (WebSocket and SSE) holding the same token; one
    /// more is refused (4029, or 429 for SSE). 0 for no limit.
    pub max_sessions_per_token: usize,
    /// Most open connections to `/ws` and `/events` from one client address
    /// (an IPv6 client counts by its /64), authenticated or not; one more is
    /// refused (4029, or 429 for SSE). 0 for no limit.
    pub max_sessions_per_address: usize,
    /// A request header that holds the client's address, set by a proxy in
    /// front of the bridge (`X-Forwarded-For`: its last entry counts, the
    /// one the proxy appended). Without it the TCP peer's address counts,
    /// and behind a proxy every client would share the proxy's. Set it only
    /// when every request comes through such a proxy: clients can write it
    /// themselves.
    pub client_address_header: Option<String>,
    /// The networks of the proxies whose `client_address_header` counts: a
    /// request from any other peer counts by the peer's own address, so a
    /// client that reaches the bridge directly cannot choose its address
    /// by writing the header. Loopback and the private networks
    /// (10/8, 172.16/12, 192.168/16, fc00::/7) by default. From the
    /// environment, an array: `FLEET_BRIDGE__TRUSTED_PROXIES=["10.0.0.0/8"]`.
    pub trusted_proxies: Vec<IpNet>,
    /// Seconds a client has to send a request's line and headers, from when
    /// its connection opens or its previous response ends; slower, or
    /// silent, connections are closed.
    pub header_read_timeout_seconds: u64,
    /// Seconds an HTTP connection may move no byte either way before it is
    /// closed. Must exceed `ping_interval_seconds` (an SSE stream without
    /// events sends a keep-alive that often) and `request_timeout_seconds`.
    /// A WebSocket, once upgraded, is watched by its pings instead.
    pub idle_timeout_seconds: u64,
    /// Seconds `/ws` and `/events` have to answer (authenticate and read
    /// the snapshot), else 408. The streams that follow are not limited.
    pub request_timeout_seconds: u64,
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
            max_auth_message_bytes: 4 * 1024,
            max_message_bytes: 64 * 1024,
            max_sessions_per_token: 16,
            max_sessions_per_address: 64,
            client_address_header: None,
            trusted_proxies: [
                "127.0.0.0/8",
                "::1/128",
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "fc00::/7",
            ]
            .iter()
            .filter_map(|network| network.parse().ok())
            .collect(),
            header_read_timeout_seconds: 10,
            idle_timeout_seconds: 60,
            request_timeout_seconds: 30,
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

    pub(crate) fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_seconds)
    }

    pub(crate) fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_seconds)
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds)
    }
}
