//! Each guard against its real server: startup, data across restarts and crashes,
//! isolation helpers, and cleanup on drop.

mod helpers;
mod nats;
mod oauth_server;
mod openbao;
mod ports;
mod postgres;
mod slow_disk;
mod wordpress;
