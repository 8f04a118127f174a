//! What the catalog can say of an OAuth 2.0 provider beyond RFC 6749's
//! defaults, against the simulator's Acme: client authentication by HTTP
//! Basic or in the body, JSON token bodies, extra token and refresh
//! parameters, values kept from the token response, per-connection
//! settings in URLs and parameters, and authorize URL quirks.

use std::collections::BTreeMap;

use fleet_connectors::{
    Catalog, Config, ConnectionValues, Credentials, Error, OAuthClient, oauth2::Client,
};
use fleet_events::ConnectorId;
use fleet_sim::{AcmeClientAuth, AcmeConfig, Sim, SimHandle};

use crate::helpers::{config, consent, oauth, redirect_uri};

/// Starts a simulator whose Acme follows `acme`.
async fn spawn_acme(acme: AcmeConfig) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Sim::start(listener, &fleet_sim::Config::default().acme(acme)).unwrap()
}

/// A catalog directory with `acme.toml`: the simulator's Acme, whose
/// tenant is the setting `tenant`, with `oauth2` appended to its
/// `[oauth2]` table.
fn acme_catalog(sim: &SimHandle, oauth2: &str) -> tempfile::TempDir {
    let base = sim.base_url();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acme.toml"),
        format!(
            "display_name = \"Acme\"\nauth = \"oauth2\"\ndocs_url = \"https://acme.test/docs\"\n\
             default_sync_interval_secs = 3600\n\
             [[settings]]\nname = \"tenant\"\nlabel = \"Acme tenant\"\n\
             help = \"The name before .acme.example in your Acme address\"\n\
             pattern = \"[a-z0-9][a-z0-9-]{{0,30}}\"\n\
             [oauth2]\nauthorize_url = \"{base}/acme/{{tenant}}/oauth/authorize\"\n\
             token_url = \"{base}/acme/{{tenant}}/oauth/token\"\n\
             revoke_url = \"{base}/acme/{{tenant}}/oauth/revoke\"\n\
             userinfo_url = \"{base}/acme/{{tenant}}/api/userinfo\"\n\
             scopes = [\"read\"]\npkce = true\n{oauth2}\n"
        ),
    )
    .unwrap();
    dir
}

/// Settings for tests with the catalog of `dir` and Acme's default client.
fn acme_config(dir: &tempfile::TempDir) -> Config {
    let acme = AcmeConfig::default();
    Config {
        catalog_dir: Some(dir.path().to_owned()),
        oauth_clients: [(
            "acme".to_owned(),
            OAuthClient {
                client_id: Some(acme.client_id),
                client_secret: acme.client_secret.into(),
            },
        )]
        .into(),
        ..config()
    }
}

fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The settings of tenant `acme`, checked by the catalog.
fn tenant_acme(dir: &tempfile::TempDir) -> ConnectionValues {
    let catalog = Catalog::with_overrides(dir.path()).unwrap();
    let entry = catalog.get(&ConnectorId::parse("acme").unwrap()).unwrap();
    entry
        .check_settings(&settings(&[("tenant", "acme")]))
        .unwrap()
}

/// Consent and code exchange for a connection with `values`.
async fn connect(client: &Client, values: &ConnectionValues) -> Credentials {
    let authorization = client.authorize_with(&redirect_uri(), values).unwrap();
    let code = consent(&authorization).await;
    client
        .exchange_code_with(
            &code,
            &redirect_uri(),
            authorization.pkce_verifier.as_ref(),
            values,
        )
        .await
        .unwrap()
        .into_credentials()
}

#[tokio::test]
async fn basic_client_auth_sends_a_basic_header_and_no_credentials_in_the_body() {
    let sim = spawn_acme(AcmeConfig::default()).await;
    let dir = acme_catalog(&sim, "client_auth = \"client_secret_basic\"");
    let (client, connector) = oauth(&acme_config(&dir), "acme");
    let values = tenant_acme(&dir);

    let credentials = connect(&client, &values).await;
    let refreshed = client.renew(&credentials).await.unwrap();

    let requests = sim.acme_token_requests();
    let grants: Vec<_> = requests.iter().map(|r| r.grant_type.as_str()).collect();
    assert_eq!(grants, ["authorization_code", "refresh_token"]);
    for request in &requests {
        assert!(request.basic_auth, "{request:?}");
        assert!(!request.params.contains_key("client_secret"), "{request:?}");
        assert!(!request.params.contains_key("client_id"), "{request:?}");
        assert!(!request.json);
    }
    let merged = credentials.merge_refresh(refreshed);
    assert_eq!(connector.validate(&merged).await.unwrap().name, "ada");
}

