//! Catalog entries of typed-in credentials (`api_key`, `basic`,
//! `oauth2_client_credentials`): what loads, the form each gets, and the
//! file, key and reason of what start-up refuses.

use fleet_connectors::{
    Catalog,
    catalog::{Auth, ClientAuth, FieldKind},
};
use fleet_events::ConnectorId;

/// `keyed.toml` of `auth` with `rest` after the top-level keys.
fn load(auth: &str, rest: &str) -> Result<Catalog, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("keyed.toml"),
        format!(
            "display_name = \"Keyed\"\nauth = \"{auth}\"\ndocs_url = \"https://keyed.test\"\n\
             default_sync_interval_secs = 60\n{rest}\n"
        ),
    )
    .unwrap();
    Catalog::with_overrides(dir.path()).map_err(|error| {
        let mut chain = vec![error.to_string()];
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            chain.push(cause.to_string());
            source = cause.source();
        }
        chain.join(": ")
    })
}

fn fields(catalog: &Catalog) -> Vec<(String, FieldKind, bool)> {
    catalog
        .get(&ConnectorId::parse("keyed").unwrap())
        .unwrap()
        .form
        .iter()
        .map(|f| (f.name.clone(), f.kind, f.required))
        .collect()
}

#[test]
fn each_mode_loads_with_the_form_fields_it_needs() {
    let api_key = load(
        "api_key",
        "[[settings]]\nname = \"region\"\nlabel = \"Region\"\nallowed = [\"us\", \"eu\"]\n\
         [api_key]\nheader = \"X-Api-Key\"\nverify_url = \"https://api.{region}.keyed.test/me\"",
    )
    .unwrap();
    assert_eq!(
        fields(&api_key),
        [("api_key".to_owned(), FieldKind::Password, true)]
    );

    let basic = load("basic", "[basic]\nverify_url = \"https://keyed.test/me\"").unwrap();
    assert_eq!(
        fields(&basic),
        [
            ("username".to_owned(), FieldKind::Text, true),
            ("password".to_owned(), FieldKind::Password, true)
        ]
    );

    let cc = load(
        "oauth2_client_credentials",
        "[oauth2_client_credentials]\ntoken_url = \"https://keyed.test/token\"\n\
         verify_url = \"https://keyed.test/me\"\nclient_auth = \"client_secret_basic\"\n\
         scopes = [\"read\"]",
    )
    .unwrap();
    assert_eq!(
        fields(&cc),
        [
            ("client_id".to_owned(), FieldKind::Text, true),
            ("client_secret".to_owned(), FieldKind::Password, true)
        ]
    );
    let entry = cc.get(&ConnectorId::parse("keyed").unwrap()).unwrap();
    let Auth::ClientCredentials(settings) = &entry.auth else {
        panic!("{:?}", entry.auth);
    };
    assert_eq!(settings.client_auth, ClientAuth::ClientSecretBasic);
    assert_eq!(entry.auth.kind(), "oauth2_client_credentials");
    assert!(entry.auth.is_manual());
}

#[test]
fn a_basic_entry_may_relabel_its_fields_and_leave_the_password_empty() {
    let catalog = load(
        "basic",
        "[basic]\nverify_url = \"https://keyed.test/me\"\n\
         [[form]]\nname = \"username\"\nlabel = \"API key\"\nkind = \"password\"\n\
         [[form]]\nname = \"password\"\nlabel = \"Password\"\nkind = \"password\"\nrequired = false",
    )
    .unwrap();

    assert_eq!(
        fields(&catalog),
        [
            ("username".to_owned(), FieldKind::Password, true),
            ("password".to_owned(), FieldKind::Password, false)
        ]
    );
}

