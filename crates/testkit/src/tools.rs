//! Finds the server binaries.
//!
//! Each binary is looked up in `$FLEET_TESTKIT_TOOLS`, then in
//! `<workspace>/.tools/bin` (where `scripts/setup` puts it), then in the
//! directories only that binary uses (Debian's PostgreSQL server directory,
//! `/usr/sbin` for MariaDB), then on `PATH`. WordPress itself is the one
//! `scripts/setup` unpacks into `<workspace>/.tools/wordpress`. Each lookup runs
//! once per process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The oldest nats-server with JetStream message schedules.
const MIN_NATS_SERVER: (u32, u32) = (2, 14);

/// Where the Debian packages put each PostgreSQL major version's server binaries.
const DEBIAN_POSTGRES_ROOT: &str = "/usr/lib/postgresql";

/// Where Debian puts `mariadbd`; a non-root `PATH` often lacks it.
const DEBIAN_SBIN: &str = "/usr/sbin";

/// Where `scripts/setup` unpacks Debian's wordpress package, under the workspace root.
const WORDPRESS_DIR: &str = ".tools/wordpress/usr/share/wordpress";

/// The OAuth 2.0 authorization server's script and its `node_modules`
/// (`npm ci` by `scripts/setup`), under the workspace root.
const OAUTH_SERVER_DIR: &str = "tests/oauth-server";

/// The workspace root, which holds `.tools/` and `target/`.
pub(crate) fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/testkit lies two levels below the workspace root")
}

/// The `nats-server` binary, at least v2.14.
///
/// # Panics
///
/// Panics when no `nats-server` is found, or when every one found is older than v2.14.
pub(crate) fn nats_server() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let mut too_old = Vec::new();
        for path in candidates("nats-server", &[]) {
            let version = command_version(&path);
            if parse_nats_version(&version).is_some_and(|found| found >= MIN_NATS_SERVER) {
                return path;
            }
            too_old.push(format!("{} ({version})", path.display()));
        }
        if too_old.is_empty() {
            missing("nats-server", &[]);
        }
        panic!(
            "only nats-server older than v{}.{} found: {}; JetStream message schedules need a \
             newer one: run scripts/setup to install it into .tools/bin",
            MIN_NATS_SERVER.0,
            MIN_NATS_SERVER.1,
            too_old.join(", "),
        )
    })
}

/// moto's `moto_server`, which scripts/setup links into `.tools/bin`.
///
/// # Panics
///
/// Panics when no `moto_server` is found.
pub(crate) fn moto_server() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        candidates("moto_server", &[])
            .next()
            .unwrap_or_else(|| missing("moto_server", &[]))
    })
}

/// The OpenBao `bao` binary.
///
/// # Panics
///
/// Panics when no `bao` is found.
pub(crate) fn bao() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        candidates("bao", &[])
            .next()
            .unwrap_or_else(|| missing("bao", &[]))
    })
}

/// The PostgreSQL server binaries (`initdb` and `postgres`, which must come from
/// the same installation) and their major version.
#[derive(Debug)]
pub(crate) struct PostgresTools {
    /// The directory holding `initdb` and `postgres`.
    pub(crate) bin_dir: PathBuf,
    /// The major version, such as `15`; data directories work only with their own.
    pub(crate) major: String,
}

/// The PostgreSQL server binaries, preferring the newest Debian server directory over `PATH`.
///
/// # Panics
///
/// Panics when no directory holds both `initdb` and `postgres`.
pub(crate) fn postgres() -> &'static PostgresTools {
    static TOOLS: OnceLock<PostgresTools> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let debian = newest_debian_postgres().into_iter().collect::<Vec<_>>();
        // PATH often holds only links to initdb (Debian's /usr/local/bin), so the
        // link is resolved to find the postgres binary next to the real one.
        let bin_dir = candidates("initdb", &debian)
            .filter_map(|initdb| initdb.canonicalize().ok()?.parent().map(Path::to_path_buf))
            .find(|dir| dir.join("postgres").is_file())
            .unwrap_or_else(|| missing("initdb and postgres", &debian));
        let version = command_version(&bin_dir.join("postgres"));
        let major = parse_postgres_major(&version)
            .unwrap_or_else(|| panic!("cannot read the PostgreSQL version from {version:?}"))
            .to_owned();
        PostgresTools { bin_dir, major }
    })
}

/// The `php` command-line binary.
///
/// # Panics
///
/// Panics when no `php` is found.
pub(crate) fn php() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        candidates("php", &[])
            .next()
            .unwrap_or_else(|| missing("php", &[]))
    })
}

/// The MariaDB server binaries.
#[derive(Debug)]
pub(crate) struct MariaDbTools {
    /// The server, `mariadbd`.
    pub(crate) mariadbd: PathBuf,
    /// `mariadb-install-db`, which creates a data directory.
    pub(crate) install_db: PathBuf,
}

/// `mariadbd` and `mariadb-install-db`, also looked up in `/usr/sbin`.
///
/// # Panics
///
/// Panics when either is not found.
pub(crate) fn mariadb() -> &'static MariaDbTools {
    static TOOLS: OnceLock<MariaDbTools> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let sbin = [PathBuf::from(DEBIAN_SBIN)];
        let find = |name| {
            candidates(name, &sbin)
                .next()
                .unwrap_or_else(|| missing(name, &sbin))
        };
        MariaDbTools {
            mariadbd: find("mariadbd"),
            install_db: find("mariadb-install-db"),
        }
    })
}

