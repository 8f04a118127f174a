//! A local issuer that serves a JWK set, its keys, and waiting helpers.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use fleet_auth::{Algorithm, Claims, Config, Signer};
use fleet_events::TenantId;
use jsonwebtoken::EncodingKey;
use jsonwebtoken::jwk::Jwk;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::watch;

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata");

/// The longest any test waits for a condition.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// A private key of the issuer and the `kid` its key set lists it under.
pub(crate) struct Key {
    pub(crate) kid: &'static str,
    algorithm: Algorithm,
    pem: String,
}

impl Key {
    /// `testdata/ed25519-private.pem`.
    pub(crate) fn ed25519(kid: &'static str) -> Self {
        Self::read(kid, Algorithm::EdDsa, "ed25519-private.pem")
    }

    /// `testdata/ed25519-next-private.pem`, the key rotated to.
    pub(crate) fn ed25519_next(kid: &'static str) -> Self {
        Self::read(kid, Algorithm::EdDsa, "ed25519-next-private.pem")
    }

    /// `testdata/rsa-private.pem`.
    pub(crate) fn rsa(kid: &'static str) -> Self {
        Self::read(kid, Algorithm::Rs256, "rsa-private.pem")
    }

    fn read(kid: &'static str, algorithm: Algorithm, file: &str) -> Self {
        let pem = std::fs::read_to_string(format!("{TESTDATA}/{file}")).unwrap();
        Self {
            kid,
            algorithm,
            pem,
        }
    }

    /// The public key as its key set lists it: `kid`, `use: sig`, `alg`.
    pub(crate) fn jwk(&self) -> Value {
        let (encoding, algorithm) = match self.algorithm {
            Algorithm::EdDsa => (
                EncodingKey::from_ed_pem(self.pem.as_bytes()).unwrap(),
                jsonwebtoken::Algorithm::EdDSA,
            ),
            _ => (
                EncodingKey::from_rsa_pem(self.pem.as_bytes()).unwrap(),
                jsonwebtoken::Algorithm::RS256,
            ),
        };
        let mut jwk =
            serde_json::to_value(Jwk::from_encoding_key(&encoding, algorithm).unwrap()).unwrap();
        jwk["kid"] = json!(self.kid);
        jwk["use"] = json!("sig");
        jwk
    }

    /// A signer with this key that names it `kid`, for `config`.
    pub(crate) fn signer_as(&self, config: &Config, kid: &str) -> Signer {
        Signer::with_private_key(config, &SecretString::from(self.pem.clone()))
            .unwrap()
            .with_key_id(kid)
    }

    /// A token for tenant `acme` signed with this key under its `kid`.
    pub(crate) fn token(&self, config: &Config) -> String {
        self.signer_as(config, self.kid).sign(&claims()).unwrap()
    }
}

/// Claims for tenant `acme`, valid for ten minutes.
pub(crate) fn claims() -> Claims {
    Claims::for_tenant(TenantId::parse("acme").unwrap(), Duration::from_secs(600))
}

/// What the issuer answers.
struct Answer {
    status: StatusCode,
    body: String,
}

/// An issuer serving its key set at `/jwks` on a loopback port, counting
/// fetches. Stops when dropped.
pub(crate) struct Issuer {
    url: String,
    answer: Arc<Mutex<Answer>>,
    fetches: watch::Receiver<usize>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Served {
    answer: Arc<Mutex<Answer>>,
    fetches: Arc<watch::Sender<usize>>,
}

impl Issuer {
    /// An issuer whose set lists `keys`.
    pub(crate) async fn start(keys: &[&Key]) -> Self {
        Self::start_with(&set(keys)).await
    }

    /// An issuer that answers `body` (any JSON).
    pub(crate) async fn start_with(body: &Value) -> Self {
        let answer = Arc::new(Mutex::new(Answer {
            status: StatusCode::OK,
            body: body.to_string(),
        }));
        let (sender, fetches) = watch::channel(0);
        let served = Served {
            answer: Arc::clone(&answer),
            fetches: Arc::new(sender),
        };
        let app = Router::new().route("/jwks", get(serve)).with_state(served);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url,
            answer,
            fetches,
            server,
        }
    }

    /// Where the set is served.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Settings that check `algorithm` tokens with this issuer's set.
    pub(crate) fn config(&self, algorithm: Algorithm, refresh_seconds: u64) -> Config {
        Config {
            jwks_refresh_seconds: refresh_seconds,
            ..Config::with_jwks_url(algorithm, self.url())
        }
    }

    /// From now on, the set lists `keys`.
    pub(crate) fn publish(&self, keys: &[&Key]) {
        self.answer(StatusCode::OK, set(keys).to_string());
    }

    /// From now on, the issuer answers `status` with `body`.
    pub(crate) fn answer(&self, status: StatusCode, body: String) {
        *self.answer.lock().unwrap() = Answer { status, body };
    }

    /// How many times the set was fetched.
    pub(crate) fn fetches(&self) -> usize {
        *self.fetches.borrow()
    }

    /// Waits until the set has been fetched `count` times.
    pub(crate) async fn fetched(&self, count: usize) {
        let mut fetches = self.fetches.clone();
        tokio::time::timeout(DEADLINE, fetches.wait_for(|n| *n >= count))
            .await
            .unwrap_or_else(|_| panic!("the key set was not fetched {count} times"))
            .unwrap();
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(State(served): State<Served>) -> Response {
    served.fetches.send_modify(|n| *n += 1);
    let answer = served.answer.lock().unwrap_or_else(PoisonError::into_inner);
    (
        answer.status,
        [("content-type", "application/json")],
        answer.body.clone(),
    )
        .into_response()
}

/// A JWK set listing `keys`.
pub(crate) fn set(keys: &[&Key]) -> Value {
    json!({ "keys": keys.iter().map(|key| key.jwk()).collect::<Vec<_>>() })
}

/// Waits until `condition` holds, checking every few milliseconds.
pub(crate) async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    fleet_testkit::eventually(DEADLINE, what, || {
        let held = condition();
        async move { held.then_some(()) }
    })
    .await;
}
