use std::{
    fmt,
    sync::{Arc, PoisonError, RwLock},
};

use backon::{ExponentialBuilder, Retryable as _};
use fleet_events::{ConnectionId, TenantId};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;
use tracing::warn;
use url::Url;
use vaultrs::{
    api::{
        self,
        kv2::requests::{ReadSecretRequest, SetSecretRequestOptions},
    },
    auth::approle,
    client::{Client as _, VaultClient, VaultClientSettings},
    kv2, token,
};

use crate::{
    Auth, Config, Error, VaultError, Version,
    cache::Cache,
    key::{Key, Keys},
    renewer::{Lease, Renewer},
};

/// The credential store: a handle on one KV v2 mount of Vault or OpenBao.
///
/// Cheap to clone; all clones share one token, which [`Renewer`] keeps alive, and one cache of
/// credential versions. Credentials go through [`stage`](Self::stage),
/// [`read_staged`](Self::read_staged), [`read_version`](Self::read_version),
/// [`rotate`](Self::rotate), [`discard`](Self::discard) and [`delete`](Self::delete).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    /// The token in use and its lease. A login replaces the session as a whole, so a request
    /// sees the old token or the new one; no lock is held across a request.
    session: RwLock<Session>,
    mount: String,
    auth: Auth,
    backoff: ExponentialBuilder,
    /// Versions of credentials this process has read.
    cache: Cache,
}

struct Session {
    vault: Arc<VaultClient>,
    lease: Lease,
}

/// One version of a secret as read: its `data` and its version number.
pub(crate) struct Read {
    pub(crate) data: Value,
    pub(crate) version: Version,
}

