//! A standards-compliant OAuth 2.0 / OpenID Connect authorization server on a
//! free loopback port: panva's `oidc-provider` (npm), run by Node.js from
//! `tests/oauth-server/server.mjs`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use tempfile::TempDir;
use url::Url;

use crate::ports::{PortAttempts, free_port};
use crate::process::{Process, StartError, http_client, work_dir};
use crate::tools;

/// How long Node.js may take to load the provider and answer its discovery
/// document: on a loaded 2-core machine, with the suite's other servers
/// starting beside it, it once took longer than 15 s.
const READY_TIMEOUT: Duration = Duration::from_secs(45);

/// How many redirects [`OAuthServer::consent`] follows before giving up.
const MAX_REDIRECTS: usize = 10;

/// A client registered at the server: its id, its secret, and how it
/// authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OAuthServerClient {
    /// The `client_id`.
    pub id: &'static str,
    /// The `client_secret`; it holds `/`, `+` and `=`, which HTTP Basic
    /// authentication must form-urlencode (RFC 6749 §2.3.1).
    pub secret: &'static str,
    /// The registered `token_endpoint_auth_method`; the server refuses the
    /// other method.
    pub auth_method: &'static str,
}

/// An account that can log in at the server's login page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OAuthServerAccount {
    /// The login, also the `sub` of its userinfo.
    pub login: &'static str,
    /// Its password.
    pub password: &'static str,
    /// The `name` claim.
    pub name: &'static str,
    /// The `email` claim.
    pub email: &'static str,
}

/// How to start an [`OAuthServer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthServerOptions {
    /// The redirect URI registered for the code-flow clients.
    pub redirect_uri: String,
    /// The lifetime of access tokens, whole seconds (at least one).
    pub access_token_ttl: Duration,
}

/// A running `oidc-provider`, configured as a strict provider is:
///
/// - the authorization code flow with PKCE (S256) required for every client;
/// - refresh tokens for grants with `offline_access` (asked for with
///   `prompt=consent`), rotated at every use; presenting a rotated one again
///   is refused (`invalid_grant`) and revokes the whole grant;
/// - client authentication only as registered: [`POST_CLIENT`](Self::POST_CLIENT)
///   with body parameters, [`BASIC_CLIENT`](Self::BASIC_CLIENT) and
///   [`SERVICE_CLIENT`](Self::SERVICE_CLIENT) with HTTP Basic;
/// - RFC 7009 revocation, which revokes the whole grant whichever of its
///   tokens is revoked; RFC 7662 introspection; the client credentials
///   grant (for [`SERVICE_CLIENT`](Self::SERVICE_CLIENT), scope `read`), the
///   OpenID Connect userinfo endpoint (scopes `openid profile email`);
/// - token requests only as form bodies (a JSON body is `invalid_request`);
/// - no grace period after a token's expiry.
///
/// State lives in the process's memory. Dropping the guard kills it and
/// removes its directory.
#[derive(Debug)]
pub struct OAuthServer {
    /// Declared first, so that it is dropped (killed) before its directory.
    process: Option<Process>,
    dir: TempDir,
    port: u16,
}

impl OAuthServer {
    /// A client that authenticates with `client_secret_post`.
    pub const POST_CLIENT: OAuthServerClient = OAuthServerClient {
        id: "fleet-post",
        secret: "post-secret/with+special=chars",
        auth_method: "client_secret_post",
    };

    /// A client that authenticates with `client_secret_basic`.
    pub const BASIC_CLIENT: OAuthServerClient = OAuthServerClient {
        id: "fleet-basic",
        secret: "basic-secret/with+special=chars",
        auth_method: "client_secret_basic",
    };

    /// A client of the client credentials grant only, with HTTP Basic.
    pub const SERVICE_CLIENT: OAuthServerClient = OAuthServerClient {
        id: "fleet-service",
        secret: "service-secret/with+special=chars",
        auth_method: "client_secret_basic",
    };

    /// The one account.
    pub const ACCOUNT: OAuthServerAccount = OAuthServerAccount {
        login: "ada",
        password: "correct horse battery staple",
        name: "Ada Lovelace",
        email: "ada@example.test",
    };

