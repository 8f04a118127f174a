use fleet_sim::{AcmeClientAuth, AcmeConfig, Config, Sim, SimHandle};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::client;

const REDIRECT: &str = "https://fleet.example.test/oauth/callback";

async fn spawn_acme(acme: AcmeConfig) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Sim::start(listener, &Config::default().acme(acme)).unwrap()
}

/// A code for `ada`, from the authorize endpoint's redirect.
async fn code(sim: &SimHandle) -> String {
    let response = client()
        .get(format!("{}/oauth/authorize", sim.acme_url("acme")))
        .query(&[
            ("response_type", "code"),
            ("client_id", "acme-client"),
            ("redirect_uri", REDIRECT),
            ("state", "s"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}

fn token_url(sim: &SimHandle) -> String {
    format!("{}/oauth/token", sim.acme_url("acme"))
}

#[tokio::test]
async fn acme_takes_json_bodies_with_basic_auth_and_answers_its_instance_url() {
    let sim = spawn_acme(AcmeConfig {
        json_bodies: true,
        ..AcmeConfig::default()
    })
    .await;
    let code = code(&sim).await;

    let response = client()
        .post(token_url(&sim))
        .basic_auth("acme-client", Some("acme-secret%2Fwith%2Bspecial%3Dchars"))
        .json(&json!({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["instance_url"],
        format!("{}/api", sim.acme_url("acme"))
    );
    assert_eq!(body["account"]["id"], "acct-1");
    let token = body["access_token"].as_str().unwrap();
    let me: Value = client()
        .get(format!("{}/api/userinfo", sim.acme_url("acme")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["sub"], "acme|ada");
    let seen = sim.acme_token_requests();
    assert!(seen[0].json && seen[0].basic_auth, "{seen:?}");
}

#[tokio::test]
async fn acme_refuses_two_client_auth_methods_the_wrong_one_and_the_wrong_body() {
    let sim = spawn_acme(AcmeConfig {
        client_auth: AcmeClientAuth::Post,
        ..AcmeConfig::default()
    })
    .await;
    let secret = AcmeConfig::default().client_secret;
    let form = |extra: &[(&'static str, &str)]| {
        let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", "x")];
        form.extend_from_slice(extra);
        form.into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<Vec<_>>()
    };
    let error = |response: reqwest::Response| async move {
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        (status, body["error"].as_str().unwrap().to_owned())
    };

    let both = client()
        .post(token_url(&sim))
        .basic_auth("acme-client", Some(&secret))
        .form(&form(&[
            ("client_id", "acme-client"),
            ("client_secret", &secret),
        ]))
        .send()
        .await
        .unwrap();
    let basic = client()
        .post(token_url(&sim))
        .basic_auth("acme-client", Some(&secret))
        .form(&form(&[]))
        .send()
        .await
        .unwrap();
    let json = client()
        .post(token_url(&sim))
        .json(&json!({"grant_type": "refresh_token", "refresh_token": "x",
            "client_id": "acme-client", "client_secret": secret}))
        .send()
        .await
        .unwrap();
    let right = client()
        .post(token_url(&sim))
        .form(&form(&[
            ("client_id", "acme-client"),
            ("client_secret", &secret),
        ]))
        .send()
        .await
        .unwrap();

    assert_eq!(
        error(both).await,
        (StatusCode::BAD_REQUEST, "invalid_request".to_owned())
    );
    assert_eq!(
        error(basic).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".to_owned())
    );
    assert_eq!(
        error(json).await,
        (StatusCode::BAD_REQUEST, "invalid_request".to_owned())
    );
    // Past the rules, the refresh token itself is refused.
    assert_eq!(
        error(right).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".to_owned())
    );
}

#[tokio::test]
async fn acme_serves_only_its_tenant() {
    let sim = spawn_acme(AcmeConfig::default()).await;

    let response = client()
        .post(format!("{}/oauth/token", sim.acme_url("other")))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(sim.acme_token_requests().is_empty());
}

#[tokio::test]
async fn the_token_request_log_keeps_the_last_thousand() {
    let sim = spawn_acme(AcmeConfig::default()).await;
    let http = client();
    for i in 0..1_001 {
        let response = http
            .post(token_url(&sim))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &format!("unknown-{i}")),
                ("client_id", "acme-client"),
            ])
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error());
    }

    let seen = sim.acme_token_requests();

    assert_eq!(seen.len(), 1_000);
    assert_eq!(
        seen[0].params["code"], "unknown-1",
        "the oldest is forgotten"
    );
    assert_eq!(seen[999].params["code"], "unknown-1000");
}