#[tokio::test]
async fn body_client_auth_sends_the_credentials_in_the_body_and_no_basic_header() {
    let sim = spawn_acme(AcmeConfig {
        client_auth: AcmeClientAuth::Post,
        ..AcmeConfig::default()
    })
    .await;
    let dir = acme_catalog(&sim, "client_auth = \"client_secret_post\"");
    let (client, _) = oauth(&acme_config(&dir), "acme");
    let values = tenant_acme(&dir);

    let credentials = connect(&client, &values).await;
    client.renew(&credentials).await.unwrap();

    let requests = sim.acme_token_requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert!(!request.basic_auth, "{request:?}");
        assert_eq!(request.params["client_id"], "acme-client");
        assert_eq!(
            request.params["client_secret"],
            AcmeConfig::default().client_secret
        );
    }
}

#[tokio::test]
async fn the_wrong_client_auth_is_refused_by_a_strict_server() {
    let sim = spawn_acme(AcmeConfig::default()).await;
    let dir = acme_catalog(&sim, "");
    let (client, _) = oauth(&acme_config(&dir), "acme");
    let values = tenant_acme(&dir);
    let authorization = client.authorize_with(&redirect_uri(), &values).unwrap();
    let code = consent(&authorization).await;

    let error = client
        .exchange_code_with(
            &code,
            &redirect_uri(),
            authorization.pkce_verifier.as_ref(),
            &values,
        )
        .await
        .unwrap_err();

    let Error::TokenEndpoint { code, status, .. } = &error else {
        panic!("expected TokenEndpoint, got {error:?}");
    };
    assert_eq!((code.as_str(), *status), ("invalid_client", 401));
    assert!(!error.to_string().contains("acme-secret"), "{error}");
}

#[tokio::test]
async fn json_token_bodies_carry_the_code_exchange_and_the_refresh() {
    let sim = spawn_acme(AcmeConfig {
        json_bodies: true,
        ..AcmeConfig::default()
    })
    .await;
    let dir = acme_catalog(
        &sim,
        "client_auth = \"client_secret_basic\"\ntoken_body = \"json\"",
    );
    let (client, _) = oauth(&acme_config(&dir), "acme");
    let values = tenant_acme(&dir);

    let credentials = connect(&client, &values).await;
    client.renew(&credentials).await.unwrap();

    let requests = sim.acme_token_requests();
    assert_eq!(requests.len(), 2);
    assert!(
        requests.iter().all(|r| r.json && r.basic_auth),
        "{requests:?}"
    );
    assert!(requests[0].params.contains_key("code_verifier"));
    assert!(requests[1].params.contains_key("refresh_token"));
}

#[tokio::test]
async fn extra_params_and_kept_token_values_reach_the_token_endpoint_and_the_api() {
    let sim = spawn_acme(AcmeConfig {
        token_params: [(
            "audience".to_owned(),
            "https://acme.acme.example/api".to_owned(),
        )]
        .into(),
        refresh_params: [("account".to_owned(), "acct-1".to_owned())].into(),
        ..AcmeConfig::default()
    })
    .await;
    let dir = acme_catalog(
        &sim,
        "client_auth = \"client_secret_basic\"\n\
         token_params = { audience = \"https://{tenant}.acme.example/api\" }\n\
         refresh_params = { account = \"{account.id}\" }\n\
         [[oauth2.token_values]]\nname = \"instance_url\"\n\
         pattern = \"http://127\\\\.0\\\\.0\\\\.1:[0-9]+/acme/[a-z0-9-]+/api\"\nrequired = true\n\
         [[oauth2.token_values]]\nname = \"account.id\"\n",
    );
    // The API is found through the instance URL the token response gave.
    std::fs::write(
        dir.path().join("acme.toml"),
        std::fs::read_to_string(dir.path().join("acme.toml"))
            .unwrap()
            .replace(
                &format!(
                    "userinfo_url = \"{}/acme/{{tenant}}/api/userinfo\"",
                    sim.base_url()
                ),
                "userinfo_url = \"{instance_url}/userinfo\"",
            ),
    )
    .unwrap();
    let (client, connector) = oauth(&acme_config(&dir), "acme");
    let values = tenant_acme(&dir);

    let credentials = connect(&client, &values).await;
    let account = connector.validate(&credentials).await.unwrap();
    let renewed = credentials.merge_refresh(client.renew(&credentials).await.unwrap());

    assert_eq!(account.id, "acme|ada");
    let kept = credentials.values();
    assert_eq!(kept["tenant"], "acme");
    assert_eq!(kept["account.id"], "acct-1");
    assert_eq!(
        kept["instance_url"],
        format!("{}/api", sim.acme_url("acme"))
    );
    assert_eq!(
        renewed.values(),
        kept,
        "a refresh keeps the connection's values"
    );
    let debug = format!("{credentials:?}");
    assert!(
        !debug.contains("acct-1") && !debug.contains("/acme/acme/api"),
        "{debug}"
    );
    let requests = sim.acme_token_requests();
    assert_eq!(
        requests[0].params["audience"],
        "https://acme.acme.example/api"
    );
    assert_eq!(requests[1].params["account"], "acct-1");
    assert_eq!(connector.validate(&renewed).await.unwrap(), account);
}

