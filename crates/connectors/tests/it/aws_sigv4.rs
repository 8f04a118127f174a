//! A `basic` entry whose requests are signed for AWS (`[basic.aws_sigv4]`),
//! against moto's server, which checks every signature as AWS does.

use fleet_connectors::{Config, Credentials, Error};
use fleet_testkit::Moto;

use crate::helpers::{config, connector};

/// An entry that checks an AWS access key with STS `GetCallerIdentity`,
/// as boto3 asks it: a form-encoded `POST`, signed for `sts` in the
/// region the user chose.
fn aws_config(moto: &Moto) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("aws.toml"),
        format!(
            r#"display_name = "AWS"
auth = "basic"
docs_url = "https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html"
default_sync_interval_secs = 3600

[[settings]]
name = "region"
label = "Region"
pattern = "[a-z]{{2}}(-[a-z]+)+-[0-9]"

[[form]]
name = "username"
label = "Access key ID"
kind = "text"

[[form]]
name = "password"
label = "Secret access key"
kind = "password"

[basic]
verify_url = "{url}"
verify_method = "POST"
verify_form = {{ Action = "GetCallerIdentity", Version = "2011-06-15" }}

[basic.aws_sigv4]
region = "{{region}}"
service = "sts"
"#,
            url = moto.url()
        ),
    )
    .unwrap();
    let config = Config {
        catalog_dir: Some(dir.path().to_owned()),
        ..config()
    };
    (dir, config)
}

fn key(id: &str, secret: &str) -> Credentials {
    Credentials::Basic {
        username: id.to_owned(),
        password: secret.into(),
        values: std::collections::BTreeMap::from([("region".to_owned(), "eu-west-1".to_owned())])
            .into(),
    }
}

#[tokio::test]
async fn an_aws_access_key_signs_each_request_and_a_wrong_secret_is_refused_as_aws_refuses_it() {
    let moto = Moto::start().await;
    let (_dir, config) = aws_config(&moto);
    let aws = connector(&config, "aws");

    aws.validate(&key(moto.access_key_id(), moto.secret_access_key()))
        .await
        .expect("moto accepts the signature");
    let page = aws
        .sync_page(
            &key(moto.access_key_id(), moto.secret_access_key()),
            "account",
            None,
        )
        .await
        .expect("a sync signs its request too");
    assert_eq!(page.records.len(), 1);

    let wrong = aws
        .validate(&key(moto.access_key_id(), "not-the-secret"))
        .await
        .unwrap_err();
    assert!(
        matches!(wrong, Error::CredentialsRejected { status: 403, .. }),
        "{wrong:?}"
    );
    assert!(!format!("{wrong}").contains(moto.secret_access_key()));
    let unknown = aws
        .validate(&key("AKIAUNKNOWNKEY000000", moto.secret_access_key()))
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, Error::CredentialsRejected { status: 403, .. }),
        "{unknown:?}"
    );
}