/// The unpacked WordPress, `<workspace>/.tools/wordpress/usr/share/wordpress`.
///
/// # Panics
///
/// Panics when it holds no `wp-load.php`.
pub(crate) fn wordpress() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = workspace_root().join(WORDPRESS_DIR);
        assert!(
            dir.join("wp-load.php").is_file(),
            "WordPress not found in {}; run scripts/setup to unpack Debian's wordpress package there",
            dir.display()
        );
        dir
    })
}

/// The `node` binary (Node.js), which runs the OAuth 2.0 authorization server.
///
/// # Panics
///
/// Panics when no `node` is found.
pub(crate) fn node() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        candidates("node", &[]).next().unwrap_or_else(|| {
            panic!(
                "node not found in {} or PATH; install Node.js 20 or later, then run \
                 scripts/setup to install the npm packages of tests/",
                workspace_root().join(".tools/bin").display()
            )
        })
    })
}

/// `<workspace>/tests/oauth-server`, with its `server.mjs` and the npm package
/// `oidc-provider` installed in its `node_modules`.
///
/// # Panics
///
/// Panics when the package is not installed there.
pub(crate) fn oauth_server_dir() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = workspace_root().join(OAUTH_SERVER_DIR);
        let package = dir.join("node_modules/oidc-provider/package.json");
        assert!(
            package.is_file(),
            "the npm package oidc-provider is not installed in {}; run scripts/setup (npm ci there)",
            dir.display()
        );
        dir
    })
}

/// The Python of `.tools/venv`, which holds the packages the tests' helper
/// scripts import (mfusepy).
///
/// # Panics
///
/// Panics when the venv does not exist.
pub(crate) fn python() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let python = workspace_root().join(".tools/venv/bin/python");
        assert!(
            python.is_file(),
            "{} not found; run scripts/setup",
            python.display()
        );
        python
    })
}

/// Existing files named `name` in the preferred directories, then on `PATH`.
fn candidates(name: &str, extra_dirs: &[PathBuf]) -> impl Iterator<Item = PathBuf> {
    preferred_dirs(extra_dirs)
        .into_iter()
        .chain(path_dirs())
        .map(move |dir| dir.join(name))
        .filter(|path| path.is_file())
}

/// `$FLEET_TESTKIT_TOOLS`, `<workspace>/.tools/bin`, then `extra_dirs`.
///
/// The override comes first: a variable that lost to the default could not override it.
#[expect(
    clippy::disallowed_methods,
    reason = "testkit chooses its binaries from the environment"
)]
fn preferred_dirs(extra_dirs: &[PathBuf]) -> Vec<PathBuf> {
    std::env::var_os("FLEET_TESTKIT_TOOLS")
        .map(PathBuf::from)
        .into_iter()
        .chain([workspace_root().join(".tools/bin")])
        .chain(extra_dirs.iter().cloned())
        .collect()
}

#[expect(
    clippy::disallowed_methods,
    reason = "testkit chooses its binaries from the environment"
)]
fn path_dirs() -> Vec<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect()
}

/// `/usr/lib/postgresql/<highest major>/bin`, if any.
fn newest_debian_postgres() -> Option<PathBuf> {
    let (_, dir) = std::fs::read_dir(DEBIAN_POSTGRES_ROOT)
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .max()?;
    Some(dir)
}

/// The trimmed output of `<binary> --version`.
///
/// # Panics
///
/// Panics when the binary cannot run.
fn command_version(binary: &Path) -> String {
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} --version: {e}", binary.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    format!("{stdout}{stderr}").trim().to_owned()
}

/// `(major, minor)` from `nats-server: v2.15.1`.
fn parse_nats_version(version: &str) -> Option<(u32, u32)> {
    let number = version.rsplit_once('v')?.1;
    let mut parts = number.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// `15` from `postgres (PostgreSQL) 15.14 (Debian 15.14-1.pgdg12+1)`.
fn parse_postgres_major(version: &str) -> Option<&str> {
    let number = version.split_once("(PostgreSQL) ")?.1;
    let major = number.split(|c: char| !c.is_ascii_digit()).next()?;
    (!major.is_empty()).then_some(major)
}

/// # Panics
///
/// Always: a binary the tests need is not installed.
fn missing(what: &str, extra_dirs: &[PathBuf]) -> ! {
    let searched = preferred_dirs(extra_dirs)
        .iter()
        .map(|dir| dir.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    panic!("{what} not found in {searched} or PATH; run scripts/setup to install it")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_version_is_read_from_the_version_line() {
        assert_eq!(parse_nats_version("nats-server: v2.15.1"), Some((2, 15)));
        assert_eq!(parse_nats_version("nats-server: v2.9.20"), Some((2, 9)));
        assert_eq!(parse_nats_version("nats-server"), None);
    }

    #[test]
    fn old_nats_versions_compare_below_the_minimum() {
        assert!((2, 9) < MIN_NATS_SERVER);
        assert!((2, 15) >= MIN_NATS_SERVER);
        assert!((3, 0) >= MIN_NATS_SERVER);
    }

    #[test]
    fn postgres_major_is_read_from_the_version_line() {
        let debian = "postgres (PostgreSQL) 15.14 (Debian 15.14-1.pgdg12+1)";
        assert_eq!(parse_postgres_major(debian), Some("15"));
        assert_eq!(
            parse_postgres_major("postgres (PostgreSQL) 17beta1"),
            Some("17")
        );
        assert_eq!(parse_postgres_major("postgres"), None);
        assert_eq!(
            parse_postgres_major("postgres (PostgreSQL) 16.4"),
            Some("16")
        );
    }
}