#[tokio::test]
async fn a_token_value_its_pattern_refuses_fails_the_code_exchange() {
    let sim = spawn_acme(AcmeConfig::default()).await;
    let dir = acme_catalog(
        &sim,
        "client_auth = \"client_secret_basic\"\n\
         [[oauth2.token_values]]\nname = \"instance_url\"\n\
         pattern = \"https://[a-z0-9-]+\\\\.acme\\\\.example/api\"\n",
    );
    let (client, _) = oauth(&acme_config(&dir), "acme");
    let values = tenant_acme(&dir);
    let authorization = client.authorize_with(&redirect_uri(), &values).unwrap();
    let code = consent(&authorization).await;

    let error = client
        .exchange_code_with(
            &code,
            &redirect_uri(),
            authorization.pkce_verifier.as_ref(),
            &values,
        )
        .await
        .unwrap_err();

    assert!(matches!(error, Error::TokenValue { .. }), "{error:?}");
    assert!(error.to_string().contains("instance_url"), "{error}");
    assert!(!error.to_string().contains("127.0.0.1"), "{error}");
}

#[tokio::test]
async fn a_token_value_with_a_control_character_fails_the_code_exchange_without_a_pattern() {
    let sim = spawn_acme(AcmeConfig {
        account_id: "acct-1\r\nX-Injected: 1".to_owned(),
        ..AcmeConfig::default()
    })
    .await;
    let dir = acme_catalog(
        &sim,
        "client_auth = \"client_secret_basic\"\n\
         [[oauth2.token_values]]\nname = \"account.id\"\n",
    );
    let (client, _) = oauth(&acme_config(&dir), "acme");
    let values = tenant_acme(&dir);
    let authorization = client.authorize_with(&redirect_uri(), &values).unwrap();
    let code = consent(&authorization).await;

    let error = client
        .exchange_code_with(
            &code,
            &redirect_uri(),
            authorization.pkce_verifier.as_ref(),
            &values,
        )
        .await
        .unwrap_err();

    assert!(matches!(error, Error::TokenValue { .. }), "{error:?}");
    assert!(error.to_string().contains("control characters"), "{error}");
    assert!(!error.to_string().contains("Injected"), "{error}");
}

