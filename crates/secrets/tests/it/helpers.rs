use std::error::Error as _;

use fleet_events::{ConnectionId, TenantId};
use fleet_secrets::{Auth, CacheConfig, Client, Config, Error, Retry};
use fleet_testkit::{AppRoleCredentials, OpenBao};
use serde::{Deserialize, Serialize};
use vaultrs::{
    api::auth::approle::requests::SetAppRoleRequest,
    client::{VaultClient, VaultClientSettingsBuilder},
};

/// A password distinctive enough that finding it in any text means it leaked.
pub(crate) const PASSWORD: &str = "pw-7f3c1e9a-must-never-be-logged";

/// Credentials as the `connectors` crate would store them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AppPassword {
    pub(crate) username: String,
    pub(crate) password: String,
}

impl AppPassword {
    pub(crate) fn new(password: &str) -> Self {
        Self {
            username: "editor".to_owned(),
            password: password.to_owned(),
        }
    }
}

/// An OpenBao server and a fresh KV v2 mount on it.
pub(crate) struct TestVault {
    pub(crate) bao: OpenBao,
    pub(crate) mount: String,
}

impl TestVault {
    pub(crate) async fn start() -> Self {
        let bao = OpenBao::start().await;
        let mount = bao.new_kv_mount().await;
        Self { bao, mount }
    }

    pub(crate) fn config(&self, auth: Auth) -> Config {
        Config {
            addr: self.bao.addr(),
            mount: self.mount.clone(),
            auth,
            namespace: None,
            request_timeout_secs: 5,
            retry: Retry::default(),
            cache: CacheConfig::default(),
        }
    }

    pub(crate) fn root_auth(&self) -> Auth {
        Auth::Token {
            token: self.bao.root_token().into(),
        }
    }

    /// A client authenticated with the root token.
    pub(crate) async fn client(&self) -> Client {
        Client::connect(self.config(self.root_auth()))
            .await
            .unwrap()
    }

    /// AppRole credentials of the role `worker`, which may use the test mount.
    pub(crate) async fn approle(&self) -> AppRoleCredentials {
        self.bao.enable_approle("worker", &self.mount).await
    }

    /// Like [`approle`](Self::approle), with tokens that live `token_ttl` and at most
    /// `token_max_ttl` (durations such as `"3s"`).
    pub(crate) async fn short_lived_approle(
        &self,
        token_ttl: &str,
        token_max_ttl: &str,
    ) -> AppRoleCredentials {
        let credentials = self.approle().await;
        let mut ttls = SetAppRoleRequest::builder();
        ttls.token_ttl(token_ttl)
            .token_max_ttl(token_max_ttl)
            .token_policies(vec!["worker".to_owned()]);
        vaultrs::auth::approle::role::set(
            &self.root_vaultrs(),
            "approle",
            "worker",
            Some(&mut ttls),
        )
        .await
        .unwrap();
        credentials
    }

    /// A client authenticated with the root token that caches nothing.
    pub(crate) async fn uncached_client(&self) -> Client {
        let mut config = self.config(self.root_auth());
        config.cache = CacheConfig::OFF;
        Client::connect(config).await.unwrap()
    }

    /// Writes `data` as a new version of the connection's secret `name` (`credentials`, or the
    /// legacy `staged` and `active`) behind the crate's back.
    pub(crate) async fn root_write(
        &self,
        connection: &ConnectionId,
        name: &str,
        data: &serde_json::Value,
    ) -> u64 {
        let path = format!("tenants/acme/connections/{connection}/{name}");
        vaultrs::kv2::set(&self.root_vaultrs(), &self.mount, &path, data)
            .await
            .unwrap()
            .version
    }

    /// Destroys a version of the connection's `credentials` behind the crate's back.
    pub(crate) async fn root_destroy(&self, connection: &ConnectionId, version: u64) {
        let path = format!("tenants/acme/connections/{connection}/credentials");
        vaultrs::kv2::destroy_versions(&self.root_vaultrs(), &self.mount, &path, vec![version])
            .await
            .unwrap();
    }

    /// A plain vaultrs client with the root token, for arranging what the crate does not do.
    pub(crate) fn root_vaultrs(&self) -> VaultClient {
        let settings = VaultClientSettingsBuilder::default()
            .address(self.bao.addr())
            .token(self.bao.root_token())
            .build()
            .unwrap();
        VaultClient::new(settings).unwrap()
    }
}

pub(crate) fn ids() -> (TenantId, ConnectionId) {
    (TenantId::parse("acme").unwrap(), ConnectionId::new())
}

/// Everything an error can print: its `Display` and `Debug` and those of all its sources.
pub(crate) fn everything_printed(error: &Error) -> String {
    let mut text = format!("{error}\n{error:?}");
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!("\n{cause}\n{cause:?}"));
        source = cause.source();
    }
    text
}

#[track_caller]
pub(crate) fn assert_absent(text: &str, secret: &str) {
    assert!(!text.contains(secret), "{secret:?} leaked into:\n{text}");
}
