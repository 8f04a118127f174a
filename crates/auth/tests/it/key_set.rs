//! Tokens checked with the issuer's key set (JWKS): `kid` lookup, rotation,
//! ignored keys and start-up failures.

use std::time::Duration;

use axum::http::StatusCode;
use fleet_auth::{Algorithm, Config, Error, FetchError, KeyError, SignError, Signer, Verifier};
use secrecy::SecretString;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::helpers::{DEADLINE, Issuer, Key, claims, eventually, set};

/// A refresh interval no test waits for.
const HOUR: u64 = 3600;

#[tokio::test]
async fn a_token_signed_with_a_key_of_the_set_verifies() {
    let a = Key::ed25519("a");
    let issuer = Issuer::start(&[&a]).await;
    let config = issuer.config(Algorithm::EdDsa, HOUR);

    let (verifier, _refresher) = Verifier::connect(&config).await.unwrap();

    let verified = verifier.verify(&a.token(&config)).unwrap();
    assert_eq!(verified.tenant.as_str(), "acme");
    // Another key under `a`'s id does not pass for it.
    let forged = Key::ed25519_next("b").signer_as(&config, "a");
    let err = verifier
        .verify(&forged.sign(&claims()).unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::BadSignature), "{err}");
    assert!(format!("{verifier:?}").contains(issuer.url()));
}