impl Client {
    /// Connects to Vault and authenticates: AppRole logs in; a token is checked with
    /// `auth/token/lookup-self`.
    ///
    /// Nothing reads `VAULT_*` environment variables: everything comes from `config`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an address that is not an `http(s)` URL, [`Error::Login`] when
    /// Vault refuses the credentials, [`Error::Unavailable`] when it cannot be reached.
    #[tracing::instrument(skip_all, fields(addr = %config.addr, auth = config.auth.method()))]
    pub async fn connect(config: Config) -> Result<Self, Error> {
        let base = VaultClient::new(settings(&config)?).map_err(|error| Error::Config {
            reason: VaultError::new(error).to_string(),
        })?;
        let backoff = config.retry.backoff();
        let session = authenticate(&base, &config.auth, backoff).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                session: RwLock::new(session),
                mount: config.mount,
                auth: config.auth,
                backoff,
                cache: Cache::new(config.cache.capacity, config.cache.ttl()),
            }),
        })
    }

    /// Checks that Vault answers, is unsealed and still accepts this
    /// client's token (`auth/token/lookup-self`), with one request and no
    /// retry.
    ///
    /// # Errors
    ///
    /// [`Error::Vault`] when it cannot be reached, is sealed, or refuses the
    /// token.
    pub async fn health(&self) -> Result<(), Error> {
        token::lookup_self(&*self.vault())
            .await
            .map(drop)
            .map_err(|error| {
                Error::vault("auth/token/lookup-self".to_owned(), VaultError::new(error))
            })
    }

    /// The task that keeps this client's token alive; run one per client.
    pub fn renewer(&self) -> Renewer {
        Renewer::new(self.clone())
    }

    pub(crate) fn keys(&self, tenant: &TenantId, connection: &ConnectionId) -> Keys<'_> {
        Keys::new(&self.inner.mount, tenant, connection)
    }

    pub(crate) fn cache(&self) -> &Cache {
        &self.inner.cache
    }

    pub(crate) fn can_login(&self) -> bool {
        matches!(self.inner.auth, Auth::AppRole { .. })
    }

    pub(crate) fn lease(&self) -> Lease {
        self.session().lease
    }

    /// Renews the token (`auth/token/renew-self`) and records its new lease.
    pub(crate) async fn renew(&self) -> Result<Lease, Error> {
        let auth = self
            .retry(|| async move {
                token::renew_self(&*self.vault(), None)
                    .await
                    .map_err(|error| {
                        Error::vault("auth/token/renew-self".to_owned(), VaultError::new(error))
                    })
            })
            .await?;
        let lease = Lease::new(auth.lease_duration, auth.renewable);
        self.write_session().lease = lease;
        Ok(lease)
    }

    /// Authenticates again with the configured credentials and switches to the new token.
    pub(crate) async fn login(&self) -> Result<(), Error> {
        let session = authenticate(&self.vault(), &self.inner.auth, self.inner.backoff).await?;
        *self.write_session() = session;
        Ok(())
    }

    /// Reads one version of `key`, or the latest when `version` is `None`; `None` when there is
    /// no such secret or version, or it was deleted or destroyed.
    pub(crate) async fn read(
        &self,
        key: &Key<'_>,
        version: Option<Version>,
    ) -> Result<Option<Read>, Error> {
        self.retry(|| async move {
            let request = ReadSecretRequest {
                mount: key.mount().to_owned(),
                path: key.path().to_owned(),
                version: version.map(Version::get),
            };
            let error = match api::exec_with_result(&*self.vault(), request).await {
                Ok(response) => {
                    return Ok(Some(Read {
                        data: response.data,
                        version: Version::new(response.metadata.version),
                    }));
                }
                Err(error) => VaultError::new(error),
            };
            if error.is_absent() {
                return Ok(None);
            }
            Err(Error::vault(key.at(version), error))
        })
        .await
    }

    /// Writes a new version of `key`.
    pub(crate) async fn write(&self, key: &Key<'_>, data: &Value) -> Result<Version, Error> {
        self.retry(|| async move {
            self.set(key, data, None)
                .await
                .map_err(|error| Error::vault(key.data(), error))
        })
        .await
    }

    /// Writes a new version of `key` if its current version is `expected` (0: if it does not
    /// exist); `None` when it is not.
    ///
    /// A retried write whose first attempt landed reads as a mismatch: callers that care
    /// re-read and compare.
    pub(crate) async fn write_cas(
        &self,
        key: &Key<'_>,
        data: &Value,
        expected: Version,
    ) -> Result<Option<Version>, Error> {
        let cas = u32::try_from(expected.get()).map_err(|_| Error::VersionOutOfRange {
            path: key.data(),
            version: expected,
        })?;
        self.retry(|| async move {
            match self
                .set(key, data, Some(SetSecretRequestOptions { cas }))
                .await
            {
                Ok(version) => Ok(Some(version)),
                Err(error) if error.is_cas_mismatch() => Ok(None),
                Err(error) => Err(Error::vault(key.data(), error)),
            }
        })
        .await
    }

    /// Destroys versions of `key`: their data is gone, their numbers stay used. Destroying a
    /// destroyed or missing version succeeds.
    pub(crate) async fn destroy(&self, key: &Key<'_>, versions: &[Version]) -> Result<(), Error> {
        if versions.is_empty() {
            return Ok(());
        }
        let numbers: Vec<u64> = versions.iter().map(|v| v.get()).collect();
        self.retry(|| async {
            kv2::destroy_versions(&*self.vault(), key.mount(), key.path(), numbers.clone())
                .await
                .map_err(|error| Error::vault(key.api("destroy"), VaultError::new(error)))
        })
        .await
    }

    /// Deletes `key` with all its versions and metadata; deleting a missing secret succeeds.
    pub(crate) async fn delete_all(&self, key: &Key<'_>) -> Result<(), Error> {
        self.retry(|| async move {
            kv2::delete_metadata(&*self.vault(), key.mount(), key.path())
                .await
                .map_err(|error| Error::vault(key.api("metadata"), VaultError::new(error)))
        })
        .await
    }

    async fn set(
        &self,
        key: &Key<'_>,
        data: &Value,
        options: Option<SetSecretRequestOptions>,
    ) -> Result<Version, VaultError> {
        let vault = self.vault();
        let written = match options {
            Some(options) => {
                kv2::set_with_options(&*vault, key.mount(), key.path(), data, options).await
            }
            None => kv2::set(&*vault, key.mount(), key.path(), data).await,
        };
        written
            .map(|metadata| Version::new(metadata.version))
            .map_err(VaultError::new)
    }

    async fn retry<T, F, Fut>(&self, operation: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        retry(self.inner.backoff, operation).await
    }

    fn vault(&self) -> Arc<VaultClient> {
        Arc::clone(&self.session().vault)
    }

    fn session(&self) -> std::sync::RwLockReadGuard<'_, Session> {
        self.inner
            .session
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write_session(&self) -> std::sync::RwLockWriteGuard<'_, Session> {
        self.inner
            .session
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Client {
    /// Shows where the client points, never its token (vaultrs keeps it in plain `String`s).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let vault = self.vault();
        f.debug_struct("Client")
            .field("addr", &vault.settings.address.as_str())
            .field("namespace", &vault.settings.namespace)
            .field("mount", &self.inner.mount)
            .field("auth", &self.inner.auth.method())
            .finish_non_exhaustive()
    }
}

