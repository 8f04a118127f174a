//! A WordPress site on free loopback ports: PHP's built-in web server in front of
//! its own MariaDB.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::ports::{PortAttempts, free_port};
use crate::process::{Process, StartError, http_client, work_dir};
use crate::tools;

/// How long MariaDB may take to greet a client, and WordPress to serve its front page.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The administrator that [`WordPress`] installs the site with.
const USERNAME: &str = "admin";

/// InnoDB's redo log size. The default of 96 MiB would be written out for every site;
/// a test site's transactions are small.
const INNODB_LOG_FILE_SIZE: &str = "--innodb-log-file-size=8M";

/// Sends every path that is not a file to `index.php`, as Apache's rewrite rules do.
const ROUTER_PHP: &str = include_str!("wordpress/router.php");

/// A must-use plugin: no mail, and the helper functions the snippets call.
const MU_PLUGIN_PHP: &str = include_str!("wordpress/mu-plugin.php");

/// Installs the site and prints an application password.
const INSTALL_PHP: &str = include_str!("wordpress/install.php");

/// How to set up a [`WordPress`] site; `Default` gives pretty permalinks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WordPressOptions {
    /// Keeps WordPress's plain permalinks (`/?p=123`), and serves the site as a web
    /// server without WordPress's rewrite rules does: the REST API answers only at
    /// `/?rest_route=/…`, and `/wp-json/…` is the web server's 404. When false,
    /// permalinks are `/%postname%/`, every path that is not a file goes to
    /// WordPress, and the API answers at both.
    pub plain_permalinks: bool,
}

/// A freshly installed WordPress site, with its database and files in a temporary
/// directory.
///
/// The site runs the WordPress that `scripts/setup` unpacks from Debian's package
/// (6.1 on Debian 12) under `php -S` with four workers, against its own `mariadbd`
/// reached through a Unix socket. It has one administrator,
/// [`username`](Self::username), with an [application
/// password](Self::app_password) for the REST API, which works over plain HTTP
/// because the site's environment type is `local`. It has no theme: the front page
/// is empty, but its headers are WordPress's. Cron, automatic updates and mail are
/// off, and outgoing HTTP reaches only the site itself.
///
/// [`php`](Self::php) runs PHP with WordPress loaded, for arranging data that the
/// REST API cannot set, such as modification times; helpers built on it create,
/// change, trash and delete posts.
///
/// Dropping the guard kills PHP and MariaDB and removes the directory.
#[derive(Debug)]
pub struct WordPress {
    dir: TempDir,
    /// The web server's port, part of the site's URL.
    port: u16,
    db_port: u16,
    app_password: String,
    options: WordPressOptions,
    /// Numbers the snippet files that [`php`](Self::php) writes.
    snippets: AtomicU64,
    mariadb: Option<Process>,
    php: Option<Process>,
}

impl WordPress {
    /// Starts a site with pretty permalinks, as [`start_with`](Self::start_with) does
    /// with the default options.
    ///
    /// # Panics
    ///
    /// See [`start_with`](Self::start_with).
    pub async fn start() -> Self {
        Self::start_with(WordPressOptions::default()).await
    }

    /// Creates a MariaDB data directory and starts `mariadbd`, installs WordPress with
    /// an administrator and an application password, and serves the site, waiting
    /// until its front page answers 200.
    ///
    /// # Panics
    ///
    /// Panics when PHP, MariaDB or the unpacked WordPress is missing (run
    /// `scripts/setup`), when `mariadb-install-db` or the installation fails, or when
    /// a server is not ready within 15 s; the message holds the end of its log.
    pub async fn start_with(options: WordPressOptions) -> Self {
        let mut wordpress = Self {
            dir: work_dir("wordpress"),
            port: free_port(),
            db_port: free_port(),
            app_password: String::new(),
            options,
            snippets: AtomicU64::new(0),
            mariadb: None,
            php: None,
        };
        wordpress.write_files().await;
        wordpress.install_database().await;
        wordpress.serve_database().await;
        wordpress.write_config();
        wordpress.app_password = wordpress.install_site().await;
        wordpress.serve_site().await;
        wordpress
    }

    /// The site's URL without a trailing slash: `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The web server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The administrator's user name, for HTTP basic authentication with
    /// [`app_password`](Self::app_password).
    pub fn username(&self) -> &str {
        USERNAME
    }

    /// An application password of the administrator, in WordPress's format (24
    /// letters and digits, without the spaces the admin screen adds).
    pub fn app_password(&self) -> &str {
        &self.app_password
    }

