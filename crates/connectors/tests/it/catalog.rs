use fleet_connectors::{
    Catalog, Config, Registry,
    catalog::{Auth, FieldKind},
};
use fleet_events::ConnectorId;

fn id(id: &str) -> ConnectorId {
    ConnectorId::parse(id).unwrap()
}

#[test]
fn every_built_in_entry_parses_and_is_valid() {
    let catalog = Catalog::builtin();

    let ids: Vec<_> = catalog.iter().map(|entry| entry.id.as_str()).collect();
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
    for entry in catalog.iter() {
        assert!(!entry.display_name.is_empty(), "{}", entry.id);
        assert_eq!(entry.docs_url.scheme(), "https", "{}", entry.id);
        match &entry.auth {
            Auth::OAuth2(settings) => {
                assert!(!settings.scopes.is_empty(), "{}", entry.id);
                assert!(settings.client_secret.is_none(), "{}", entry.id);
                assert!(
                    settings.token_url.as_str().starts_with("https://"),
                    "{}",
                    entry.id
                );
            }
            Auth::OAuth1(settings) => {
                assert_eq!(settings.authorize_params["expiration"], "never");
            }
            Auth::AppPassword => {
                let fields: Vec<_> = entry
                    .form
                    .iter()
                    .map(|f| (f.name.as_str(), f.kind))
                    .collect();
                assert_eq!(
                    fields,
                    [
                        ("site_url", FieldKind::Url),
                        ("username", FieldKind::Text),
                        ("application_password", FieldKind::Password),
                    ]
                );
            }
            Auth::ApiKey(_) | Auth::Basic(_) | Auth::ClientCredentials(_) => {
                panic!(
                    "{}: no built-in entry takes typed-in API credentials",
                    entry.id
                )
            }
        }
    }
}

#[test]
fn google_analytics_asks_for_offline_access_with_pkce() {
    let catalog = Catalog::builtin();

    let Auth::OAuth2(google) = &catalog.get(&id("google-analytics")).unwrap().auth else {
        panic!("expected OAuth 2.0");
    };
    assert!(google.pkce);
    assert_eq!(google.authorize_params["access_type"], "offline");
    assert_eq!(google.authorize_params["prompt"], "consent");
}

#[test]
fn an_override_directory_changes_a_url_field_by_field_and_adds_a_provider() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("google-analytics.toml"),
        "[oauth2]\ntoken_url = \"http://127.0.0.1:9/token\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("acme.toml"),
        "display_name = \"Acme\"\nauth = \"oauth2\"\ndocs_url = \"https://acme.test/docs\"\n\
         default_sync_interval_secs = 600\n[oauth2]\nauthorize_url = \"https://acme.test/a\"\n\
         token_url = \"https://acme.test/t\"\nuserinfo_url = \"https://acme.test/me\"\n",
    )
    .unwrap();

    let catalog = Catalog::with_overrides(dir.path()).unwrap();

    let Auth::OAuth2(google) = &catalog.get(&id("google-analytics")).unwrap().auth else {
        panic!("expected OAuth 2.0");
    };
    assert_eq!(google.token_url.as_str(), "http://127.0.0.1:9/token");
    assert_eq!(
        google.authorize_url.as_str(),
        "https://accounts.google.com/o/oauth2/v2/auth"
    );
    assert!(google.pkce);
    let acme = catalog.get(&id("acme")).unwrap();
    assert_eq!(acme.display_name, "Acme");
    let registry = Registry::new(&Config {
        catalog_dir: Some(dir.path().to_owned()),
        ..Config::default()
    })
    .unwrap();
    let streams: Vec<_> = registry
        .get(&id("acme"))
        .unwrap()
        .streams()
        .iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(streams, ["account"], "the grant is checked on every sync");
}

#[test]
fn an_incomplete_new_provider_fails_the_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("half.toml"), "display_name = \"Half\"\n").unwrap();

    let error = Catalog::with_overrides(dir.path()).unwrap_err();

    assert!(error.to_string().contains("'half'"), "{error}");
}

#[test]
fn an_oauth_client_for_an_entry_without_oauth2_fails_the_build() {
    let config = Config {
        oauth_clients: [(
            "wordpress".to_owned(),
            fleet_connectors::OAuthClient {
                client_id: None,
                client_secret: "s".into(),
            },
        )]
        .into(),
        ..Config::default()
    };

    assert!(Registry::new(&config).is_err());
}