/// Builds the vaultrs settings from `config` alone. vaultrs's settings builder fills unset
/// fields from `VAULT_ADDR`, `VAULT_TOKEN`, `VAULT_SKIP_VERIFY`, `VAULT_CACERT` and friends,
/// and panics on an invalid address, so every field is set here.
fn settings(config: &Config) -> Result<VaultClientSettings, Error> {
    let address = Url::parse(&config.addr)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
        .ok_or_else(|| Error::Config {
            reason: format!("addr {:?} is not an http(s)://host:port URL", config.addr),
        })?;
    let token = match &config.auth {
        Auth::Token { token } => token.expose_secret().to_owned(),
        Auth::AppRole { .. } => String::new(),
    };
    Ok(VaultClientSettings {
        address,
        ca_certs: Vec::new(),
        identity: None,
        timeout: Some(config.request_timeout()),
        token,
        verify: true,
        version: 1,
        wrapping: false,
        namespace: config.namespace.clone(),
        proxy: None,
    })
}

/// Gets a token with `auth`: AppRole logs in; a token is looked up to learn its lease.
async fn authenticate(
    base: &VaultClient,
    auth: &Auth,
    backoff: ExponentialBuilder,
) -> Result<Session, Error> {
    match auth {
        Auth::Token { .. } => {
            let lookup = retry(backoff, || async {
                token::lookup_self(base).await.map_err(|error| {
                    let path = "auth/token/lookup-self".to_owned();
                    Error::login(auth.method(), path, VaultError::new(error))
                })
            })
            .await?;
            Ok(Session {
                vault: Arc::new(with_token(base, &base.settings.token)),
                lease: Lease::new(lookup.ttl, lookup.renewable.unwrap_or(false)),
            })
        }
        Auth::AppRole {
            mount,
            role_id,
            secret_id,
            secret_id_file,
        } => {
            let secret_id = read_secret_id(secret_id.as_ref(), secret_id_file.as_deref())?;
            // Without a token: an expired one must not get in the way of the login.
            let anonymous = with_token(base, "");
            let login = retry(backoff, || async {
                approle::login(&anonymous, mount, role_id, secret_id.expose_secret())
                    .await
                    .map_err(|error| {
                        let path = format!("auth/{mount}/login");
                        Error::login(auth.method(), path, VaultError::new(error))
                    })
            })
            .await?;
            Ok(Session {
                vault: Arc::new(with_token(base, &login.client_token)),
                lease: Lease::new(login.lease_duration, login.renewable),
            })
        }
    }
}

/// The AppRole secret id: given, or read from its file now.
fn read_secret_id(
    given: Option<&SecretString>,
    file: Option<&std::path::Path>,
) -> Result<SecretString, Error> {
    match (given, file) {
        (Some(secret_id), None) => Ok(secret_id.clone()),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
                reason: format!(
                    "auth.secret_id_file {}: cannot be read: {e}",
                    path.display()
                ),
            })?;
            let secret_id = text.trim();
            if secret_id.is_empty() {
                return Err(Error::Config {
                    reason: format!("auth.secret_id_file {} is empty", path.display()),
                });
            }
            Ok(SecretString::from(secret_id.to_owned()))
        }
        (Some(_), Some(_)) => Err(Error::Config {
            reason: "auth.secret_id and auth.secret_id_file are both set; give one".to_owned(),
        }),
        (None, None) => Err(Error::Config {
            reason: "approle login needs auth.secret_id or auth.secret_id_file".to_owned(),
        }),
    }
}

/// A copy of `vault` that sends `token` (none when empty), sharing its connection pool.
fn with_token(vault: &VaultClient, token: &str) -> VaultClient {
    let mut copy = VaultClient {
        http: rustify::clients::reqwest::Client::new(&vault.http.base, vault.http.http.clone()),
        middle: vault.middle.clone(),
        settings: vault.settings.clone(),
    };
    copy.set_token(token);
    copy
}

/// Runs `operation` again after transient failures, with jittered exponential backoff.
async fn retry<T, F, Fut>(backoff: ExponentialBuilder, operation: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    operation
        .retry(backoff)
        .when(Error::is_transient)
        .notify(|error, delay| {
            warn!(error.message = %error, ?delay, "Retrying a Vault request after a transient failure.");
        })
        .await
}
