//! The connectors of every catalog entry, built once.

use std::{collections::BTreeMap, sync::Arc};

use fleet_events::ConnectorId;

use crate::{
    BuildError, Catalog, Config, Connector,
    catalog::{Auth, CatalogEntry, CatalogError, FieldKind, Template, UrlTemplate},
    http::Http,
    oauth1, oauth2,
    providers::{
        Provider, ProviderConnector,
        fluentcrm::FluentCrm,
        generic_oauth2::{Access, GenericOAuth2},
        google_analytics::GoogleAnalytics,
        linkedin::LinkedIn,
        meta::Meta,
        trello::Trello,
        wordpress::WordPress,
    },
};

/// The [`Catalog`] and a connector for every entry that has one, by
/// [`ConnectorId`]. Cheap to clone; the connectors share one HTTP client
/// (and its connection pool).
///
/// Which entries get a connector: `wordpress` and `fluentcrm`
/// (application passwords), `google-analytics`, `meta` and `linkedin`
/// (their own sync mappings), and every other OAuth 2.0 entry with a `userinfo_url`, which validates
/// through it and has no streams, and `trello` (OAuth 1.0a, signed
/// requests).
#[derive(Debug, Clone)]
pub struct Registry {
    catalog: Arc<Catalog>,
    connectors: BTreeMap<ConnectorId, Arc<dyn Connector>>,
    http: Http,
}

impl Registry {
    /// Loads the catalog of `config` (built-in entries, the operator's
    /// overrides and OAuth clients) and builds every connector with its
    /// HTTP settings.
    ///
    /// # Errors
    ///
    /// [`BuildError`] when the HTTP client cannot be built, such as for a
    /// User-Agent that is not a valid header value, or the catalog cannot
    /// be loaded.
    pub fn new(config: &Config) -> Result<Self, BuildError> {
        let http = Http::new(config)?;
        let catalog = Catalog::from_config(config)?;
        let mut connectors = BTreeMap::new();
        for entry in catalog.iter() {
            if let Some(connector) = connector(entry, &http)? {
                connectors.insert(entry.id.clone(), connector);
            }
        }
        Ok(Self {
            catalog: Arc::new(catalog),
            connectors,
            http,
        })
    }

    /// The connector with catalog id `id`, if there is one.
    pub fn get(&self, id: &ConnectorId) -> Option<Arc<dyn Connector>> {
        self.connectors.get(id).cloned()
    }

    /// Every connector, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Connector>> {
        self.connectors.values()
    }

    /// The catalog the connectors were built from.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The OAuth 2.0 client of catalog entry `id`, when it is an OAuth 2.0
    /// entry.
    pub fn oauth2(&self, id: &ConnectorId) -> Option<oauth2::Client> {
        let entry = self.catalog.get(id)?;
        let Auth::OAuth2(settings) = &entry.auth else {
            return None;
        };
        Some(oauth2::Client::new(
            entry.id.clone(),
            entry.display_name.clone(),
            (**settings).clone(),
            self.http.clone(),
        ))
    }

    /// The OAuth 2.0 client that fetches access tokens for a connection of
    /// `oauth2_client_credentials` entry `id` with its `credentials` (the
    /// client id and secret the user typed in); `None` for other entries
    /// or credentials.
    pub fn client_credentials(
        &self,
        id: &ConnectorId,
        credentials: &crate::Credentials,
    ) -> Option<oauth2::Client> {
        let entry = self.catalog.get(id)?;
        let Auth::ClientCredentials(settings) = &entry.auth else {
            return None;
        };
        let crate::Credentials::ClientCredentials {
            client_id,
            client_secret,
            ..
        } = credentials
        else {
            return None;
        };
        Some(oauth2::Client::new(
            entry.id.clone(),
            entry.display_name.clone(),
            settings.oauth2(client_id, client_secret),
            self.http.clone(),
        ))
    }

    /// The OAuth 1.0a client of catalog entry `id`, when it is an OAuth
    /// 1.0a entry. It builds without a consumer key or secret; its flow
    /// then fails with [`Error::ClientNotConfigured`](crate::Error::ClientNotConfigured).
    pub fn oauth1(&self, id: &ConnectorId) -> Option<oauth1::Client> {
        let entry = self.catalog.get(id)?;
        let Auth::OAuth1(settings) = &entry.auth else {
            return None;
        };
        Some(oauth1::Client::new(
            entry.id.clone(),
            entry.display_name.clone(),
            (**settings).clone(),
            self.http.clone(),
        ))
    }
}