    /// The temporary directory: the site's files in `www/`, MariaDB's data in
    /// `data/`, its socket and `tmp/`, and `mariadbd.log` and `php.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs PHP `code` (statements, without `<?php`) with WordPress loaded, as a
    /// command-line script with no user logged in, and returns what it printed.
    ///
    /// Each call is a new `php` process, so a batch of changes belongs in one call.
    /// PHP's own errors go to stderr; a snippet that cannot do its job should throw,
    /// because WordPress functions report most failures only in their return value.
    ///
    /// # Panics
    ///
    /// Panics when `php` exits with an error (a thrown exception, a fatal error), with
    /// its stderr and stdout.
    pub async fn php(&self, code: &str) -> String {
        let number = self.snippets.fetch_add(1, Ordering::Relaxed);
        let path = self.dir().join(format!("snippet-{number}.php"));
        let wp_load = self.docroot().join("wp-load.php");
        let script = format!("<?php\nrequire {};\n{code}\n", php_string(&wp_load));
        std::fs::write(&path, script)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        let mut command = php_cli();
        command.arg(&path);
        run(command, &format!("the PHP snippet {}", path.display())).await
    }

    /// Creates `count` posts titled `Post 1` to `Post <count>` with `status` (such as
    /// `publish` or `draft`) in one PHP process, and returns their ids in order.
    ///
    /// With `modified_gmt`, every post gets that modification time, as
    /// [`set_modified`](Self::set_modified) sets it; otherwise it is now.
    ///
    /// # Panics
    ///
    /// Panics when WordPress refuses a post or `modified_gmt` is not a date.
    pub async fn create_posts(
        &self,
        count: usize,
        status: &str,
        modified_gmt: Option<&str>,
    ) -> Vec<u64> {
        let status = php_string(status);
        let modified = modified_gmt.map_or_else(|| "null".to_owned(), php_string);
        let code = format!(
            r#"wp_defer_term_counting(true);
$ids = [];
for ($i = 1; $i <= {count}; $i++) {{
    $ids[] = fleet_testkit_check(wp_insert_post([
        'post_title' => "Post $i",
        'post_content' => "The content of post $i.",
        'post_status' => {status},
    ], true), 'wp_insert_post');
}}
wp_defer_term_counting(false);
if ({modified} !== null) {{
    fleet_testkit_set_modified($ids, {modified});
}}
echo json_encode($ids);"#
        );
        let printed = self.php(&code).await;
        serde_json::from_str(&printed)
            .unwrap_or_else(|e| panic!("the post ids are not a JSON list ({e}): {printed}"))
    }

    /// Sets the title of post `id` with `wp_update_post`, which also sets its
    /// modification time to now.
    ///
    /// # Panics
    ///
    /// Panics when there is no such post or WordPress refuses the change.
    pub async fn update_post_title(&self, id: u64, title: &str) {
        let title = php_string(title);
        self.php(&format!(
            "fleet_testkit_check(wp_update_post(['ID' => {id}, 'post_title' => {title}], true), 'wp_update_post');"
        ))
        .await;
    }

    /// Moves post `id` to the trash, as the admin screen does (`wp_trash_post`).
    ///
    /// # Panics
    ///
    /// Panics when there is no such post or it is already in the trash.
    pub async fn trash_post(&self, id: u64) {
        self.php(&format!(
            "fleet_testkit_check(wp_trash_post({id}), 'wp_trash_post');"
        ))
        .await;
    }

    /// Deletes post `id` for good, skipping the trash.
    ///
    /// # Panics
    ///
    /// Panics when there is no such post.
    pub async fn delete_post(&self, id: u64) {
        self.php(&format!(
            "fleet_testkit_check(wp_delete_post({id}, true), 'wp_delete_post');"
        ))
        .await;
    }

    /// Sets the status of post `id` (such as `draft`, `publish`, `private`) with
    /// `wp_update_post`, which also sets its modification time to now. Use
    /// [`trash_post`](Self::trash_post) for the trash, which keeps the status to
    /// restore.
    ///
    /// # Panics
    ///
    /// Panics when there is no such post or WordPress refuses the change.
    pub async fn set_post_status(&self, id: u64, status: &str) {
        let status = php_string(status);
        self.php(&format!(
            "fleet_testkit_check(wp_update_post(['ID' => {id}, 'post_status' => {status}], true), 'wp_update_post');"
        ))
        .await;
    }

    /// Sets the modification time of the posts `ids`: `post_modified_gmt` to
    /// `modified_gmt`, and `post_modified` to the same moment in the site's time
    /// zone, written to the database directly because `wp_update_post` always sets
    /// them to now. Clears the posts' cache.
    ///
    /// `modified_gmt` is a date PHP parses, usually `2024-05-01 12:00:00`, taken as
    /// UTC unless it has an offset (`2024-05-01T14:00:00+02:00`).
    ///
    /// # Panics
    ///
    /// Panics when `modified_gmt` is not a date or the update fails.
    pub async fn set_modified(&self, ids: &[u64], modified_gmt: &str) {
        let ids = ids
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let modified = php_string(modified_gmt);
        self.php(&format!("fleet_testkit_set_modified([{ids}], {modified});"))
            .await;
    }