    /// Writes the server's configuration and starts it, waiting until its
    /// discovery document answers 200.
    ///
    /// # Panics
    ///
    /// Panics when `node` or the npm package `oidc-provider` in
    /// `tests/oauth-server` is missing (run `scripts/setup`), or when the
    /// server is not ready within 15 s; the message holds the end of its log.
    pub async fn start(options: &OAuthServerOptions) -> Self {
        let dir = work_dir("oauth-server");
        let config = dir.path().join("config.json");
        std::fs::write(&config, config_json(options).to_string())
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", config.display()));
        let mut server = Self {
            process: None,
            dir,
            port: free_port(),
        };
        let mut attempts = PortAttempts::default();
        while let Err(e) = server.spawn().await {
            attempts.retry(&e);
            server.port = free_port();
        }
        server
    }

    async fn spawn(&mut self) -> Result<(), StartError> {
        let script_dir = tools::oauth_server_dir();
        let mut command = Command::new(tools::node());
        command
            .current_dir(script_dir)
            .arg(script_dir.join("server.mjs"))
            .args(["--port", &self.port.to_string()])
            .arg("--config")
            .arg(self.dir.path().join("config.json"));
        let discovery = self.url("/.well-known/openid-configuration");
        let client = http_client();
        let ready = async || {
            client
                .get(discovery.clone())
                .send()
                .await
                .is_ok_and(|response| response.status() == StatusCode::OK)
        };
        let log = self.dir.path().join("oauth-server.log");
        self.process =
            Some(Process::start("oauth-server", command, &log, READY_TIMEOUT, ready).await?);
        Ok(())
    }

    /// The issuer identifier, `http://127.0.0.1:<port>`, which is also the
    /// base of every endpoint and the `iss` of authorization responses.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temporary directory: `config.json` and `oauth-server.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The authorization endpoint.
    pub fn authorize_url(&self) -> Url {
        self.url("/auth")
    }

    /// The token endpoint.
    pub fn token_url(&self) -> Url {
        self.url("/token")
    }

    /// The RFC 7009 revocation endpoint.
    pub fn revocation_url(&self) -> Url {
        self.url("/token/revocation")
    }

    /// The RFC 7662 introspection endpoint.
    pub fn introspection_url(&self) -> Url {
        self.url("/token/introspection")
    }

    /// The OpenID Connect userinfo endpoint.
    pub fn userinfo_url(&self) -> Url {
        self.url("/me")
    }

    /// A protected resource of client credentials tokens: `GET` with a
    /// live one as a bearer token answers `{"id": <client id>, "scope"}`,
    /// any other token a 401.
    pub fn client_resource_url(&self) -> Url {
        self.url("/api/client")
    }

    fn url(&self, path: &str) -> Url {
        Url::parse(&format!("{}{path}", self.issuer()))
            .unwrap_or_else(|e| panic!("{path} makes no URL: {e}"))
    }

    /// Acts as a browser at `authorize` (an authorization request to this
    /// server): logs [`ACCOUNT`](Self::ACCOUNT) in, grants what the client
    /// asked for, and returns where the server redirects back to, the
    /// redirect URI with `code`, `state` and `iss` (or `error`).
    ///
    /// # Panics
    ///
    /// Panics when the server answers anything but the redirects and pages
    /// of its login and consent, or redirects more than ten times.
    pub async fn consent(&self, authorize: &Url) -> Url {
        self.interact(authorize, "confirm").await
    }

    /// As [`consent`](Self::consent), but the user declines at the consent
    /// page: the redirect back carries `error=access_denied`.
    ///
    /// # Panics
    ///
    /// As [`consent`](Self::consent).
    pub async fn decline(&self, authorize: &Url) -> Url {
        self.interact(authorize, "abort").await
    }