#[tokio::test]
async fn settings_are_checked_and_a_hostile_one_cannot_move_the_host() {
    let sim = spawn_acme(AcmeConfig::default()).await;
    let dir = acme_catalog(&sim, "");
    std::fs::write(
        dir.path().join("subdomained.toml"),
        "display_name = \"Subdomained\"\nauth = \"oauth2\"\ndocs_url = \"https://s.test/docs\"\n\
         default_sync_interval_secs = 3600\n\
         [[settings]]\nname = \"subdomain\"\nlabel = \"Subdomain\"\nhelp = \"Only the name\"\n\
         [[settings]]\nname = \"region\"\nlabel = \"Region\"\nallowed = [\"eu\", \"us\"]\n\
         required = false\n\
         [oauth2]\nauthorize_url = \"https://{subdomain}.example.test/oauth/authorize\"\n\
         token_url = \"https://{subdomain}.example.test/oauth/token\"\n\
         userinfo_url = \"https://{subdomain}.example.test/me\"\n\
         authorize_params = { region = \"{region}\" }\n",
    )
    .unwrap();
    let config = Config {
        oauth_clients: [(
            "subdomained".to_owned(),
            OAuthClient {
                client_id: Some("id".to_owned()),
                client_secret: "s".into(),
            },
        )]
        .into(),
        ..acme_config(&dir)
    };
    let catalog = Catalog::from_config(&config).unwrap();
    let entry = catalog
        .get(&ConnectorId::parse("subdomained").unwrap())
        .unwrap();
    let (client, _) = oauth(&config, "subdomained");

    let good = entry
        .check_settings(&settings(&[("subdomain", " shop-1 "), ("region", "eu")]))
        .unwrap();
    let url = client.authorize_with(&redirect_uri(), &good).unwrap().url;
    assert_eq!(url.host_str(), Some("shop-1.example.test"));
    assert!(url.query_pairs().any(|(k, v)| k == "region" && v == "eu"));
    let blank_region = entry
        .check_settings(&settings(&[("subdomain", "shop-1"), ("region", " ")]))
        .unwrap();
    assert_eq!(blank_region["region"], "");

    let refused = |pairs: &[(&str, &str)]| entry.check_settings(&settings(pairs)).unwrap_err();
    assert_eq!(refused(&[]).name, "subdomain");
    assert!(refused(&[]).message.contains("is required"));
    assert!(
        refused(&[("subdomain", "a"), ("region", "mars")])
            .message
            .contains("one of eu, us")
    );
    assert!(
        refused(&[("subdomain", "a"), ("tenant", "x")])
            .message
            .contains("not a setting")
    );
    // No pattern: the host position itself refuses what would move the host.
    for hostile in [
        "evil.test/x?",
        "evil.test#",
        "user@evil.test",
        "evil.test:1",
    ] {
        let hostile: ConnectionValues = [("subdomain".to_owned(), hostile.to_owned())]
            .into_iter()
            .collect();
        let error = client
            .authorize_with(&redirect_uri(), &hostile)
            .unwrap_err();
        assert!(matches!(error, Error::Template { .. }), "{error:?}");
        assert!(!error.to_string().contains("evil"), "{error}");
    }
    // The Acme entry's pattern refuses a tenant that is a path.
    let acme = catalog.get(&ConnectorId::parse("acme").unwrap()).unwrap();
    let error = acme
        .check_settings(&settings(&[("tenant", "acme/../other")]))
        .unwrap_err();
    assert!(
        error
            .message
            .contains("does not look right: The name before"),
        "{error}"
    );
}

#[tokio::test]
async fn the_authorize_url_skips_empty_values_renames_and_replaces() {
    let sim = spawn_acme(AcmeConfig::default()).await;
    let dir = acme_catalog(
        &sim,
        "authorize_skip_empty = true\n\
         authorize_params = { prompt = \"\", audience = \"{tenant}\" }\n\
         authorize_param_names = { client_id = \"app_key\" }\n\
         authorize_query_replacements = { \"read\" = \"read%2Cwrite\" }\n\
         authorize_fragment = \"login\"\n",
    );
    let (client, _) = oauth(&acme_config(&dir), "acme");

    let url = client
        .authorize_with(&redirect_uri(), &tenant_acme(&dir))
        .unwrap()
        .url;

    let query: BTreeMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["app_key"], "acme-client");
    assert!(!query.contains_key("client_id"));
    assert!(!query.contains_key("prompt"), "{url}");
    assert_eq!(query["audience"], "acme");
    assert_eq!(query["scope"], "read,write");
    assert_eq!(url.path(), "/acme/acme/oauth/authorize");
    assert_eq!(url.fragment(), Some("login"));
}

#[tokio::test]
async fn a_random_value_is_fresh_per_authorization_and_response_type_may_be_left_out() {
    let sim = spawn_acme(AcmeConfig::default()).await;
    let dir = acme_catalog(
        &sim,
        "authorize_params = { nonce = \"{random}\" }\n\
         authorize_param_names = { response_type = \"\" }\n",
    );
    let (client, _) = oauth(&acme_config(&dir), "acme");
    let query = || -> BTreeMap<String, String> {
        let url = client
            .authorize_with(&redirect_uri(), &tenant_acme(&dir))
            .unwrap()
            .url;
        url.query_pairs().into_owned().collect()
    };

    let (first, second) = (query(), query());

    assert!(!first.contains_key("response_type"), "{first:?}");
    assert!(first["nonce"].len() >= 32, "{first:?}");
    assert_ne!(first["nonce"], second["nonce"]);
    assert_ne!(first["nonce"], first["state"]);
    assert_eq!(first["client_id"], "acme-client");
}