#[test]
fn a_bad_entry_of_typed_in_credentials_is_refused_naming_the_file_the_key_and_the_reason() {
    for (auth, rest, key, reason) in [
        (
            "api_key",
            "[api_key]\nverify_url = \"https://keyed.test/me\"",
            "api_key",
            "needs one of header and query, or {api_key} in verify_url or verify_json",
        ),
        (
            "api_key",
            "[api_key]\nheader = \"X-Key\"\nquery = \"key\"\nverify_url = \"https://keyed.test/me\"",
            "api_key",
            "needs exactly one of header and query",
        ),
        (
            "api_key",
            "[api_key]\nheader = \"Bad Header\"\nverify_url = \"https://keyed.test/me\"",
            "api_key.header",
            "is no HTTP header name",
        ),
        (
            "api_key",
            "[api_key]\nquery = \"key\"\nprefix = \"Bearer \"\nverify_url = \"https://keyed.test/me\"",
            "api_key.prefix",
            "goes with api_key.header only",
        ),
        (
            "api_key",
            "[api_key]\nheader = \"X-Key\"\nverify_url = \"https://{tenant}.keyed.test/me\"",
            "api_key.verify_url",
            "uses {tenant}",
        ),
        (
            "api_key",
            "[[settings]]\nname = \"host\"\nlabel = \"Host\"\n\
             [api_key]\nheader = \"X-Key\"\nverify_url = \"https://{host}/me\"",
            "api_key.verify_url",
            "lets {host} choose the host",
        ),
        (
            "basic",
            "[api_key]\nheader = \"X-Key\"\nverify_url = \"https://keyed.test/me\"",
            "auth",
            "is \"basic\" and needs the [basic] table only",
        ),
        (
            "basic",
            "[basic]\nverify_url = \"https://keyed.test/me\"\n\
             [[form]]\nname = \"user\"\nlabel = \"User\"\nkind = \"text\"",
            "form",
            "must be the fields username, password in this order",
        ),
        (
            "api_key",
            "[api_key]\nheader = \"X-Key\"\nverify_url = \"https://keyed.test/me\"\n\
             [[form]]\nname = \"api_key\"\nlabel = \"Key\"\nkind = \"password\"\nrequired = false",
            "form[0].required",
            "the credentials need every field",
        ),
        (
            "basic",
            "[[settings]]\nname = \"password\"\nlabel = \"P\"\n\
             [basic]\nverify_url = \"https://keyed.test/me\"",
            "settings",
            "the name of a credentials field",
        ),
        (
            "oauth2_client_credentials",
            "[oauth2_client_credentials]\ntoken_url = \"https://keyed.test/token\"\n\
             verify_url = \"https://keyed.test/me\"\n\
             token_params = { client_secret = \"x\" }",
            "oauth2_client_credentials.token_params.client_secret",
            "carries a secret",
        ),
        (
            "oauth2_client_credentials",
            "[oauth2_client_credentials]\ntoken_url = \"https://{region}.keyed.test/token\"\n\
             verify_url = \"https://keyed.test/me\"",
            "oauth2_client_credentials.token_url",
            "uses {region}",
        ),
        (
            "api_key",
            "[api_key]\nheader = \"X-Key\"\nverify_url = \"https://keyed.test/me\"\n\
             headers = { x-key = \"1\" }",
            "api_key.headers.x-key",
            "would replace the header that carries the credentials",
        ),
        (
            "basic",
            "[basic]\nverify_url = \"https://keyed.test/me\"\n\
             headers = { Authorization = \"x\" }",
            "basic.headers.Authorization",
            "would replace the header that carries the credentials",
        ),
        (
            "basic",
            "[basic]\nverify_url = \"https://keyed.test/me\"\n\
             headers = { X-Version = \"{version}\" }",
            "basic.headers.X-Version",
            "uses {version}",
        ),
        (
            "api_key",
            "[[settings]]\nname = \"token\"\nlabel = \"Token\"\nsecret = true\n\
             [api_key]\nheader = \"X-Key\"\nverify_url = \"https://keyed.test/me/{token}\"",
            "settings[0].secret",
            "may stand only in the headers",
        ),
        (
            "api_key",
            "[[settings]]\nname = \"token\"\nlabel = \"Token\"\nsecret = true\nvalue = \"t\"\n\
             [api_key]\nheader = \"X-Key\"\nverify_url = \"https://keyed.test/me\"\n\
             headers = { X-Token = \"{token}\" }",
            "settings[0].secret",
            "not in a catalog file",
        ),
        (
            "api_key",
            "[[settings]]\nname = \"host\"\nlabel = \"Host\"\npattern = \"[a-z0-9.-]+\"\n\
             [api_key]\nheader = \"X-Key\"\nverify_url = \"https://api.keyed.{host}/me\"",
            "api_key.verify_url",
            "lets {host} choose the host",
        ),
        (
            "basic",
            "[basic]\nverify_url = \"https://keyed.test/accounts/{username}\"\n\
             [[form]]\nname = \"username\"\nlabel = \"Key\"\nkind = \"password\"\n\
             [[form]]\nname = \"password\"\nlabel = \"P\"\nkind = \"password\"\nrequired = false",
            "basic.verify_url",
            "uses {username}",
        ),
        (
            "basic",
            "[basic]\nverify_url = \"https://keyed.test/me\"\nusername = \"admin\"",
            "basic.username",
            "does not use {username}",
        ),
        (
            "api_key",
            "[api_key]\nheader = \"X-Key\"\nverify_url = \"https://{api_key}.keyed.test/me\"",
            "api_key.verify_url",
            "puts {api_key} in the address",
        ),
        (
            "api_key",
            "[api_key]\nheader = \"X-Key\"\nverify_url = \"https://keyed.test:{port}/me\"\n\
             [[settings]]\nname = \"port\"\nlabel = \"Port\"",
            "api_key.verify_url",
            "lets {port} choose the port",
        ),
        (
            "basic",
            "[basic]\nverify_url = \"https://sts.amazonaws.com/\"\n\
             headers = { X-Secret = \"{password}\" }\n\
             [basic.aws_sigv4]\nregion = \"us-east-1\"\nservice = \"sts\"",
            "basic.headers.X-Secret",
            "sends {password}, the secret access key",
        ),
        (
            "basic",
            "[basic]\nverify_url = \"https://api.duo.test/admin/v1/x?a=1\"\n\
             verify_method = \"POST\"\n[basic.duo_signature]",
            "basic.verify_url",
            "has a query beside a POST",
        ),
        (
            "basic",
            "[basic]\nverify_url = \"https://api.duo.test/admin/v1/x\"\n\
             headers = { Host = \"elsewhere.test\" }\n[basic.duo_signature]",
            "basic.headers.Host",
            "is set by Duo signing",
        ),
        (
            "basic",
            "[basic]\nverify_url = \"https://api.signed.test/x\"\n\
             [basic.http_signature]\nalgorithm = \"ed25519\"\n\
             components = [\"@method\", \"@path\", \"@method\"]",
            "basic.http_signature.components[2]",
            "repeats a component",
        ),
        (
            "basic",
            "[basic]\nverify_url = \"https://api.signed.test/x\"\n\
             [basic.http_signature]\nalgorithm = \"ed25519\"\ncomponents = [\"x-tenant\"]",
            "basic.http_signature.components[0]",
            "is neither a derived component",
        ),
        (
            "basic",
            "[basic]\nverify_url = \"https://keyed.test/me/{api_key}\"",
            "basic.verify_url",
            "uses {api_key}",
        ),
        (
            "api_key",
            "[api_key]\nverify_url = \"https://keyed.test/me\"\nverify_method = \"POST\"\n\
             verify_json = { key = \"{api_key}\" }\nverify_form = { a = \"b\" }",
            "api_key.verify_json",
            "is a second body beside api_key.verify_form",
        ),
        (
            "api_key",
            "[api_key]\nverify_url = \"https://keyed.test/me\"\n\
             verify_json = { key = \"{api_key}\" }",
            "api_key.verify_json",
            "sent only with api_key.verify_method = \"POST\"",
        ),
        (
            "api_key",
            "[api_key]\nheader = \"Authorization\"\nverify_url = \"https://keyed.test/me\"\n\
             headers = { authorization = \"x\" }",
            "api_key.headers.authorization",
            "would replace the header that carries the credentials",
        ),
        (
            "basic",
            "[basic]\nverify_url = \"https://keyed.test/me\"\n\
             headers = { \"Bad Name\" = \"1\" }",
            "basic.headers.Bad Name",
            "is no HTTP header name",
        ),
        (
            "basic",
            "[basic]\nverify_url = \"https://keyed.test/me\"\n\
             verify_form = { Action = \"Check\" }",
            "basic.verify_form",
            "sent only with basic.verify_method = \"POST\"",
        ),
        (
            "api_key",
            "[api_key]\nheader = \"X-Key\"\nverify_url = \"https://keyed.test/me\"\n\
             verify_method = \"POST\"\nverify_form = { account = \"{account}\" }",
            "api_key.verify_form.account",
            "uses {account}, which is no setting of the entry",
        ),
        (
            "basic",
            "[basic]\nverify_url = \"https://sts.amazonaws.com/\"\n\
             [basic.aws_sigv4]\nregion = \"US East\"\nservice = \"sts\"",
            "basic.aws_sigv4.region",
            "is not an AWS region or service name",
        ),
        (
            "basic",
            "[basic]\nverify_url = \"https://sts.amazonaws.com/\"\n\
             [basic.aws_sigv4]\nregion = \"{region}\"\nservice = \"sts\"",
            "basic.aws_sigv4.region",
            "uses {region}, which is no setting of the entry",
        ),
        (
            "basic",
            "[basic]\nverify_url = \"https://sts.amazonaws.com/\"\n\
             username = \"{username}/token\"\n\
             [basic.aws_sigv4]\nregion = \"us-east-1\"\nservice = \"sts\"",
            "basic.username",
            "cannot go with basic.aws_sigv4",
        ),
        (
            "basic",
            "[basic]\nverify_url = \"https://sts.amazonaws.com/\"\n\
             headers = { X-Amz-Date = \"20260101T000000Z\" }\n\
             [basic.aws_sigv4]\nregion = \"us-east-1\"\nservice = \"sts\"",
            "basic.headers.X-Amz-Date",
            "is set by AWS signing",
        ),
    ] {
        let message = load(auth, rest).unwrap_err();
        assert!(message.contains("keyed.toml"), "{rest}: {message}");
        assert!(message.contains(key), "{rest}: {message}");
        assert!(message.contains(reason), "{rest}: {message}");
    }
}
