use fleet_connectors::{Credentials, Error, ErrorClass};
use fleet_sim::{Fault, GoogleConfig};
use secrecy::{ExposeSecret, SecretString};

use crate::helpers::{
    GOOGLE_CLIENT_SECRET, acme, config, connect, consent, google_catalog, oauth, oauth_config,
    redirect_uri, spawn, spawn_google,
};

#[tokio::test]
async fn authorize_url_carries_state_and_an_s256_challenge() {
    let sim = spawn_google(GoogleConfig::default()).await;
    let dir = google_catalog(&sim, 7);
    let (client, _) = oauth(
        &oauth_config(&dir, &["google-analytics"]),
        "google-analytics",
    );

    let authorization = client.authorize(&redirect_uri()).unwrap();

    let query: std::collections::HashMap<_, _> = authorization.url.query_pairs().collect();
    assert_eq!(query["state"], authorization.state);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["code_challenge"].len(), 43);
    assert_eq!(query["access_type"], "offline");
    assert_eq!(query["redirect_uri"], redirect_uri().as_str());
    assert!(authorization.pkce_verifier.is_some());
    assert_ne!(
        client.authorize(&redirect_uri()).unwrap().state,
        authorization.state
    );
}

#[tokio::test]
async fn a_provider_without_a_sync_mapping_connects_validates_and_refreshes() {
    let sim = spawn_google(GoogleConfig::default()).await;
    let dir = google_catalog(&sim, 7);
    let (client, connector) = oauth(&oauth_config(&dir, &["sim-id"]), "sim-id");

    let authorization = client.authorize(&redirect_uri()).unwrap();
    assert!(authorization.pkce_verifier.is_none());
    let code = consent(&authorization).await;
    let credentials = client
        .exchange_code(&code, &redirect_uri(), None)
        .await
        .unwrap()
        .into_credentials();
    let account = connector.validate(&credentials).await.unwrap();
    let refreshed = client
        .refresh(credentials.refresh_token().unwrap())
        .await
        .unwrap();

    assert_eq!(account.name, "ada");
    assert!(refreshed.refresh_token.is_none(), "Google never rotates");
    let merged = credentials.merge_refresh(refreshed);
    assert_eq!(
        merged.refresh_token().map(ExposeSecret::expose_secret),
        credentials.refresh_token().map(ExposeSecret::expose_secret),
    );
    assert_eq!(connector.validate(&merged).await.unwrap(), account);
}

#[tokio::test]
async fn a_rotated_refresh_token_replaces_the_stored_one() {
    let sim = spawn_google(GoogleConfig {
        rotate_refresh_tokens: true,
        ..GoogleConfig::default()
    })
    .await;
    let dir = google_catalog(&sim, 7);
    let (client, _) = oauth(
        &oauth_config(&dir, &["google-analytics"]),
        "google-analytics",
    );
    let credentials = connect(&client).await;
    let old = credentials.refresh_token().unwrap().clone();

    let merged = credentials.merge_refresh(client.refresh(&old).await.unwrap());

    let new = merged.refresh_token().unwrap();
    assert_ne!(new.expose_secret(), old.expose_secret());
    assert!(client.refresh(new).await.is_ok());
    let error = client.refresh(&old).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::ReauthRequired);
}

#[tokio::test]
async fn exchange_with_the_wrong_pkce_verifier_needs_a_new_consent() {
    let sim = spawn_google(GoogleConfig::default()).await;
    let dir = google_catalog(&sim, 7);
    let (client, _) = oauth(
        &oauth_config(&dir, &["google-analytics"]),
        "google-analytics",
    );
    let authorization = client.authorize(&redirect_uri()).unwrap();
    let code = consent(&authorization).await;
    let wrong = SecretString::from("x".repeat(43));

    let error = client
        .exchange_code(&code, &redirect_uri(), Some(&wrong))
        .await
        .unwrap_err();

    assert_eq!(error.class(), ErrorClass::ReauthRequired);
    let Error::TokenEndpoint {
        code: oauth_code,
        status,
        ..
    } = &error
    else {
        panic!("expected TokenEndpoint, got {error:?}");
    };
    assert_eq!((oauth_code.as_str(), *status), ("invalid_grant", 400));
    assert!(!error.to_string().contains(&code), "{error}");
    assert!(!error.to_string().contains(GOOGLE_CLIENT_SECRET), "{error}");
}

