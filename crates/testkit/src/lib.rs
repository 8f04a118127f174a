//! Real servers for integration tests: nats-server with JetStream, OpenBao,
//! PostgreSQL, WordPress and an OAuth 2.0 authorization server, each started on free loopback ports with its data in a
//! temporary directory.
//!
//! Each server is an RAII guard. Starting one waits on a health probe with a
//! deadline (not on log lines), and dropping it kills the server process and
//! removes its data, also when the test panics. `stop`, `kill` and `restart` keep
//! the port and the data, for tests of crashes and reconnects.
//!
//! Start with:
//!
//! - [`NatsServer`]: JetStream with file storage, optionally from a configuration file;
//!   [`NatsCluster`]: three of them clustered over loopback routes.
//! - [`OpenBao`]: initialised and unsealed, with [`OpenBao::new_kv_mount`] for an
//!   isolated KV v2 engine per test.
//! - [`Postgres`]: a cluster copied from a per-machine template, with
//!   [`Postgres::create_database`] for an empty database per test.
//! - [`WordPress`]: a freshly installed site with its own MariaDB, an application
//!   password for the REST API, and [`WordPress::php`] to arrange data behind the
//!   API's back.
//! - [`OAuthServer`]: a standards-compliant OAuth 2.0 / OpenID Connect
//!   authorization server (the npm package `oidc-provider` under Node.js), with
//!   clients for each kind of client authentication, an account, and
//!   [`OAuthServer::consent`] to log in and consent as a browser would.
//! - [`SlowDisk`]: a directory whose writes are slow (a FUSE file system), for a
//!   server's store in tests of a slow disk.
//!
//! And wait for what a test expects with [`eventually`] (or [`within`]): a
//! probe polled until it finds it, with a deadline, never a bare sleep.
//!
//! Binaries come from `$FLEET_TESTKIT_TOOLS`, then `.tools/bin` (filled by
//! `scripts/setup`), then `PATH`; PostgreSQL also from `/usr/lib/postgresql/<newest>/bin`,
//! MariaDB also from `/usr/sbin`, WordPress from `.tools/wordpress`, and
//! `oidc-provider` from `tests/oauth-server/node_modules` (`node` from `PATH`).
//! A missing binary panics with a message that says to run `scripts/setup`. Set
//! `TEST_LOG=1` to print each server's log when it stops; server output is silent
//! otherwise, and only the end of the log shows when a server fails to start.
//!
//! Give each test its own guard rather than a `static` one: statics are never
//! dropped, so their servers would outlive the test binary. Isolation within one
//! server comes from the per-test helpers above.
//!
//! Everything here panics on failure, with a message naming what failed: this is
//! test support, and a panic fails the test at the point of the problem. The crate
//! does not provide fixtures for the fleet's own schema, streams or mounts; those
//! belong to the crates that define them. Servers do not die with the test process
//! when it is killed with `SIGKILL` (a parent-death signal needs `unsafe` in
//! `pre_exec`, which the workspace forbids); they do get the terminal's Ctrl-C,
//! because they stay in the test's process group.
//!
//! ```no_run
//! use fleet_testkit::{NatsServer, Postgres};
//!
//! # async fn example() {
//! let mut nats = NatsServer::start().await;
//! let postgres = Postgres::start().await;
//! let database_url = postgres.create_database().await;
//! // Run the code under test against `nats.url()` and `database_url`, then crash NATS:
//! nats.kill();
//! nats.restart().await;
//! # }
//! ```

#![warn(missing_docs)]

pub mod generated;
mod moto;
mod nats;
mod oauth_server;
mod openbao;
mod ports;
mod postgres;
mod process;
pub mod slow_client;
mod slow_disk;
mod tools;
mod wait;
mod wordpress;

pub use moto::Moto;
pub use nats::{NatsCluster, NatsServer};
pub use oauth_server::{OAuthServer, OAuthServerAccount, OAuthServerClient, OAuthServerOptions};
pub use openbao::{AppRoleCredentials, OpenBao};
pub use ports::free_port;
pub use postgres::Postgres;
pub use slow_disk::SlowDisk;
pub use wait::{eventually, within};
pub use wordpress::{WordPress, WordPressOptions};
