//! A PostgreSQL cluster on a free loopback port.

use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use rustix::process::Signal;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tempfile::TempDir;
use uuid::Uuid;

use crate::ports::{PortAttempts, free_port};
use crate::process::{Process, StartError, work_dir};
use crate::tools::{self, PostgresTools};

/// How long PostgreSQL may take to accept queries.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// A PostgreSQL cluster with its data in a temporary directory.
///
/// `initdb` takes over a second, so it runs once per machine and PostgreSQL major
/// version, into `target/testkit/pg-template-<major>/`; each guard copies that
/// template and runs `postgres` on it directly (not through `pg_ctl`), so the guard
/// owns the server process. `fsync` and `full_page_writes` are off, which protect
/// only against a crashed machine: committed data survives [`kill`](Self::kill).
///
/// PostgreSQL refuses to run as root. When the tests run as root, `initdb` and
/// `postgres` run as the `postgres` user, who then owns the data.
///
/// Use [`create_database`](Self::create_database) to give each test its own
/// database. Dropping the guard shuts the server down and removes its data.
#[derive(Debug)]
pub struct Postgres {
    dir: TempDir,
    port: u16,
    /// The user that runs the server, when the tests run as root.
    owner: Option<Owner>,
    process: Option<Process>,
}

/// An operating system user and group, by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owner {
    uid: u32,
    gid: u32,
}

impl Postgres {
    /// Starts a PostgreSQL cluster on a free port and waits until it answers a query.
    ///
    /// The first start on a machine also creates the template cluster.
    ///
    /// # Panics
    ///
    /// Panics when the PostgreSQL server binaries are not installed, when the tests
    /// run as root and there is no `postgres` user, when `initdb` fails, or when the
    /// server does not answer within 15 s; the message holds the end of its log.
    pub async fn start() -> Self {
        let owner = server_user();
        let dir = work_dir("postgres");
        let data = dir.path().join("data");
        copy_tree(template(owner), &data, owner).unwrap_or_else(|e| {
            panic!(
                "cannot copy the template cluster to {}: {e}",
                data.display()
            )
        });
        // The directory holds the socket and must be the server user's to write it.
        chown(dir.path(), owner)
            .unwrap_or_else(|e| panic!("cannot hand {} to postgres: {e}", dir.path().display()));
        let mut postgres = Self {
            dir,
            port: free_port(),
            owner,
            process: None,
        };
        let mut attempts = PortAttempts::default();
        while let Err(e) = postgres.spawn().await {
            attempts.retry(&e);
            postgres.port = free_port();
        }
        postgres
    }

    async fn spawn(&mut self) -> Result<(), StartError> {
        let mut command = Command::new(tools::postgres().bin_dir.join("postgres"));
        command
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string()])
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1"])
            // Without fsync, a commit still reaches the operating system before it
            // returns, so committed data survives a crashed server (not a crashed
            // machine). synchronous_commit stays on: off, a commit returns before its
            // WAL leaves the server's memory, and a crash loses it.
            .args(["-c", "fsync=off"])
            .args(["-c", "full_page_writes=off"]);
        run_as(&mut command, self.dir.path(), self.owner);
        let log = self.dir.path().join("server.log");
        let url = self.url();
        let ready = || answers_queries(&url);
        let process = Process::start("postgres", command, &log, READY_TIMEOUT, ready).await?;
        self.process = Some(process);
        Ok(())
    }

    /// The URL of the `postgres` database as superuser `postgres`:
    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    /// The server port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temporary directory holding the cluster (`data/`), the socket and `server.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Creates an empty database with a unique name, `test_<uuid>`, and returns its URL.
    ///
    /// # Panics
    ///
    /// Panics when the server cannot be reached or refuses to create the database.
    pub async fn create_database(&self) -> String {
        let name = format!("test_{}", Uuid::new_v4().simple());
        let url = self.url();
        let mut connection = PgConnection::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
        sqlx::raw_sql(AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .execute(&mut connection)
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        connection
            .close()
            .await
            .unwrap_or_else(|e| panic!("cannot close the connection to {url}: {e}"));
        self.database_url(&name)
    }

    fn database_url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Shuts the server down in PostgreSQL's fast mode (`SIGINT`: sessions end, a
    /// checkpoint runs) and waits for it, keeping its data.
    ///
    /// Does nothing when the server is not running.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop(Signal::INT);
        }
    }

    /// Crashes the server: PostgreSQL's immediate mode (`SIGQUIT`: every server process
    /// exits at once, without a checkpoint), so the next start runs crash recovery.
    /// Returns once every server process is gone; keeps the data.
    ///
    /// `SIGKILL` would leave the server's child processes running until they notice,
    /// and a new server refuses to start while they hold the old shared memory.
    ///
    /// Does nothing when the server is not running.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop(Signal::QUIT);
        }
    }

    /// Stops the server if it runs, then starts it again on the same port with the
    /// same data, and waits until it answers a query.
    ///
    /// # Panics
    ///
    /// Panics when the server does not answer within 15 s.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await.unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Before the fields drop: the processes must be gone before their directory is removed.
        self.kill();
    }
}