/// The message of loading a catalog whose `bad.toml` is an OAuth 2.0
/// entry with `extra` appended (after its `[oauth2]` table's keys).
fn load_error(extra: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        format!(
            "display_name = \"Bad\"\nauth = \"oauth2\"\ndocs_url = \"https://bad.test\"\n\
             default_sync_interval_secs = 60\n\
             [[settings]]\nname = \"subdomain\"\nlabel = \"Subdomain\"\n\
             [oauth2]\nauthorize_url = \"https://{{subdomain}}.bad.test/a\"\n\
             token_url = \"https://{{subdomain}}.bad.test/t\"\n\
             userinfo_url = \"https://{{subdomain}}.bad.test/me\"\n{extra}\n"
        ),
    )
    .unwrap();
    let error = Catalog::with_overrides(dir.path()).unwrap_err();
    let mut chain = vec![error.to_string()];
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        chain.push(cause.to_string());
        source = cause.source();
    }
    let message = chain.join(": ");
    assert!(message.contains("bad.toml"), "{message}");
    message
}

#[test]
fn a_bad_catalog_file_is_refused_naming_the_file_the_key_and_the_reason() {
    for (extra, key, reason) in [
        (
            "revoke_url = \"https://{tenant}.bad.test/r\"",
            "oauth2.revoke_url",
            "uses {tenant}, which is neither a setting",
        ),
        (
            "token_params = { audience = \"{instance_url}\" }\n\
             [[oauth2.token_values]]\nname = \"instance_url\"",
            "oauth2.token_params.audience",
            "values kept from the token response exist only after the code exchange",
        ),
        (
            "refresh_url = \"{instance_url}/token\"\n\
             [[oauth2.token_values]]\nname = \"instance_url\"",
            "oauth2.refresh_url",
            "lets {instance_url} choose the host",
        ),
        (
            // A kept address held by a pattern that fixes no host: an
            // address on another host with the domain in its path passes.
            "refresh_url = \"{instance_url}/token\"\n\
             [[oauth2.token_values]]\nname = \"instance_url\"\n\
             pattern = \"https://.*\\\\.salesforce\\\\.com\"",
            "oauth2.refresh_url",
            "lets {instance_url} choose the host",
        ),
        (
            "[[oauth2.token_values]]\nname = \"id\"\npattern = \"(unclosed\"",
            "oauth2.token_values[0].pattern",
            "is not a regular expression",
        ),
        (
            "token_params = { client_secret = \"x\" }",
            "oauth2.token_params.client_secret",
            "carries a secret",
        ),
        (
            "authorize_param_names = { nonce = \"n\" }",
            "oauth2.authorize_param_names.nonce",
            "no standard authorize parameter",
        ),
        (
            "client_auth = \"client_secret_basic\"\ncode_exchange = \"get\"",
            "oauth2.client_auth",
            "work only with code_exchange",
        ),
        (
            "client_auth = \"private_key_jwt\"",
            "client_auth",
            "unknown variant",
        ),
        (
            "[[form]]\nname = \"x\"\nlabel = \"X\"\nkind = \"text\"\npattern = \"[\"",
            "form[0].pattern",
            "is not a regular expression",
        ),
        (
            "authorize_query_replacements = { \"%2C\" = \"&x=\" }",
            "oauth2.authorize_query_replacements",
            "neither side may hold",
        ),
        (
            "authorize_param_names = { state = \"\" }",
            "oauth2.authorize_param_names.state",
            "only response_type may be left out",
        ),
        (
            "callback_code_param = \"state\"",
            "oauth2.callback_code_param",
            "other than state",
        ),
        (
            "authorize_param_names = { response_type = \" \" }",
            "oauth2.authorize_param_names.response_type",
            "spaces around it",
        ),
        (
            "[[settings]]\nname = \"token\"\nlabel = \"Token\"\nsecret = true",
            "settings[1].secret",
            "is for api_key, basic and oauth2_client_credentials entries",
        ),
        (
            "token_params = { nonce = \"{random}\" }",
            "oauth2.token_params.nonce",
            "uses {random}",
        ),
    ] {
        let message = load_error(extra);
        assert!(message.contains(key), "{extra}: {message}");
        assert!(message.contains(reason), "{extra}: {message}");
    }
}