/// The connector of `entry`, if it has one.
fn connector(
    entry: &CatalogEntry,
    http: &Http,
) -> Result<Option<Arc<dyn Connector>>, CatalogError> {
    let http = http.clone();
    if let Some((index, setting)) = entry
        .settings
        .iter()
        .enumerate()
        .find(|(_, s)| s.value.as_deref().is_some_and(|v| v.trim().is_empty()))
    {
        return Err(CatalogError::Key {
            file: entry.file.clone(),
            id: entry.id.to_string(),
            key: format!("settings[{index}].value"),
            reason: format!(
                "is empty: {} ({}) is fixed by the operator for every connection; set it to \
                 the value your client is registered for (a host of your own instance), or \
                 remove `value` and give the setting a pattern or an allowed list that only \
                 the provider's values match, so that each user gives it when connecting",
                setting.name, setting.label
            ),
        });
    }
    let coded = [
        "wordpress",
        "fluentcrm",
        "google-analytics",
        "meta",
        "linkedin",
        "trello",
    ];
    if coded.contains(&entry.id.as_str()) && entry.has_templated_api_base_urls() {
        return Err(CatalogError::Key {
            file: entry.file.clone(),
            id: entry.id.to_string(),
            key: "api_base_urls".to_owned(),
            reason: "hold placeholders, which this entry's own connector cannot fill".to_owned(),
        });
    }
    let connector = match (entry.id.as_str(), &entry.auth) {
        ("wordpress", Auth::AppPassword) => built(WordPress::new(http)),
        ("fluentcrm", Auth::AppPassword) => built(FluentCrm::new(http)),
        ("google-analytics", Auth::OAuth2(_)) => built(GoogleAnalytics::new(entry, http)?),
        ("meta", Auth::OAuth2(_)) => built(Meta::new(entry, http)?),
        ("linkedin", Auth::OAuth2(_)) => built(LinkedIn::new(entry, http)?),
        ("trello", Auth::OAuth1(settings)) => built(Trello::new(entry, settings, http)?),
        (_, Auth::OAuth2(settings)) => {
            if settings.userinfo_url.is_none() && !settings.token_only {
                return Err(CatalogError::Key {
                    file: entry.file.clone(),
                    id: entry.id.to_string(),
                    key: "oauth2.userinfo_url".to_owned(),
                    reason: "is missing, and the entry has no connector of its own: set \
                             userinfo_url (an endpoint that answers the access token with the \
                             user's identity) so that connecting and every sync can check the \
                             grant, or token_only = true to check it at the token endpoint \
                             only"
                        .to_owned(),
                });
            }
            built(GenericOAuth2::new(
                entry.id.clone(),
                entry.display_name.clone(),
                settings.userinfo_url.clone(),
                settings
                    .token_values
                    .iter()
                    .map(|v| v.name.clone())
                    .collect(),
                http,
            ))
        }
        (_, Auth::ApiKey(settings)) => typed_in(
            entry,
            (
                verify_url(entry, "api_key", settings.verify_url.as_ref())?,
                &settings.headers,
            ),
            Access::api_key(settings),
            http,
        ),
        (_, Auth::Basic(settings)) => typed_in(
            entry,
            (
                verify_url(entry, "basic", settings.verify_url.as_ref())?,
                &settings.headers,
            ),
            match (
                &settings.aws_sigv4,
                &settings.duo_signature,
                &settings.http_signature,
            ) {
                (Some(sigv4), _, _) => Access::AwsSigV4(sigv4.clone()),
                (None, Some(duo), _) => Access::Duo(duo.digest),
                (None, None, Some(signature)) => Access::HttpSignature(Box::new(signature.clone())),
                (None, None, None) => Access::Basic {
                    username: settings.username.clone(),
                    secret_username: entry
                        .form
                        .iter()
                        .any(|f| f.name == "username" && f.kind == FieldKind::Password),
                    // Checked when the catalog was loaded.
                    header: settings.header.as_deref().and_then(|name| {
                        reqwest::header::HeaderName::from_bytes(name.as_bytes()).ok()
                    }),
                },
            },
            http,
        ),
        // Without a verify_url, the token endpoint is the check.
        (_, Auth::ClientCredentials(settings)) => typed_in(
            entry,
            (settings.verify_url.clone(), &settings.headers),
            Access::ClientCredentials(settings.clone()),
            http,
        ),
        (_, Auth::OAuth1(_) | Auth::AppPassword) => return Ok(None),
    };
    Ok(Some(connector))
}