#[tokio::test]
async fn a_key_the_issuer_rotates_to_is_accepted_after_an_early_refetch() {
    let (a, b) = (Key::ed25519("a"), Key::ed25519_next("b"));
    let issuer = Issuer::start(&[&a]).await;
    let config = issuer.config(Algorithm::EdDsa, HOUR);
    let (verifier, refresher) = Verifier::connect(&config).await.unwrap();
    let shutdown = CancellationToken::new();
    let refreshing = tokio::spawn(refresher.run(shutdown.clone()));
    issuer.publish(&[&a, &b]);
    let token = b.token(&config);

    let err = verifier.verify(&token).unwrap_err();

    assert!(
        matches!(&err, Error::UnknownKey { kid } if kid == "b"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "the token is signed with key \"b\", which the issuer's key set does not list; request a new token"
    );
    eventually("the token signed with b verifies", || {
        verifier.verify(&token).is_ok()
    })
    .await;
    assert_eq!(issuer.fetches(), 2, "start-up and one early refetch");
    assert!(verifier.verify(&a.token(&config)).is_ok());
    shutdown.cancel();
    tokio::time::timeout(DEADLINE, refreshing)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_key_removed_from_the_set_is_refused_after_a_refresh() {
    let (a, b) = (Key::ed25519("a"), Key::ed25519_next("b"));
    let issuer = Issuer::start(&[&a, &b]).await;
    let config = issuer.config(Algorithm::EdDsa, 1);
    let (verifier, refresher) = Verifier::connect(&config).await.unwrap();
    tokio::spawn(refresher.run(CancellationToken::new()));
    let (old, new) = (a.token(&config), b.token(&config));
    assert!(verifier.verify(&old).is_ok());

    issuer.publish(&[&b]);

    eventually("the token signed with a is refused", || {
        matches!(verifier.verify(&old), Err(Error::UnknownKey { .. }))
    })
    .await;
    assert!(verifier.verify(&new).is_ok());
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_last_good_set() {
    let a = Key::ed25519("a");
    let issuer = Issuer::start(&[&a]).await;
    let config = issuer.config(Algorithm::EdDsa, 1);
    let (verifier, refresher) = Verifier::connect(&config).await.unwrap();
    tokio::spawn(refresher.run(CancellationToken::new()));

    issuer.answer(StatusCode::SERVICE_UNAVAILABLE, "down".to_owned());
    // The refresher fetches one at a time: a third fetch means the second
    // (failed) one is done with.
    issuer.fetched(3).await;
    assert!(verifier.verify(&a.token(&config)).is_ok());
    issuer.answer(StatusCode::OK, json!({"keys": []}).to_string());
    issuer.fetched(5).await;
    assert!(
        verifier.verify(&a.token(&config)).is_ok(),
        "an empty set is no usable set"
    );
}

#[tokio::test]
async fn hmac_keys_and_keys_of_another_type_or_use_check_no_token() {
    let a = Key::ed25519("a");
    let secret = "a-shared-secret-of-at-least-32-bytes";
    let mut encryption = Key::ed25519("enc").jwk();
    encryption["use"] = json!("enc");
    let mut keys = set(&[&a, &Key::rsa("rsa")]);
    keys["keys"].as_array_mut().unwrap().extend([
        encryption,
        json!({"kty": "oct", "kid": "hmac", "k": base64url(secret)}),
    ]);
    let issuer = Issuer::start_with(&keys).await;
    let eddsa = issuer.config(Algorithm::EdDsa, HOUR);
    let (verifier, _refresher) = Verifier::connect(&eddsa).await.unwrap();

    let hmac = Signer::new(&Config::new(secret.into()))
        .unwrap()
        .with_key_id("hmac")
        .sign(&claims())
        .unwrap();
    let err = verifier.verify(&hmac).unwrap_err();
    assert!(
        matches!(err, Error::WrongAlgorithm { expected: "EdDSA" }),
        "{err}"
    );
    for kid in ["enc", "rsa", "hmac"] {
        let token = a.signer_as(&eddsa, kid).sign(&claims()).unwrap();
        let err = verifier.verify(&token).unwrap_err();
        assert!(matches!(err, Error::UnknownKey { .. }), "{kid}: {err}");
    }

    let rs256 = issuer.config(Algorithm::Rs256, HOUR);
    let (verifier, _refresher) = Verifier::connect(&rs256).await.unwrap();
    assert!(verifier.verify(&Key::rsa("rsa").token(&rs256)).is_ok());
    let rsa_as_a = Key::rsa("rsa").signer_as(&rs256, "a").sign(&claims());
    let err = verifier.verify(&rsa_as_a.unwrap()).unwrap_err();
    assert!(matches!(err, Error::UnknownKey { .. }), "{err}");
}

#[tokio::test]
async fn a_token_without_a_kid_is_refused() {
    let a = Key::ed25519("a");
    let issuer = Issuer::start(&[&a]).await;
    let config = issuer.config(Algorithm::EdDsa, HOUR);
    let (verifier, _refresher) = Verifier::connect(&config).await.unwrap();
    let static_key = Config::with_public_key(
        Algorithm::EdDsa,
        include_str!("../../testdata/ed25519-public.pem"),
    );
    let pem = include_str!("../../testdata/ed25519-private.pem");
    let without_kid = Signer::with_private_key(&static_key, &SecretString::from(pem))
        .unwrap()
        .sign(&claims())
        .unwrap();

    let err = verifier.verify(&without_kid).unwrap_err();

    assert!(matches!(err, Error::MissingKeyId), "{err}");
    // A signer for key-set settings refuses to make such a token.
    let signer = Signer::with_private_key(&config, &SecretString::from(pem)).unwrap();
    assert!(matches!(
        signer.sign(&claims()).unwrap_err(),
        SignError::MissingKeyId
    ));
}

#[tokio::test]
async fn start_up_fails_clearly_when_the_key_set_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    drop(listener);

    let err = Verifier::connect(&Config::with_jwks_url(Algorithm::EdDsa, &url))
        .await
        .unwrap_err();

    assert!(
        matches!(
            &err,
            KeyError::FetchKeySet {
                source: FetchError::Request(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("failed to fetch the token key set from {url} (`jwks_url`)")
    );
}

#[tokio::test]
async fn start_up_fails_clearly_when_the_key_set_is_unusable() {
    let issuer = Issuer::start(&[&Key::ed25519("a")]).await;
    let config = issuer.config(Algorithm::Rs256, HOUR);
    type Expected = fn(&FetchError) -> bool;
    let cases: [(StatusCode, String, Expected); 4] = [
        (
            StatusCode::OK,
            set(&[&Key::ed25519("a")]).to_string(),
            |e| matches!(e, FetchError::NoUsableKey { ignored: 1, .. }),
        ),
        (StatusCode::NOT_FOUND, String::new(), |e| {
            matches!(e, FetchError::Status { status: 404 })
        }),
        (StatusCode::OK, "<html>".to_owned(), |e| {
            matches!(e, FetchError::NotAKeySet(_))
        }),
        (StatusCode::OK, " ".repeat(1024 * 1024 + 1), |e| {
            matches!(e, FetchError::TooLarge { .. })
        }),
    ];

    for (status, body, expected) in cases {
        issuer.answer(status, body);
        let err = Verifier::connect(&config).await.unwrap_err();
        let KeyError::FetchKeySet { source, .. } = &err else {
            panic!("{err:?}");
        };
        assert!(expected(source), "{source:?}");
    }
}

#[tokio::test]
async fn the_refresher_stops_with_the_verifier() {
    let issuer = Issuer::start(&[&Key::ed25519("a")]).await;
    let (verifier, refresher) = Verifier::connect(&issuer.config(Algorithm::EdDsa, HOUR))
        .await
        .unwrap();
    let refreshing = tokio::spawn(refresher.run(CancellationToken::new()));

    drop(verifier);

    tokio::time::timeout(DEADLINE, refreshing)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_static_key_needs_no_fetch_and_no_refresher() {
    let config = Config::new("a key of at least thirty-two bytes!!".into());

    let (verifier, refresher) = Verifier::connect(&config).await.unwrap();

    tokio::time::timeout(
        Duration::from_secs(1),
        refresher.run(CancellationToken::new()),
    )
    .await
    .unwrap();
    assert!(verifier.verify(&verifier.issue(&claims())).is_ok());
}

#[tokio::test]
async fn key_set_settings_that_cannot_work_are_refused_before_any_fetch() {
    let url = "https://issuer.example/.well-known/jwks.json";
    let public = include_str!("../../testdata/ed25519-public.pem");
    type Expected = fn(&KeyError) -> bool;
    let cases: [(Config, Expected); 7] = [
        (
            Config {
                public_key: Some(public.to_owned()),
                ..Config::with_jwks_url(Algorithm::EdDsa, url)
            },
            |e| matches!(e, KeyError::KeySetAndPublicKey),
        ),
        (
            Config {
                jwks_url: Some(url.to_owned()),
                ..Config::new("a key of at least thirty-two bytes!!".into())
            },
            |e| matches!(e, KeyError::KeySetForHs256),
        ),
        (
            Config {
                key: Some("a key of at least thirty-two bytes!!".into()),
                ..Config::with_jwks_url(Algorithm::Rs256, url)
            },
            |e| matches!(e, KeyError::UnusedKey { .. }),
        ),
        (
            Config::with_jwks_url(Algorithm::EdDsa, "http://issuer.example/jwks"),
            |e| matches!(e, KeyError::InsecureKeySetUrl),
        ),
        (Config::with_jwks_url(Algorithm::EdDsa, "/jwks"), |e| {
            matches!(e, KeyError::BadKeySetUrl)
        }),
        (
            Config::with_jwks_url(Algorithm::EdDsa, "file:///etc/jwks.json"),
            |e| matches!(e, KeyError::BadKeySetUrl),
        ),
        (
            Config {
                jwks_refresh_seconds: 0,
                ..Config::with_jwks_url(Algorithm::EdDsa, url)
            },
            |e| matches!(e, KeyError::NoRefreshInterval),
        ),
    ];
    for (config, expected) in cases {
        let err = Verifier::connect(&config).await.unwrap_err();
        assert!(expected(&err), "{err}");
        let err = Verifier::new(&config).unwrap_err();
        assert!(expected(&err), "{err}");
    }

    for loopback in [
        "http://localhost:1/jwks",
        "http://[::1]:1/jwks",
        "http://127.0.0.2:1/jwks",
    ] {
        let err = Verifier::new(&Config::with_jwks_url(Algorithm::EdDsa, loopback)).unwrap_err();
        assert!(
            matches!(err, KeyError::KeySetNotFetched),
            "{loopback}: {err}"
        );
    }
}

fn base64url(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}
