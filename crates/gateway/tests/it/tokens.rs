//! What a token allows: its `connections` claim on every route, and the
//! checks of `aud`, `nbf`, `iat`, the lifetime and the algorithm.

use axum::http::{Method, StatusCode};
use fleet_events::ConnectionId;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::{KEY, PASSWORD, TestGateway, claims, sign};

const ED_PRIVATE: &str = include_str!("../../../auth/testdata/ed25519-private.pem");
const ED_PUBLIC: &str = include_str!("../../../auth/testdata/ed25519-public.pem");

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// `claims` signed with the test gateway's HS256 key, whatever they hold.
fn raw_token(claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(KEY.as_bytes()),
    )
    .unwrap()
}

fn message(reply: &crate::helpers::Reply) -> String {
    reply.body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message: {:?}", reply.body))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_narrowed_to_one_connection_sees_and_touches_only_that_one() {
    let gateway = TestGateway::start().await;
    let mine = gateway.connect("acme", "wordpress", "blog", PASSWORD).await;
    let other = gateway.connect("acme", "fluentcrm", "crm", PASSWORD).await;
    gateway.until_state("acme", &mine, "synced").await;
    gateway.until_state("acme", &other, "synced").await;
    let mut narrowed = claims("acme");
    narrowed.connections = Some(vec![ConnectionId::parse(&mine).unwrap()]);
    let token = sign(&narrowed);
    let call = |method: Method, path: String, body: Option<Value>| {
        let token = token.clone();
        let gateway = &gateway;
        async move { gateway.call_with(method, &path, Some(&token), body).await }
    };

    let list = call(Method::GET, "/api/connections".into(), None).await;
    let ids: Vec<&str> = list.body["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mine.as_str()]);
    for path in [
        format!("/api/connections/{mine}"),
        format!("/api/connections/{mine}/records"),
        format!("/api/connections/{mine}/health"),
    ] {
        let reply = call(Method::GET, path.clone(), None).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {:?}", reply.body);
    }
    let across = call(Method::GET, "/api/records?limit=1000".into(), None).await;
    let records = across.body["records"].as_array().unwrap();
    assert!(!records.is_empty());
    assert!(
        records.iter().all(|r| r["connection"] == mine.as_str()),
        "the records across connections are only those of its connection"
    );
    let health = call(
        Method::GET,
        format!("/api/connections/{other}/health"),
        None,
    )
    .await;
    assert_eq!(health.status, StatusCode::NOT_FOUND);

    // The other connection looks exactly like an unknown one.
    let unknown = call(Method::GET, "/api/connections/c-unknown".into(), None).await;
    for (method, path) in [
        (Method::GET, format!("/api/connections/{other}")),
        (Method::GET, format!("/api/connections/{other}/records")),
        (Method::POST, format!("/api/connections/{other}/sync")),
        (Method::DELETE, format!("/api/connections/{other}")),
    ] {
        let reply = call(method.clone(), path.clone(), None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(reply.body["error"]["code"], unknown.body["error"]["code"]);
        assert_eq!(
            message(&reply),
            message(&unknown).replace("c-unknown", &other)
        );
    }

    // It cannot connect anything new, through the API or a consent page.
    let body = json!({
        "connector": "wordpress",
        "credentials": {"site_url": gateway.sim.site_url("blog"), "username": "x", "application_password": PASSWORD},
    });
    let create = call(Method::POST, "/api/connections".into(), Some(body)).await;
    assert_eq!(create.status, StatusCode::FORBIDDEN, "{:?}", create.body);
    assert_eq!(create.body["error"]["code"], "forbidden");
    assert!(message(&create).contains("whole tenant"), "{create:?}");
    let authorize = call(
        Method::GET,
        "/oauth/authorize/google-analytics".into(),
        None,
    )
    .await;
    assert_eq!(authorize.status, StatusCode::FORBIDDEN, "{authorize:?}");
    assert!(
        message(&authorize).contains("`connections`"),
        "{authorize:?}"
    );

    // The whole-tenant token still finds the other connection untouched.
    let still = gateway
        .call(
            Method::GET,
            &format!("/api/connections/{other}"),
            Some("acme"),
            None,
        )
        .await;
    assert_eq!(still.status, StatusCode::OK);
    assert_eq!(still.body["state"], "synced");
    let all = gateway
        .call(Method::GET, "/api/connections", Some("acme"), None)
        .await;
    assert_eq!(all.body["connections"].as_array().unwrap().len(), 2);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_outside_the_audience_lifetime_or_validity_window_are_refused_saying_why() {
    let gateway = TestGateway::start().await;
    let valid =
        json!({"tenant": "acme", "iat": now(), "exp": now() + 600, "aud": "connector-fleet"});
    let with = |changes: Value| {
        let mut claims = valid.clone();
        for (key, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(key);
            } else {
                claims[key] = value.clone();
            }
        }
        raw_token(&claims)
    };
    let accepted = gateway
        .call_with(
            Method::GET,
            "/api/connections",
            Some(&with(json!({}))),
            None,
        )
        .await;
    assert_eq!(accepted.status, StatusCode::OK, "{accepted:?}");

    let cases = [
        ("another audience", json!({"aud": "billing"}), "`aud`"),
        ("no audience", json!({"aud": null}), "`aud`"),
        (
            "valid for two days",
            json!({"exp": now() + 48 * 3600}),
            "longer than this service accepts",
        ),
        ("no expiry", json!({"exp": null}), "`exp`"),
        (
            "not valid for an hour",
            json!({"nbf": now() + 3600}),
            "not valid yet",
        ),
        (
            "issued in an hour",
            json!({"iat": now() + 3600, "exp": now() + 7200}),
            "issued in the future",
        ),
    ];
    for (what, changes, says) in cases {
        let token = with(changes);
        let reply = gateway
            .call_with(Method::GET, "/api/connections", Some(&token), None)
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}");
        let text = message(&reply);
        assert!(text.contains(says), "{what}: {text}");
        assert!(!text.contains(&token), "{what}: the token is not quoted");
    }
    let audience = gateway
        .call_with(
            Method::GET,
            "/api/connections",
            Some(&with(json!({"aud": "billing"}))),
            None,
        )
        .await;
    assert!(
        message(&audience).contains("\"connector-fleet\""),
        "says which audience to ask for: {audience:?}"
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_with_an_ed25519_public_key_accepts_only_the_issuers_tokens() {
    let auth = fleet_auth::Config::with_public_key(fleet_auth::Algorithm::EdDsa, ED_PUBLIC);
    let gateway =
        TestGateway::start_with_auth(crate::helpers::gateway_config(), auth.clone()).await;
    let issuer =
        fleet_auth::Signer::with_private_key(&auth, &SecretString::from(ED_PRIVATE)).unwrap();

    let token = issuer.sign(&claims("acme")).unwrap();
    let reply = gateway
        .call_with(Method::GET, "/api/connections", Some(&token), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");

    // An HS256 token, even "signed" with the public key itself, is refused.
    let shared = raw_token(
        &json!({"tenant": "acme", "iat": now(), "exp": now() + 600, "aud": "connector-fleet"}),
    );
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"tenant": "acme", "iat": now(), "exp": now() + 600, "aud": "connector-fleet"}),
        &EncodingKey::from_secret(ED_PUBLIC.as_bytes()),
    )
    .unwrap();
    for token in [shared, confused] {
        let reply = gateway
            .call_with(Method::GET, "/api/connections", Some(&token), None)
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(
            message(&reply).contains("not signed with EdDSA"),
            "{reply:?}"
        );
    }
    gateway.stop().await;
}