    /// Logs in at `authorize`, then submits `choice` (`confirm` or `abort`)
    /// at the consent page; returns the redirect away from the server.
    async fn interact(&self, authorize: &Url, choice: &str) -> Url {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|e| panic!("cannot build an HTTP client: {e}"));
        let mut cookies = BTreeMap::new();
        let mut next = (Method::GET, authorize.clone());
        for _ in 0..MAX_REDIRECTS {
            let (method, url) = next;
            if !url.as_str().starts_with(&self.issuer()) {
                return url;
            }
            let mut request = client.request(method, url.clone());
            if !cookies.is_empty() {
                request = request.header(COOKIE, cookie_header(&cookies));
            }
            if let Some(form) = self.interaction_form(&url) {
                request = request.form(&form);
            }
            let response = request
                .send()
                .await
                .unwrap_or_else(|e| panic!("cannot reach {url}: {e}"));
            store_cookies(&mut cookies, &response);
            let status = response.status();
            if status == StatusCode::OK && url.path().starts_with("/interaction/") {
                // A login or consent page: submit its form.
                let page = response.text().await.unwrap_or_default();
                let action = if page.contains("data-prompt=\"login\"") {
                    "login"
                } else {
                    choice
                };
                next = (Method::POST, self.url(&format!("{}/{action}", url.path())));
                continue;
            }
            let Some(location) = response.headers().get(LOCATION) else {
                let body = response.text().await.unwrap_or_default();
                panic!("{url} answered {status} without a redirect: {body}");
            };
            let location = location
                .to_str()
                .unwrap_or_else(|e| panic!("{url} redirected to a non-text Location: {e}"));
            let location = url
                .join(location)
                .unwrap_or_else(|e| panic!("{url} redirected to {location:?}: {e}"));
            next = (Method::GET, location);
        }
        panic!("{authorize} redirected more than {MAX_REDIRECTS} times");
    }

    /// The form a POST to `url` carries: the account's credentials for the
    /// login page, nothing for the consent page.
    fn interaction_form(&self, url: &Url) -> Option<Vec<(&'static str, &'static str)>> {
        url.path().ends_with("/login").then(|| {
            vec![
                ("login", Self::ACCOUNT.login),
                ("password", Self::ACCOUNT.password),
            ]
        })
    }
}

/// The server's configuration file (see `tests/oauth-server/server.mjs`).
fn config_json(options: &OAuthServerOptions) -> serde_json::Value {
    let code_client = |client: OAuthServerClient| {
        serde_json::json!({
            "client_id": client.id,
            "client_secret": client.secret,
            "token_endpoint_auth_method": client.auth_method,
            "redirect_uris": [options.redirect_uri],
        })
    };
    let service = OAuthServer::SERVICE_CLIENT;
    let account = OAuthServer::ACCOUNT;
    serde_json::json!({
        "clients": [
            code_client(OAuthServer::POST_CLIENT),
            code_client(OAuthServer::BASIC_CLIENT),
            {
                "client_id": service.id,
                "client_secret": service.secret,
                "token_endpoint_auth_method": service.auth_method,
                "grant_types": ["client_credentials"],
                "response_types": [],
                "redirect_uris": [],
                "scope": "read",
            },
        ],
        "accounts": [{
            "id": account.login,
            "password": account.password,
            "name": account.name,
            "email": account.email,
        }],
        "access_token_ttl_secs": options.access_token_ttl.as_secs().max(1),
    })
}

/// Keeps the `name=value` of every `Set-Cookie`; an expired one is removed.
fn store_cookies(cookies: &mut BTreeMap<String, String>, response: &reqwest::Response) {
    for set in response.headers().get_all(SET_COOKIE) {
        let Ok(set) = set.to_str() else { continue };
        let Some((name, rest)) = set.split_once('=') else {
            continue;
        };
        let value = rest.split(';').next().unwrap_or_default();
        let expired = set
            .to_ascii_lowercase()
            .contains("expires=thu, 01 jan 1970");
        if expired || value.is_empty() {
            cookies.remove(name.trim());
        } else {
            cookies.insert(name.trim().to_owned(), value.to_owned());
        }
    }
}

fn cookie_header(cookies: &BTreeMap<String, String>) -> String {
    cookies
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("; ")
}