#[tokio::test]
async fn a_connection_without_its_kept_value_cannot_build_its_api_url() {
    let sim = spawn_acme(AcmeConfig::default()).await;
    let dir = acme_catalog(
        &sim,
        "[[oauth2.token_values]]\nname = \"instance_url\"\npattern = \"http://127\\\\.0\\\\.0\\\\.1:[0-9]+/acme/[a-z]+/api\"\n",
    );
    std::fs::write(
        dir.path().join("acme.toml"),
        std::fs::read_to_string(dir.path().join("acme.toml"))
            .unwrap()
            .replace(
                &format!(
                    "userinfo_url = \"{}/acme/{{tenant}}/api/userinfo\"",
                    sim.base_url()
                ),
                "userinfo_url = \"{instance_url}/userinfo\"",
            ),
    )
    .unwrap();
    let (_, connector) = oauth(&acme_config(&dir), "acme");
    let credentials = Credentials::OAuth2 {
        access_token: secrecy::SecretString::from("t"),
        refresh_token: None,
        expires_at: None,
        scope: None,
        values: ConnectionValues::default(),
    };

    let error = connector.validate(&credentials).await.unwrap_err();

    assert!(matches!(error, Error::Template { .. }), "{error:?}");
    assert!(error.to_string().contains("{instance_url}"), "{error}");
}

#[tokio::test]
async fn errors_at_an_address_kept_from_the_token_response_do_not_show_it() {
    let sim = spawn_acme(AcmeConfig::default()).await;
    let dir = acme_catalog(
        &sim,
        "client_auth = \"client_secret_basic\"\n\
         [[oauth2.token_values]]\nname = \"instance_url\"\n\
         pattern = \"http://127\\\\.0\\\\.0\\\\.1:[0-9]+/acme/[a-z]+/api\"\n",
    );
    std::fs::write(
        dir.path().join("acme.toml"),
        std::fs::read_to_string(dir.path().join("acme.toml"))
            .unwrap()
            .replace(
                &format!(
                    "userinfo_url = \"{}/acme/{{tenant}}/api/userinfo\"",
                    sim.base_url()
                ),
                "userinfo_url = \"{instance_url}/userinfo\"",
            ),
    )
    .unwrap();
    let (client, connector) = oauth(&acme_config(&dir), "acme");
    let credentials = connect(&client, &tenant_acme(&dir)).await;
    let unavailable = fleet_sim::Fault::Unavailable {
        retry_after_secs: None,
    };
    sim.inject_acme("ada", unavailable, 10);

    let error = connector.validate(&credentials).await.unwrap_err();

    let message = error.to_string();
    assert!(!message.contains(sim.base_url()), "{message}");
    assert!(message.contains("redacted.invalid"), "{message}");
}

/// Follows `authorization` to Acme's consent at a tenant's own host,
/// resolving `host` to the simulator as the connectors' `hosts` does.
async fn consent_at(
    sim: &SimHandle,
    host: &str,
    authorization: &fleet_connectors::oauth2::Authorization,
) -> String {
    let address: std::net::SocketAddr = sim
        .base_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve(host, address)
        .build()
        .unwrap()
        .get(authorization.url.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::FOUND);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    location
        .query_pairs()
        .find(|(key, _)| key == "code")
        .map(|(_, value)| value.into_owned())
        .unwrap()
}

#[tokio::test]
async fn a_subdomain_setting_picks_the_tenants_host_and_the_egress_rule_still_holds() {
    let sim = spawn_acme(AcmeConfig::default()).await;
    let tenant_host = sim.acme_host_url("{tenant}");
    let dir = acme_catalog(&sim, "client_auth = \"client_secret_basic\"");
    let entry = std::fs::read_to_string(dir.path().join("acme.toml"))
        .unwrap()
        .replace(&sim.acme_url("{tenant}"), &tenant_host);
    std::fs::write(dir.path().join("acme.toml"), entry).unwrap();
    let hosts = [("acme.acme.test".to_owned(), "127.0.0.1".parse().unwrap())];
    let config = Config {
        hosts: hosts.into(),
        ..acme_config(&dir)
    };
    let (client, connector) = oauth(&config, "acme");
    let values = tenant_acme(&dir);

    let authorization = client.authorize_with(&redirect_uri(), &values).unwrap();
    assert_eq!(authorization.url.host_str(), Some("acme.acme.test"));
    let code = consent_at(&sim, "acme.acme.test", &authorization).await;
    let credentials = client
        .exchange_code_with(
            &code,
            &redirect_uri(),
            authorization.pkce_verifier.as_ref(),
            &values,
        )
        .await
        .unwrap()
        .into_credentials();

    assert_eq!(
        connector.validate(&credentials).await.unwrap().id,
        "acme|ada"
    );
    assert_eq!(sim.acme_token_requests().len(), 1);

    // The same fixed address, without loopback allowed: the rendered
    // host resolves only to an address the egress rule refuses.
    let strict = Config {
        allow_private_networks: Vec::new(),
        ..config
    };
    let (_, connector) = oauth(&strict, "acme");
    let error = connector.validate(&credentials).await.unwrap_err();
    assert!(matches!(error, Error::Refused { .. }), "{error:?}");
}
