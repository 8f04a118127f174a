//! TLS to a real nats-server, with certificates made by rcgen for each test.

use std::error::Error as _;
use std::path::{Path, PathBuf};

use async_nats::jetstream::{self, stream};
use fleet_testkit::NatsServer;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tempfile::TempDir;

use crate::helpers::DEADLINE;

/// A certificate authority and the files it signed, in a temporary directory.
struct Pki {
    dir: TempDir,
    issuer: Issuer<'static, KeyPair>,
    /// The CA's certificate, which clients and servers trust.
    ca: PathBuf,
}

/// A certificate and its key, as PEM files.
struct Pair {
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn new() -> Self {
        Self::named("fleet test CA")
    }

    /// A CA whose certificate's subject is `name`.
    fn named(name: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut params = CertificateParams::new(Vec::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        let ca = write(dir.path(), "ca.pem", &cert.pem());
        Self {
            dir,
            issuer: Issuer::new(params, key),
            ca,
        }
    }

    /// A server certificate signed by this CA for 127.0.0.1 and localhost.
    fn server(&self) -> Pair {
        self.server_for(vec!["127.0.0.1".into(), "localhost".into()])
    }

    /// A server certificate signed by this CA for `names`.
    fn server_for(&self, names: Vec<String>) -> Pair {
        self.leaf("server", names, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate signed by this CA.
    fn client(&self) -> Pair {
        self.client_named("client")
    }

    /// A client certificate signed by this CA, in files named after `name`.
    fn client_named(&self, name: &str) -> Pair {
        self.leaf(name, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn leaf(&self, name: &str, names: Vec<String>, usage: ExtendedKeyUsagePurpose) -> Pair {
        let mut params = CertificateParams::new(names).expect("certificate parameters");
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("certificate");
        Pair {
            cert: write(self.dir.path(), &format!("{name}.pem"), &cert.pem()),
            key: write(
                self.dir.path(),
                &format!("{name}-key.pem"),
                &key.serialize_pem(),
            ),
        }
    }

    /// Starts nats-server (with JetStream) serving TLS with `server`; with
    /// `verify`, it also asks clients for a certificate signed by this CA.
    async fn nats(&self, server: &Pair, extra: &str) -> NatsServer {
        let config = format!(
            "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  ca_file: {:?}\n  timeout: 5\n{extra}}}\n",
            server.cert, server.key, self.ca
        );
        let path = write(self.dir.path(), "nats-server.conf", &config);
        NatsServer::start_with_config(path, std::iter::empty::<(&str, &str)>()).await
    }
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// The error and its sources, joined, for assertions on the cause.
fn chain(error: &fleet_bus::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn connect(config: &fleet_bus::Config) -> Result<async_nats::Client, fleet_bus::Error> {
    tokio::time::timeout(DEADLINE, fleet_bus::connect(config))
        .await
        .expect("connect answers in time")
}

/// Connects, or fails the test with the whole error chain.
async fn connected(config: &fleet_bus::Config) -> async_nats::Client {
    connect(config)
        .await
        .unwrap_or_else(|e| panic!("connects over TLS: {}", chain(&e)))
}

/// The connection attempt fails; returns the error chain.
async fn refused(config: &fleet_bus::Config) -> String {
    match connect(config).await {
        Ok(_) => panic!("connected to {} although it should not have", config.url),
        Err(e) => chain(&e),
    }
}

/// Publishes to a fresh stream through `client`, waits for the ack, and
/// reads the message back.
async fn assert_jetstream_round_trip(client: async_nats::Client) {
    let js = jetstream::new(client);
    let round_trip = async {
        let stream = js
            .create_stream(stream::Config {
                name: "TLS".into(),
                subjects: vec!["tls.>".into()],
                ..Default::default()
            })
            .await
            .expect("stream created");
        let ack = js
            .publish("tls.hello", "over TLS".into())
            .await
            .expect("publish sent")
            .await
            .expect("publish acked");
        let message = stream
            .get_raw_message(ack.sequence)
            .await
            .expect("message stored");
        assert_eq!(message.subject.as_str(), "tls.hello");
        assert_eq!(&message.payload[..], b"over TLS");
    };
    tokio::time::timeout(DEADLINE, round_trip)
        .await
        .expect("JetStream answers in time");
}

fn config(server: &NatsServer) -> fleet_bus::Config {
    fleet_bus::Config::new(server.url())
}

#[tokio::test]
async fn a_client_trusting_the_private_ca_connects_and_uses_jetstream() {
    let pki = Pki::new();
    let server = pki.nats(&pki.server(), "").await;
    let mut config = config(&server);
    config.tls_ca_file = Some(pki.ca.clone());

    let client = connected(&config).await;

    assert_jetstream_round_trip(client).await;
}

#[tokio::test]
async fn a_tls_url_works_too() {
    let pki = Pki::new();
    let server = pki.nats(&pki.server(), "").await;
    let mut config = fleet_bus::Config::new(format!("tls://127.0.0.1:{}", server.port()));
    config.tls_ca_file = Some(pki.ca.clone());

    assert_jetstream_round_trip(connected(&config).await).await;
}

#[tokio::test]
async fn a_client_without_the_ca_refuses_the_server_certificate() {
    let pki = Pki::new();
    let server = pki.nats(&pki.server(), "").await;

    let error = refused(&config(&server)).await;

    assert!(
        error.contains("TLS") || error.contains("certificate"),
        "{error}"
    );
    assert!(error.contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn a_ca_other_than_the_servers_is_refused_too() {
    let pki = Pki::new();
    let server = pki.nats(&pki.server(), "").await;
    let mut config = config(&server);
    let other = Pki::named("another CA");
    config.tls_ca_file = Some(other.ca.clone());

    let error = refused(&config).await;

    assert!(error.contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused() {
    let pki = Pki::new();
    let server = pki
        .nats(&pki.server_for(vec!["nats.example".into()]), "")
        .await;
    let mut config = config(&server);
    config.tls_ca_file = Some(pki.ca.clone());

    let error = refused(&config).await;

    assert!(
        error.contains("certificate not valid for name \"127.0.0.1\""),
        "{error}"
    );
}

#[tokio::test]
async fn a_server_that_verifies_clients_needs_a_certificate_signed_by_its_ca() {
    let pki = Pki::new();
    let server = pki.nats(&pki.server(), "  verify: true\n").await;
    let mut config = config(&server);
    config.tls_ca_file = Some(pki.ca.clone());

    let without = refused(&config).await;

    let other = Pki::named("another CA");
    let stranger = other.client();
    config.tls_cert_file = Some(stranger.cert);
    config.tls_key_file = Some(stranger.key);
    let with_a_stranger = refused(&config).await;

    let client = pki.client();
    config.tls_cert_file = Some(client.cert);
    config.tls_key_file = Some(client.key);
    let connected = connected(&config).await;
    assert_jetstream_round_trip(connected).await;

    // The server's alerts reach the client after the handshake (TLS 1.3),
    // so the error is the server's refusal.
    assert!(without.contains("CertificateRequired"), "{without}");
    assert!(with_a_stranger.contains("UnknownCA"), "{with_a_stranger}");
}

#[tokio::test]
async fn require_tls_refuses_a_plain_server() {
    let server = NatsServer::start().await;
    let mut config = config(&server);
    assert!(
        connect(&config).await.is_ok(),
        "the plain server takes plain clients"
    );
    config.require_tls = true;

    let error = refused(&config).await;

    // The client starts TLS after the server's plain greeting, and reads
    // the server's plain answer as a broken TLS record: this is the message
    // docs/configuration.md quotes for a server without TLS.
    assert!(error.contains("InvalidContentType"), "{error}");
}

#[tokio::test]
async fn a_ca_file_alone_refuses_a_plain_server() {
    let pki = Pki::new();
    let server = NatsServer::start().await;
    let mut config = config(&server);
    config.tls_ca_file = Some(pki.ca.clone());

    let error = refused(&config).await;

    assert!(error.contains("InvalidContentType"), "{error}");
}

#[tokio::test]
async fn tls_first_reaches_a_server_with_handshake_first() {
    let pki = Pki::new();
    let server = pki.nats(&pki.server(), "  handshake_first: true\n").await;
    let mut config = config(&server);
    config.tls_ca_file = Some(pki.ca.clone());
    config.tls_first = true;

    assert_jetstream_round_trip(connected(&config).await).await;
}

#[tokio::test]
async fn unusable_tls_files_are_reported_by_setting_before_connecting() {
    let pki = Pki::new();
    let client = pki.client();
    let other = pki.client_named("other");
    // Nothing listens here: each error comes from checking the settings.
    let base = fleet_bus::Config::new("nats://127.0.0.1:1");
    let missing = pki.dir.path().join("missing.pem");

    let cases: Vec<(&str, fleet_bus::Config, &str)> = vec![
        (
            "missing CA file",
            fleet_bus::Config {
                tls_ca_file: Some(missing.clone()),
                ..base.clone()
            },
            "`tls_ca_file`",
        ),
        (
            "CA file without a certificate",
            fleet_bus::Config {
                tls_ca_file: Some(client.key.clone()),
                ..base.clone()
            },
            "`tls_ca_file`",
        ),
        (
            "certificate without key",
            fleet_bus::Config {
                tls_cert_file: Some(client.cert.clone()),
                ..base.clone()
            },
            "`tls_cert_file` is set without `tls_key_file`",
        ),
        (
            "key without certificate",
            fleet_bus::Config {
                tls_key_file: Some(client.key.clone()),
                ..base.clone()
            },
            "`tls_key_file` is set without `tls_cert_file`",
        ),
        (
            "missing certificate file",
            fleet_bus::Config {
                tls_cert_file: Some(missing.clone()),
                tls_key_file: Some(client.key.clone()),
                ..base.clone()
            },
            "`tls_cert_file`",
        ),
        (
            "key file without a key",
            fleet_bus::Config {
                tls_cert_file: Some(client.cert.clone()),
                tls_key_file: Some(client.cert.clone()),
                ..base.clone()
            },
            "`tls_key_file`",
        ),
        (
            "key of another certificate",
            fleet_bus::Config {
                tls_cert_file: Some(client.cert.clone()),
                tls_key_file: Some(other.key.clone()),
                ..base.clone()
            },
            "does not go with `tls_cert_file`: keys may not be consistent: KeyMismatch",
        ),
    ];
    for (case, config, names) in cases {
        let error = refused(&config).await;
        assert!(error.contains(names), "{case}: {error}");
        assert!(error.contains("TLS error"), "{case}: {error}");
        assert!(!error.contains("connection refused"), "{case}: {error}");
    }
}

#[test]
fn the_tls_settings_deserialize_with_defaults() {
    let plain: fleet_bus::Config =
        serde_json::from_value(serde_json::json!({ "url": "nats://nats:4222" })).unwrap();
    assert!(!plain.tls_required());
    assert_eq!(plain.tls_ca_file, None);

    let tls: fleet_bus::Config = serde_json::from_value(serde_json::json!({
        "url": "nats://nats:4222",
        "tls_ca_file": "/etc/fleet/nats-ca.pem",
        "tls_cert_file": "/etc/fleet/worker.pem",
        "tls_key_file": "/etc/fleet/worker-key.pem",
        "require_tls": true,
    }))
    .unwrap();
    assert_eq!(tls.tls_ca_file, Some("/etc/fleet/nats-ca.pem".into()));
    assert_eq!(tls.tls_cert_file, Some("/etc/fleet/worker.pem".into()));
    assert_eq!(tls.tls_key_file, Some("/etc/fleet/worker-key.pem".into()));
    assert!(tls.require_tls && !tls.tls_first && tls.tls_required());
}
