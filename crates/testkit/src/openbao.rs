//! An OpenBao server with persistent storage on a free loopback port.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use rustix::process::Signal;
use serde_json::{Value, json};
use tempfile::TempDir;
use uuid::Uuid;

use crate::ports::{PortAttempts, free_port};
use crate::process::{Process, StartError, http_client, work_dir};
use crate::tools;

/// How long OpenBao may take to become active, including initialisation and unsealing.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// An initialised, unsealed OpenBao server with its data in a temporary directory.
///
/// The server runs `bao server` with PebbleDB storage, the single-node persistent
/// backend: unlike `-dev` mode (in memory) its data survives
/// [`restart`](Self::restart), and unlike Raft storage it needs no leader election,
/// which delays a first start by one to two seconds. The guard initialises the
/// server with one unseal key, keeps that key and the root token in memory, and
/// unseals again after every restart.
///
/// Tests that share a server stay isolated by using their own
/// [`new_kv_mount`](Self::new_kv_mount). Dropping the guard kills the server and
/// removes its data.
#[derive(Debug)]
pub struct OpenBao {
    dir: TempDir,
    port: u16,
    http: reqwest::Client,
    /// Set once, when the first start initialises the server.
    keys: OnceLock<Keys>,
    process: Option<Process>,
}

/// What `PUT /v1/sys/init` hands out once.
#[derive(Debug)]
struct Keys {
    root_token: String,
    unseal_key: String,
}

/// Credentials for an AppRole login, from [`OpenBao::enable_approle`].
#[derive(Debug, Clone)]
pub struct AppRoleCredentials {
    /// The role's `role_id`.
    pub role_id: String,
    /// A fresh `secret_id` for the role.
    pub secret_id: String,
}

impl OpenBao {
    /// Starts OpenBao on a free port, initialises and unseals it, and waits until it
    /// is active.
    ///
    /// # Panics
    ///
    /// Panics when `bao` is not installed, when an initialisation or unseal request
    /// fails, or when the server is not active within 10 s; the message holds the end
    /// of the server's log.
    pub async fn start() -> Self {
        let mut bao = Self {
            dir: work_dir("openbao"),
            port: free_port(),
            http: http_client(),
            keys: OnceLock::new(),
            process: None,
        };
        let mut attempts = PortAttempts::default();
        while let Err(e) = bao.spawn().await {
            attempts.retry(&e);
            bao.port = free_port();
        }
        bao
    }

    async fn spawn(&mut self) -> Result<(), StartError> {
        let config = self.dir.path().join("config.hcl");
        std::fs::write(&config, self.config())
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", config.display()));
        let mut command = Command::new(tools::bao());
        command.arg("server").arg("-config").arg(&config);
        let log = self.dir.path().join("server.log");
        let addr = self.addr();
        let (http, addr, keys) = (&self.http, addr.as_str(), &self.keys);
        let ready = move || bring_up(http, addr, keys);
        let process = Process::start("bao", command, &log, READY_TIMEOUT, ready).await?;
        self.process = Some(process);
        Ok(())
    }