/// The `verify_url` of an `api_key` or `basic` entry, which needs one.
fn verify_url(
    entry: &CatalogEntry,
    table: &str,
    url: Option<&UrlTemplate>,
) -> Result<Option<UrlTemplate>, CatalogError> {
    match url {
        Some(url) => Ok(Some(url.clone())),
        None => Err(CatalogError::Key {
            file: entry.file.clone(),
            id: entry.id.to_string(),
            key: format!("{table}.verify_url"),
            reason: "is missing: set verify_url (an endpoint that answers 2xx to a request \
                     with valid credentials) so that connecting and every sync can check them"
                .to_owned(),
        }),
    }
}

/// The generic connector of an entry of typed-in credentials, which
/// validates and syncs at its `verify_url` (a client-credentials entry
/// without one at its token endpoint).
fn typed_in(
    entry: &CatalogEntry,
    (verify_url, headers): (Option<UrlTemplate>, &BTreeMap<String, Template>),
    access: Access,
    http: Http,
) -> Arc<dyn Connector> {
    built(
        GenericOAuth2::with_access(
            entry.id.clone(),
            entry.display_name.clone(),
            verify_url,
            Vec::new(),
            access,
            http,
        )
        .with_headers(
            headers,
            entry
                .settings
                .iter()
                .filter(|s| s.secret)
                .map(|s| s.name.clone()),
        )
        .with_verify_request_of(&entry.auth),
    )
}