#[test]
fn a_setting_that_chooses_a_whole_host_needs_a_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let entry = |pattern: &str| {
        format!(
            "display_name = \"Shop\"\nauth = \"oauth2\"\ndocs_url = \"https://shop.test\"\n\
             default_sync_interval_secs = 60\n\
             [[settings]]\nname = \"shop\"\nlabel = \"Shop address\"\n{pattern}\n\
             [oauth2]\nauthorize_url = \"https://{{shop}}/admin/oauth/authorize\"\n\
             token_url = \"https://{{shop}}/admin/oauth/access_token\"\n\
             userinfo_url = \"https://{{shop}}/admin/api/shop.json\"\n"
        )
    };
    std::fs::write(dir.path().join("shop.toml"), entry("")).unwrap();

    let error = Catalog::with_overrides(dir.path()).unwrap_err().to_string();
    assert!(error.contains("shop.toml"), "{error}");
    assert!(
        error.contains("oauth2.authorize_url lets {shop} choose the host"),
        "{error}"
    );

    std::fs::write(
        dir.path().join("shop.toml"),
        entry("pattern = \"[a-z0-9-]+\\\\.myshopify\\\\.com\""),
    )
    .unwrap();
    let catalog = Catalog::with_overrides(dir.path()).unwrap();
    let shop = catalog.get(&id("shop")).unwrap();
    let settings = [("shop".to_owned(), "evil.test".to_owned())].into();
    assert!(shop.check_settings(&settings).is_err());
}

#[test]
fn an_entry_with_every_oauth2_feature_loads_and_a_free_host_without_a_pattern_does_not() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/catalog");
    let load = |file: &str, id: &str| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(corpus.join(file), dir.path().join(format!("{id}.toml"))).unwrap();
        Catalog::with_overrides(dir.path())
    };

    let catalog = load("new-oauth2-settings-entry.toml", "acme-helpdesk").unwrap();
    let entry = catalog.get(&id("acme-helpdesk")).unwrap();
    let Auth::OAuth2(oauth2) = &entry.auth else {
        panic!("expected OAuth 2.0");
    };
    assert_eq!(entry.settings.len(), 2);
    assert_eq!(oauth2.token_values.len(), 2);
    let values = [
        (
            "instance_url".to_owned(),
            "https://eu7.acme.example".to_owned(),
        ),
        ("subdomain".to_owned(), "demo".to_owned()),
    ]
    .into_iter()
    .collect();
    let api = entry.api_base_url_for("api", &values).unwrap().unwrap();
    assert_eq!(api.as_str(), "https://eu7.acme.example/api/v2");

    let error = load("new-oauth2-free-host.toml", "shop")
        .unwrap_err()
        .to_string();
    assert!(error.contains("lets {shop} choose the host"), "{error}");
}

#[test]
fn a_host_the_operator_fixes_loads_empty_and_starts_the_fleet_only_once_filled_in() {
    let file = |value: &str| {
        format!(
            "display_name = \"Campus\"\nauth = \"oauth2\"\ndocs_url = \"https://campus.test\"\n\
             default_sync_interval_secs = 60\n\
             [[settings]]\nname = \"hostname\"\nlabel = \"Host\"\nvalue = \"{value}\"\n\
             [oauth2]\nauthorize_url = \"https://{{hostname}}/login/oauth2/auth\"\n\
             token_url = \"https://{{hostname}}/login/oauth2/token\"\ntoken_only = true\n"
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        catalog_dir: Some(dir.path().to_owned()),
        ..Config::default()
    };

    std::fs::write(dir.path().join("campus.toml"), file("")).unwrap();
    Catalog::with_overrides(dir.path()).unwrap();
    let error = Registry::new(&config).err().unwrap();
    let error = std::iter::successors(Some(&error as &dyn std::error::Error), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    assert!(
        error.contains("campus.toml") && error.contains("settings[0].value is empty"),
        "{error}"
    );

    // A value the host position refuses is refused at load, naming the key.
    std::fs::write(dir.path().join("campus.toml"), file("evil.test/x")).unwrap();
    let error = Catalog::with_overrides(dir.path()).unwrap_err().to_string();
    assert!(error.contains("settings[0].value"), "{error}");

    std::fs::write(dir.path().join("campus.toml"), file("lms.campus.test")).unwrap();
    let registry = Registry::new(&config).unwrap();
    let entry = registry.catalog().get(&id("campus")).unwrap();
    assert!(entry.settings.iter().all(|s| !s.is_asked()));
    let values = entry.check_settings(&Default::default()).unwrap();
    assert_eq!(values["hostname"], "lms.campus.test");
}
