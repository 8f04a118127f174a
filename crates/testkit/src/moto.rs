//! AWS's APIs on a free loopback port: moto's server (PyPI `moto[server]`),
//! with access control on, so that every request after the set-up must be
//! signed with AWS Signature Version 4 by a key it issued.

use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use tempfile::TempDir;
use url::Url;

use crate::ports::{PortAttempts, free_port};
use crate::process::{Process, StartError, http_client, work_dir};
use crate::tools;

/// How long moto may take to import its services and answer.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The requests moto serves before it checks signatures: those of
/// [`Moto::start`]'s set-up.
const SETUP_ACTIONS: usize = 3;

/// The IAM user [`Moto::start`] creates.
const USER: &str = "fleet";

/// A moto server whose IAM has one user, allowed everything, with one
/// access key. Requests are checked as AWS checks them: a missing or wrong
/// signature is `403 SignatureDoesNotMatch`, an unknown key
/// `403 InvalidClientTokenId`.
///
/// moto checks signatures of form-encoded `POST` requests of the query
/// APIs (STS, IAM) as AWS does; it reads a `GET` query request's
/// parameters as a body, so such a request never matches.
///
/// Dropping the guard kills it and removes its directory.
#[derive(Debug)]
pub struct Moto {
    /// Declared first, so that it is dropped (killed) before its directory.
    _process: Process,
    _dir: TempDir,
    port: u16,
    access_key_id: String,
    secret_access_key: String,
}

impl Moto {
    /// Starts moto's server, then creates the user, its access key and its
    /// policy, the last requests served without a signature.
    ///
    /// # Panics
    ///
    /// Panics when moto is missing (run `scripts/setup`), when it is not
    /// ready within 30 s (the message holds the end of its log), or when
    /// the set-up fails.
    pub async fn start() -> Self {
        let dir = work_dir("moto");
        let mut attempts = PortAttempts::default();
        let (process, port) = loop {
            let port = free_port();
            match spawn(&dir, port).await {
                Ok(process) => break (process, port),
                Err(e) => attempts.retry(&e),
            }
        };
        let base = base_url(port);
        setup(&base, &[("Action", "CreateUser"), ("UserName", USER)]).await;
        let key = setup(&base, &[("Action", "CreateAccessKey"), ("UserName", USER)]).await;
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        setup(
            &base,
            &[
                ("Action", "PutUserPolicy"),
                ("UserName", USER),
                ("PolicyName", "everything"),
                ("PolicyDocument", policy),
            ],
        )
        .await;
        Self {
            _process: process,
            _dir: dir,
            port,
            access_key_id: between(&key, "<AccessKeyId>", "</AccessKeyId>"),
            secret_access_key: between(&key, "<SecretAccessKey>", "</SecretAccessKey>"),
        }
    }

    /// `http://127.0.0.1:<port>/`: every service answers there, chosen by
    /// the service a request is signed for.
    pub fn url(&self) -> Url {
        base_url(self.port)
    }

    /// The access key id of the user.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The secret access key of the user.
    pub fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    /// The ARN of the user, as `GetCallerIdentity` answers it.
    pub fn user_arn(&self) -> String {
        format!("arn:aws:iam::123456789012:user/{USER}")
    }
}

async fn spawn(dir: &TempDir, port: u16) -> Result<Process, StartError> {
    let mut command = Command::new(tools::moto_server());
    command
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("INITIAL_NO_AUTH_ACTION_COUNT", SETUP_ACTIONS.to_string())
        // moto reads no AWS configuration of the machine it runs on.
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    // Not an AWS action: it leaves the unsigned set-up requests alone.
    let probe = base_url(port).join("moto-api/").expect("a valid path");
    let client = http_client();
    let ready = async || {
        client
            .get(probe.clone())
            .send()
            .await
            .is_ok_and(|response| response.status() == StatusCode::OK)
    };
    let log = dir.path().join("moto.log");
    Process::start("moto", command, &log, READY_TIMEOUT, ready).await
}

fn base_url(port: u16) -> Url {
    Url::parse(&format!("http://127.0.0.1:{port}/")).expect("a valid URL")
}

/// One IAM request of the set-up, before signatures are checked: its
/// `Authorization` only names the service, for moto to route it.
async fn setup(base: &Url, params: &[(&str, &str)]) -> String {
    let response = http_client()
        .post(base.clone())
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=SETUP/20260101/us-east-1/iam/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .form(&[params, &[("Version", "2010-05-08")]].concat())
        .send()
        .await
        .unwrap_or_else(|e| panic!("moto's set-up request failed: {e}"));
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert!(
        status.is_success(),
        "moto refused the set-up ({status}): {body}"
    );
    body
}

/// The text between `start` and `end` in an XML answer.
fn between(xml: &str, start: &str, end: &str) -> String {
    let from = xml
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in moto's answer: {xml}"))
        + start.len();
    let to = xml[from..].find(end).map_or(xml.len(), |at| from + at);
    xml[from..to].to_owned()
}