/// The connector of `provider`.
fn built(provider: impl Provider) -> Arc<dyn Connector> {
    Arc::new(ProviderConnector::new(provider))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_builds_the_connectors_the_catalog_maps() {
        let registry = Registry::new(&Config::default()).unwrap();

        let ids: Vec<_> = registry.iter().map(|c| c.id().as_str()).collect();
        assert_eq!(
            ids,
            [
                "fluentcrm",
                "google-analytics",
                "linkedin",
                "meta",
                "trello",
                "wordpress"
            ]
        );
        let wordpress = registry
            .get(&ConnectorId::parse("wordpress").unwrap())
            .unwrap();
        let streams: Vec<_> = wordpress.streams().iter().map(|s| s.name).collect();
        assert_eq!(streams, ["posts", "pages"]);
        for (id, stream) in [("meta", "ad_insights"), ("linkedin", "follower_statistics")] {
            let connector = registry.get(&ConnectorId::parse(id).unwrap()).unwrap();
            let streams: Vec<_> = connector.streams().iter().map(|s| s.name).collect();
            assert_eq!(streams, [stream]);
        }
        let trello = ConnectorId::parse("trello").unwrap();
        let streams: Vec<_> = registry
            .get(&trello)
            .unwrap()
            .streams()
            .iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(streams, ["boards", "cards"]);
        assert!(registry.oauth2(&trello).is_none());
        assert!(registry.oauth1(&trello).is_some());
        assert!(
            registry
                .oauth1(&ConnectorId::parse("wordpress").unwrap())
                .is_none()
        );
    }

    /// The error of building a registry from one catalog file, with its causes.
    fn refusal(file: &str, text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(file), text).unwrap();
        let config = Config {
            catalog_dir: Some(dir.path().to_owned()),
            ..Config::default()
        };
        let error = Registry::new(&config).unwrap_err();
        let mut error: Option<&dyn std::error::Error> = Some(&error);
        let mut chain = Vec::new();
        while let Some(cause) = error {
            chain.push(cause.to_string());
            error = cause.source();
        }
        chain.join(": ")
    }

    #[test]
    fn api_key_and_basic_entries_without_a_verify_url_are_refused_at_start_up() {
        let head = "display_name = \"Acme\"\ndocs_url = \"https://x.test\"\n\
                    default_sync_interval_secs = 60\n";
        let key = refusal(
            "acme-key.toml",
            &format!("{head}auth = \"api_key\"\n[api_key]\nheader = \"X-Api-Key\"\n"),
        );
        let basic = refusal(
            "acme-basic.toml",
            &format!("{head}auth = \"basic\"\n[basic]\n"),
        );

        assert!(
            key.contains("acme-key.toml (entry 'acme-key'): api_key.verify_url is missing"),
            "{key}"
        );
        assert!(
            basic.contains("acme-basic.toml (entry 'acme-basic'): basic.verify_url is missing"),
            "{basic}"
        );
    }

    #[test]
    fn a_client_credentials_entry_without_a_verify_url_is_checked_at_its_token_endpoint() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("acme-cc.toml"),
            "display_name = \"Acme\"\nauth = \"oauth2_client_credentials\"\n\
             docs_url = \"https://x.test\"\ndefault_sync_interval_secs = 60\n\
             [oauth2_client_credentials]\ntoken_url = \"https://x.test/t\"\n",
        )
        .unwrap();
        let config = Config {
            catalog_dir: Some(dir.path().to_owned()),
            ..Config::default()
        };

        let registry = Registry::new(&config).unwrap();

        let id = ConnectorId::parse("acme-cc").unwrap();
        let streams: Vec<&str> = registry
            .get(&id)
            .unwrap()
            .streams()
            .iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(streams, ["account"]);
    }

    #[test]
    fn an_oauth2_entry_without_a_connector_or_userinfo_url_is_refused_at_start_up() {
        let error = refusal(
            "acme-id.toml",
            "display_name = \"Acme ID\"\nauth = \"oauth2\"\ndocs_url = \"https://x.test\"\n\
             default_sync_interval_secs = 60\n[oauth2]\nauthorize_url = \"https://x.test/a\"\n\
             token_url = \"https://x.test/t\"\n",
        );

        assert!(error.contains("'acme-id'"), "{error}");
        assert!(
            error.contains("acme-id.toml (entry 'acme-id'): oauth2.userinfo_url is missing"),
            "{error}"
        );
    }

    #[test]
    fn a_token_only_entry_loads_and_one_that_also_names_a_userinfo_url_is_refused() {
        let entry = "display_name = \"Acme ID\"\nauth = \"oauth2\"\ndocs_url = \"https://x.test\"\n\
                     default_sync_interval_secs = 60\n[oauth2]\nauthorize_url = \"https://x.test/a\"\n\
                     token_url = \"https://x.test/t\"\ntoken_only = true\n";
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("acme-id.toml"), entry).unwrap();
        let registry = Registry::new(&Config {
            catalog_dir: Some(dir.path().to_owned()),
            ..Config::default()
        })
        .unwrap();
        assert!(
            registry
                .get(&ConnectorId::parse("acme-id").unwrap())
                .is_some()
        );

        let error = refusal(
            "acme-id.toml",
            &format!("{entry}userinfo_url = \"https://x.test/me\"\n"),
        );
        assert!(
            error.contains(
                "acme-id.toml (entry 'acme-id'): oauth2.token_only is set beside userinfo_url"
            ),
            "{error}"
        );
    }

    #[test]
    fn invalid_user_agent_fails_the_build() {
        let config = Config {
            user_agent: "bad\nagent".to_owned(),
            ..Config::default()
        };

        assert!(Registry::new(&config).is_err());
    }
}