async fn answers_queries(url: &str) -> bool {
    let Ok(mut connection) = PgConnection::connect(url).await else {
        return false;
    };
    let answered = sqlx::raw_sql("SELECT 1")
        .execute(&mut connection)
        .await
        .is_ok();
    // The probe's verdict stands whether or not the goodbye reaches the server.
    let _ = connection.close().await;
    answered
}

/// The template cluster for this machine's PostgreSQL major version, created on first use.
///
/// An exclusive lock on a file next to the template keeps parallel test processes
/// from building it twice, and the build happens in a sibling directory that is
/// renamed into place, so a template that exists is complete.
///
/// # Panics
///
/// Panics when the template cannot be created.
fn template(owner: Option<Owner>) -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let tools = tools::postgres();
        let root = tools::workspace_root().join("target/testkit");
        let template = root.join(format!("pg-template-{}", tools.major));
        if template.is_dir() {
            return template;
        }
        std::fs::create_dir_all(&root)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", root.display()));
        let lock_path = root.join(format!("pg-template-{}.lock", tools.major));
        let lock = File::create(&lock_path)
            .and_then(|lock| lock.lock().map(|()| lock))
            .unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));
        if !template.is_dir() {
            build_template(tools, &root, &template, owner);
        }
        drop(lock);
        template
    })
}

/// Runs `initdb` in a staging directory under `root` and renames the result to `template`.
///
/// # Panics
///
/// Panics when `initdb` fails.
fn build_template(tools: &PostgresTools, root: &Path, template: &Path, owner: Option<Owner>) {
    let staging = tempfile::Builder::new()
        .prefix(".pg-template-")
        .tempdir_in(root)
        .unwrap_or_else(|e| panic!("cannot create a directory in {}: {e}", root.display()));
    chown(staging.path(), owner)
        .unwrap_or_else(|e| panic!("cannot hand {} to postgres: {e}", staging.path().display()));
    let data = staging.path().join("data");
    let mut initdb = Command::new(tools.bin_dir.join("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args(["--auth=trust", "--username=postgres", "--encoding=UTF8"])
        .args(["--locale=C.UTF-8", "--no-sync", "--no-instructions"])
        // 1 MiB WAL segments instead of 16 MiB halve the template, which every guard copies.
        .arg("--wal-segsize=1");
    run_as(&mut initdb, staging.path(), owner);
    let output = initdb
        .output()
        .unwrap_or_else(|e| panic!("cannot run initdb ({initdb:?}): {e}"));
    assert!(
        output.status.success(),
        "initdb failed with {}:\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    std::fs::rename(&data, template)
        .unwrap_or_else(|e| panic!("cannot move the new cluster to {}: {e}", template.display()));
}

/// Runs `command` in `dir`, as `owner` when there is one.
fn run_as(command: &mut Command, dir: &Path, owner: Option<Owner>) {
    command.current_dir(dir);
    if let Some(Owner { uid, gid }) = owner {
        command.uid(uid).gid(gid);
    }
}

/// Copies the directory tree `from` to the new directory `to`, with the same
/// permissions (PostgreSQL insists on a private data directory), owned by `owner`.
fn copy_tree(from: &Path, to: &Path, owner: Option<Owner>) -> io::Result<()> {
    std::fs::create_dir(to)?;
    std::fs::set_permissions(to, std::fs::metadata(from)?.permissions())?;
    chown(to, owner)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target, owner)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
            chown(&target, owner)?;
        }
    }
    Ok(())
}

fn chown(path: &Path, owner: Option<Owner>) -> io::Result<()> {
    let Some(Owner { uid, gid }) = owner else {
        return Ok(());
    };
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
}

/// The `postgres` user when the tests run as root, otherwise `None`: the server
/// then runs as the current user.
///
/// # Panics
///
/// Panics when the tests run as root and `/etc/passwd` has no `postgres` user.
fn server_user() -> Option<Owner> {
    static USER: OnceLock<Option<Owner>> = OnceLock::new();
    *USER.get_or_init(|| {
        if !rustix::process::geteuid().is_root() {
            return None;
        }
        let passwd = std::fs::read_to_string("/etc/passwd")
            .unwrap_or_else(|e| panic!("cannot read /etc/passwd: {e}"));
        let user = find_user(&passwd, "postgres").unwrap_or_else(|| {
            panic!(
                "the tests run as root, which PostgreSQL refuses, and /etc/passwd has no \
                 postgres user to run it as; install PostgreSQL with the system package \
                 manager (scripts/setup does) or run the tests as another user"
            )
        });
        Some(user)
    })
}

/// The user `name` in the text of `/etc/passwd` (`name:x:uid:gid:...`).
fn find_user(passwd: &str, name: &str) -> Option<Owner> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let _password = fields.next()?;
        Some(Owner {
            uid: fields.next()?.parse().ok()?,
            gid: fields.next()?.parse().ok()?,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_user_reads_ids_from_the_matching_line() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      postgresql:x:7:7::/:/bin/false\n\
                      postgres:x:101:104:PostgreSQL administrator:/var/lib/postgresql:/bin/bash\n";
        assert_eq!(
            find_user(passwd, "postgres"),
            Some(Owner { uid: 101, gid: 104 })
        );
        assert_eq!(find_user(passwd, "nobody"), None);
    }
}