#[tokio::test]
async fn invalid_grant_on_refresh_needs_reauthorisation() {
    let sim = spawn_google(GoogleConfig::default()).await;
    let dir = google_catalog(&sim, 7);
    let (client, _) = oauth(
        &oauth_config(&dir, &["google-analytics"]),
        "google-analytics",
    );
    let credentials = connect(&client).await;
    sim.inject_google("ada", Fault::InvalidGrant, 1);

    let error = client
        .refresh(credentials.refresh_token().unwrap())
        .await
        .unwrap_err();

    assert_eq!(error.class(), ErrorClass::ReauthRequired);
    assert!(
        error
            .to_string()
            .contains("invalid_grant: Token has been expired or revoked."),
        "{error}"
    );
    let token = credentials.refresh_token().unwrap().expose_secret();
    assert!(!error.to_string().contains(token), "{error}");
}

#[tokio::test]
async fn an_unavailable_token_endpoint_is_retryable() {
    let sim = spawn_google(GoogleConfig::default()).await;
    let dir = google_catalog(&sim, 7);
    let (client, _) = oauth(
        &oauth_config(&dir, &["google-analytics"]),
        "google-analytics",
    );
    let credentials = connect(&client).await;
    sim.inject_google(
        "ada",
        Fault::Unavailable {
            retry_after_secs: None,
        },
        1,
    );

    let error = client
        .refresh(credentials.refresh_token().unwrap())
        .await
        .unwrap_err();

    assert_eq!(error.class(), ErrorClass::Retryable { retry_after: None });
}

#[tokio::test]
async fn a_revoked_token_no_longer_validates() {
    let sim = spawn_google(GoogleConfig::default()).await;
    let dir = google_catalog(&sim, 7);
    let (client, connector) = oauth(&oauth_config(&dir, &["sim-id"]), "sim-id");
    let (google, _) = oauth(
        &oauth_config(&dir, &["google-analytics"]),
        "google-analytics",
    );
    let credentials = connect(&client).await;
    let Credentials::OAuth2 { access_token, .. } = &credentials else {
        panic!("expected OAuth 2.0");
    };

    assert!(google.revoke(access_token).await.unwrap());
    assert!(
        google.revoke(access_token).await.unwrap(),
        "already revoked counts"
    );
    assert!(
        !client.revoke(access_token).await.unwrap(),
        "sim-id has no revoke_url"
    );
    let error = connector.validate(&credentials).await.unwrap_err();
    assert!(error.wants_token_refresh(), "{error:?}");
}

#[tokio::test]
async fn oauth_api_calls_never_follow_redirects() {
    let sim = spawn([acme(1)]).await;
    sim.inject_site(
        "acme",
        Fault::Redirect {
            location: "https://evil.example.test/steal".to_owned(),
        },
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("redirecting.toml"),
        format!(
            "display_name = \"Redirecting\"\nauth = \"oauth2\"\ndocs_url = \"https://x.test\"\n\
             default_sync_interval_secs = 60\n[oauth2]\nauthorize_url = \"https://x.test/a\"\n\
             token_url = \"https://x.test/t\"\nscopes = [\"s\"]\n\
             userinfo_url = \"{}/wp-json/wp/v2/users/me\"\n",
            sim.site_url("acme")
        ),
    )
    .unwrap();
    let config = fleet_connectors::Config {
        catalog_dir: Some(dir.path().to_owned()),
        ..config()
    };
    let (_, connector) = oauth(&config, "redirecting");
    let credentials = Credentials::OAuth2 {
        access_token: SecretString::from("token"),
        refresh_token: None,
        expires_at: None,
        scope: None,
        values: fleet_connectors::ConnectionValues::default(),
    };

    let error = connector.validate(&credentials).await.unwrap_err();

    let Error::Redirected { location, .. } = &error else {
        panic!("expected Redirected, got {error:?}");
    };
    assert_eq!(location, "https://evil.example.test/steal");
    assert_eq!(sim.requests("acme"), 1);
}