    fn config(&self) -> String {
        let storage = self.dir.path().join("data");
        // JSON string syntax is valid HCL and quotes the path safely.
        let storage = json!(storage.to_string_lossy());
        let port = self.port;
        format!(
            r#"storage "pebbledb" {{
  path = {storage}
}}

listener "tcp" {{
  address     = "127.0.0.1:{port}"
  tls_disable = true
}}

api_addr = "http://127.0.0.1:{port}"
"#
        )
    }

    /// The API address, `http://127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The API port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The root token, which may do anything.
    pub fn root_token(&self) -> &str {
        &self.keys().root_token
    }

    fn keys(&self) -> &Keys {
        self.keys
            .get()
            .expect("the first start initialises OpenBao before the guard is handed out")
    }

    /// The temporary directory holding the storage, `config.hcl` and `server.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Enables a KV version 2 secrets engine at a new unique path, `kv-<uuid>`, and
    /// returns that path.
    ///
    /// # Panics
    ///
    /// Panics when OpenBao rejects the request.
    pub async fn new_kv_mount(&self) -> String {
        let mount = format!("kv-{}", Uuid::new_v4().simple());
        let body = json!({ "type": "kv", "options": { "version": "2" } });
        self.call(Method::POST, &format!("sys/mounts/{mount}"), &body)
            .await;
        mount
    }

    /// Writes `data` as a new version of the KV version 2 secret `path` in `mount` with the root
    /// token, behind the back of the code under test, and returns the version written.
    ///
    /// # Panics
    ///
    /// Panics when OpenBao rejects the request.
    pub async fn kv_write(&self, mount: &str, path: &str, data: &Value) -> u64 {
        let written = self
            .call(
                Method::POST,
                &format!("{mount}/data/{path}"),
                &json!({ "data": data }),
            )
            .await;
        written["data"]["version"]
            .as_u64()
            .unwrap_or_else(|| panic!("no version in OpenBao's answer: {written}"))
    }

    /// Destroys `versions` of the KV version 2 secret `path` in `mount` with the root token,
    /// behind the back of the code under test.
    ///
    /// # Panics
    ///
    /// Panics when OpenBao rejects the request.
    pub async fn kv_destroy(&self, mount: &str, path: &str, versions: &[u64]) {
        self.call(
            Method::POST,
            &format!("{mount}/destroy/{path}"),
            &json!({ "versions": versions }),
        )
        .await;
    }

    /// Creates the AppRole `role`, whose tokens may do anything under `mount` and
    /// nothing else, and returns its credentials.
    ///
    /// Enables the AppRole auth method at `auth/approle` first, unless it already is.
    /// The role's policy has the role's name.
    ///
    /// # Panics
    ///
    /// Panics when OpenBao rejects a request.
    pub async fn enable_approle(&self, role: &str, mount: &str) -> AppRoleCredentials {
        let enable = json!({ "type": "approle" });
        if let Err(e) = self
            .try_call(Method::POST, "sys/auth/approle", &enable)
            .await
            && !e.contains("path is already in use")
        {
            panic!("{e}");
        }
        let policy = format!(
            r#"path "{mount}/*" {{
  capabilities = ["create", "read", "update", "patch", "delete", "list"]
}}"#
        );
        let policy_path = format!("sys/policies/acl/{role}");
        self.call(Method::PUT, &policy_path, &json!({ "policy": policy }))
            .await;
        let role_path = format!("auth/approle/role/{role}");
        self.call(
            Method::POST,
            &role_path,
            &json!({ "token_policies": [role] }),
        )
        .await;
        let role_id = self
            .call(Method::GET, &format!("{role_path}/role-id"), &Value::Null)
            .await;
        let secret_id = self
            .call(Method::POST, &format!("{role_path}/secret-id"), &json!({}))
            .await;
        AppRoleCredentials {
            role_id: string_at(&role_id, "/data/role_id"),
            secret_id: string_at(&secret_id, "/data/secret_id"),
        }
    }

    /// Writes the ACL policy `name` with the HCL `policy`, and returns a new
    /// token (renewable, one hour) that has only that policy and `default`.
    ///
    /// # Panics
    ///
    /// Panics when OpenBao rejects a request.
    pub async fn token_with_policy(&self, name: &str, policy: &str) -> String {
        self.call(
            Method::PUT,
            &format!("sys/policies/acl/{name}"),
            &json!({ "policy": policy }),
        )
        .await;
        let created = self
            .call(
                Method::POST,
                "auth/token/create",
                &json!({ "policies": [name], "ttl": "1h", "renewable": true }),
            )
            .await;
        string_at(&created, "/auth/client_token")
    }

    /// Seals and shuts the server down gracefully (`SIGTERM`), keeping its data.
    ///
    /// Blocks until the server exits, which takes OpenBao about half a second. Does
    /// nothing when the server is not running.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop(Signal::TERM);
        }
    }

    /// Kills the server (`SIGKILL`), as a crash would, keeping its data.
    ///
    /// Does nothing when the server is not running.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Stops the server if it runs, then starts it again on the same port with the
    /// same data, unseals it and waits until it is active.
    ///
    /// # Panics
    ///
    /// Panics when the server is not active again within 10 s.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await.unwrap_or_else(|e| panic!("{e}"));
    }

    /// Sends a request with the root token and returns the response's JSON.
    ///
    /// # Panics
    ///
    /// Panics when the request fails or OpenBao answers with an error.
    async fn call(&self, method: Method, path: &str, body: &Value) -> Value {
        self.try_call(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn try_call(&self, method: Method, path: &str, body: &Value) -> Result<Value, String> {
        send(
            &self.http,
            method,
            &format!("{}/v1/{path}", self.addr()),
            Some(self.root_token()),
            body,
        )
        .await
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        // Before the fields drop: the process must be gone before its directory is removed.
        self.kill();
    }
}

/// One readiness step: initialises an uninitialised server, unseals a sealed one,
/// and returns true once the server is active.
///
/// # Panics
///
/// Panics when an initialisation or unseal request fails.
async fn bring_up(http: &reqwest::Client, addr: &str, keys: &OnceLock<Keys>) -> bool {
    // Every state answers: 501 uninitialised, 503 sealed, 429 standby, 200 active.
    let Ok(health) = http.get(format!("{addr}/v1/sys/health")).send().await else {
        return false;
    };
    match health.status() {
        StatusCode::OK => return true,
        StatusCode::NOT_IMPLEMENTED => {
            let url = format!("{addr}/v1/sys/init");
            let shares = json!({ "secret_shares": 1, "secret_threshold": 1 });
            let answer = send(http, Method::PUT, &url, None, &shares).await;
            let answer = answer.unwrap_or_else(|e| panic!("{e}"));
            let initialised = keys.set(Keys {
                root_token: string_at(&answer, "/root_token"),
                unseal_key: string_at(&answer, "/keys/0"),
            });
            assert!(
                initialised.is_ok(),
                "OpenBao lost its data and was initialised again"
            );
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            let url = format!("{addr}/v1/sys/unseal");
            let keys = keys.get().expect("a sealed server was initialised before");
            let key = json!({ "key": keys.unseal_key });
            let answer = send(http, Method::PUT, &url, None, &key).await;
            answer.unwrap_or_else(|e| panic!("{e}"));
        }
        _ => {}
    }
    false
}

/// Sends an API request and returns the response's JSON (`null` when it has none).
///
/// # Errors
///
/// Fails with a message naming the request when it cannot be sent or OpenBao
/// answers with an error status.
async fn send(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> Result<Value, String> {
    let mut request = http.request(method.clone(), url);
    if let Some(token) = token {
        request = request.header("X-Vault-Token", token);
    }
    if !body.is_null() {
        request = request.json(body);
    }
    let failed = |e: &dyn std::fmt::Display| format!("OpenBao {method} {url} failed: {e}");
    let response = request.send().await.map_err(|e| failed(&e))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| failed(&e))?;
    if !status.is_success() {
        return Err(failed(&format!("{status}: {text}")));
    }
    if text.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).map_err(|e| failed(&e))
}

/// The string at `pointer` in an OpenBao answer.
///
/// # Panics
///
/// Panics when there is none.
fn string_at(answer: &Value, pointer: &str) -> String {
    answer
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("OpenBao answer without {pointer}: {answer}"))
        .to_owned()
}