    fn docroot(&self) -> PathBuf {
        self.dir().join("www")
    }

    fn socket(&self) -> PathBuf {
        self.dir().join("mariadb.sock")
    }

    /// MariaDB's own directory for temporary tables. In the shared `/tmp`, whose
    /// file names hold only a process id, servers in other PID namespaces (other
    /// containers) removed each other's files and failed `mariadb-install-db`.
    fn tmpdir_arg(&self) -> String {
        format!("--tmpdir={}", self.dir().join("tmp").display())
    }

    /// Copies WordPress into `www/` and adds the must-use plugin, the router, the
    /// install script and MariaDB's `tmp/`.
    async fn write_files(&self) {
        let (source, dir) = (tools::wordpress(), self.dir().to_path_buf());
        let docroot = self.docroot();
        tokio::task::spawn_blocking(move || {
            copy_tree(source, &docroot).unwrap_or_else(|e| {
                panic!(
                    "cannot copy WordPress from {} to {}: {e}",
                    source.display(),
                    docroot.display()
                )
            });
            let mu_plugins = docroot.join("wp-content/mu-plugins");
            let written = std::fs::create_dir_all(&mu_plugins)
                .and_then(|()| std::fs::create_dir(dir.join("tmp")))
                .and_then(|()| std::fs::write(mu_plugins.join("fleet-testkit.php"), MU_PLUGIN_PHP))
                .and_then(|()| std::fs::write(dir.join("router.php"), ROUTER_PHP))
                .and_then(|()| std::fs::write(dir.join("install.php"), INSTALL_PHP));
            written.unwrap_or_else(|e| panic!("cannot write to {}: {e}", dir.display()));
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    }

    /// Runs `mariadb-install-db`, which takes well under a second, into `data/`.
    ///
    /// Root gets no password and may log in from any local client, over the socket
    /// or TCP.
    async fn install_database(&self) {
        let mut command = tokio::process::Command::new(&tools::mariadb().install_db);
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", self.dir().join("data").display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .arg(INNODB_LOG_FILE_SIZE)
            .arg(self.tmpdir_arg());
        if running_as_root() {
            command.arg("--user=root");
        }
        run(command, "mariadb-install-db").await;
    }

    async fn serve_database(&mut self) {
        let mut attempts = PortAttempts::default();
        while let Err(e) = self.spawn_mariadb().await {
            attempts.retry(&e);
            self.db_port = free_port();
        }
    }

    async fn spawn_mariadb(&mut self) -> Result<(), StartError> {
        let mut command = Command::new(&tools::mariadb().mariadbd);
        command.arg("--no-defaults");
        if running_as_root() {
            command.arg("--user=root");
        }
        command
            .arg(format!("--datadir={}", self.dir().join("data").display()))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!("--port={}", self.db_port))
            .arg(self.tmpdir_arg())
            .args(["--bind-address=127.0.0.1", "--skip-name-resolve"])
            .args([INNODB_LOG_FILE_SIZE, "--innodb-buffer-pool-size=32M"])
            // A commit reaches the operating system before it returns, so it survives a
            // crashed server, not a crashed machine, like the PostgreSQL guard's.
            .args([
                "--innodb-flush-log-at-trx-commit=2",
                "--innodb-doublewrite=0",
            ]);
        let log = self.dir().join("mariadbd.log");
        let port = self.db_port;
        let ready = move || greets(port);
        let process = Process::start("mariadbd", command, &log, READY_TIMEOUT, ready).await?;
        self.mariadb = Some(process);
        Ok(())
    }

    /// Writes `wp-config.php` for the current ports, with fresh keys and salts.
    fn write_config(&self) {
        let path = self.docroot().join("wp-config.php");
        std::fs::write(&path, wp_config(&self.socket(), &self.base_url()))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// Runs the install script and returns the application password it prints.
    async fn install_site(&self) -> String {
        let permalinks = if self.options.plain_permalinks {
            "plain"
        } else {
            "pretty"
        };
        let mut command = php_cli();
        command
            .arg(self.dir().join("install.php"))
            .arg(self.docroot())
            .arg(self.socket())
            .args([USERNAME, permalinks]);
        let printed = run(command, "the WordPress installation").await;
        printed.trim().to_owned()
    }

    async fn serve_site(&mut self) {
        let mut attempts = PortAttempts::default();
        while let Err(e) = self.spawn_php().await {
            attempts.retry(&e);
            // The site's URL holds the port.
            self.port = free_port();
            self.write_config();
        }
    }

    async fn spawn_php(&mut self) -> Result<(), StartError> {
        let mut command = Command::new(tools::php());
        command
            // Errors go to the log, not into the JSON of a response.
            .args(["-d", "display_errors=0", "-d", "log_errors=1"])
            // The workers share the cache, so WordPress compiles once per site.
            .args(["-d", "opcache.enable_cli=1"])
            .arg("-S")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("-t")
            .arg(self.docroot())
            .arg(self.dir().join("router.php"))
            .env("PHP_CLI_SERVER_WORKERS", "4");
        if !self.options.plain_permalinks {
            command.env("FLEET_TESTKIT_REWRITE", "1");
        }
        let log = self.dir().join("php.log");
        let (http, front_page) = (http_client(), format!("{}/", self.base_url()));
        let ready = || serves(&http, &front_page);
        let process = Process::start("php", command, &log, READY_TIMEOUT, ready).await?;
        self.php = Some(process);
        Ok(())
    }
}

impl Drop for WordPress {
    fn drop(&mut self) {
        // Before the fields drop: the processes must be gone before their directory is
        // removed. PHP first, so no request is left talking to the database.
        if let Some(mut php) = self.php.take() {
            php.kill();
        }
        if let Some(mut mariadb) = self.mariadb.take() {
            mariadb.kill();
        }
    }
}

/// Whether a MariaDB server greets a client on `port`: its handshake packet starts,
/// after the 4-byte header, with protocol version 10, and it sends it only once it
/// accepts queries.
async fn greets(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let mut start = [0_u8; 5];
    stream.read_exact(&mut start).await.is_ok() && start[4] == 10
}

/// Whether `url` answers 200.
async fn serves(http: &reqwest::Client, url: &str) -> bool {
    let response = http.get(url).send().await;
    response.is_ok_and(|response| response.status().is_success())
}

/// A `php` command for scripts: errors to stderr, where [`run`] reports them.
fn php_cli() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(tools::php());
    command.args(["-d", "display_errors=stderr", "-d", "log_errors=0"]);
    command
}

/// Runs `command` to its end and returns its stdout.
///
/// # Panics
///
/// Panics, naming it `what`, when it cannot start or exits with an error.
async fn run(mut command: tokio::process::Command, what: &str) -> String {
    let output = command
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {what} ({command:?}): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed with {}:\n{}{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
    );
    stdout
}

fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// `wp-config.php` for a site at `url` whose database listens on `socket`.
fn wp_config(socket: &Path, url: &str) -> String {
    let db_host = php_string(format!("localhost:{}", socket.display()));
    let url = php_string(url);
    let keys = [
        "AUTH_KEY",
        "SECURE_AUTH_KEY",
        "LOGGED_IN_KEY",
        "NONCE_KEY",
        "AUTH_SALT",
        "SECURE_AUTH_SALT",
        "LOGGED_IN_SALT",
        "NONCE_SALT",
    ]
    .map(|key| format!("define('{key}', '{}');\n", Uuid::new_v4().simple()))
    .concat();
    format!(
        r"<?php
// Written by fleet_testkit::WordPress for this site only.
define('DB_NAME', 'wordpress');
define('DB_USER', 'root');
define('DB_PASSWORD', '');
define('DB_HOST', {db_host});
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');
$table_prefix = 'wp_';
{keys}
// Application passwords need HTTPS, except in a local environment.
define('WP_ENVIRONMENT_TYPE', 'local');
define('WP_HOME', {url});
define('WP_SITEURL', {url});
// Nothing changes the site behind the tests' back, and nothing leaves the machine.
define('DISABLE_WP_CRON', true);
define('AUTOMATIC_UPDATER_DISABLED', true);
define('WP_HTTP_BLOCK_EXTERNAL', true);
define('WP_DEBUG', false);

if (!defined('ABSPATH')) {{
    define('ABSPATH', __DIR__ . '/');
}}
require_once ABSPATH . 'wp-settings.php';
"
    )
}

/// `value` as a single-quoted PHP string literal, in which only `\` and `'` need escaping.
fn php_string(value: impl AsRef<Path>) -> String {
    let value = value.as_ref().to_string_lossy();
    format!("'{}'", value.replace('\\', r"\\").replace('\'', r"\'"))
}

/// Copies the directory tree `from` to the new directory `to`, following links.
///
/// Debian's package links a few files to other packages (getID3, JavaScript
/// libraries) that need not be installed; such dangling links are left out.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let metadata = match std::fs::metadata(&source) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if metadata.is_dir() {
            copy_tree(&source, &target)?;
        } else {
            std::fs::copy(&source, &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_strings_escape_quotes_and_backslashes() {
        assert_eq!(php_string("it's"), r"'it\'s'");
        assert_eq!(php_string(r"C:\dir\"), r"'C:\\dir\\'");
        assert_eq!(php_string("$x {$y}"), "'$x {$y}'");
    }
}
