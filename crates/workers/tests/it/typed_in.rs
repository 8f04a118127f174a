//! Catalog entries of typed-in credentials (`api_key`, `basic`,
//! `oauth2_client_credentials`) against the simulated Keyed API: valid
//! credentials validate and sync the account; refused ones end `invalid`
//! with a reason that names what was refused and never holds it.

use fleet_connectors::Credentials;
use fleet_events::{ConnectionId, ConnectionState, ConnectionStatus, SetupOrigin};
use fleet_sim::{
    KEYED_API_KEY, KEYED_API_TOKEN, KEYED_CLIENT_ID, KEYED_CLIENT_SECRET, KEYED_PASSWORD,
    KEYED_SIGNING_KEY, KEYED_USERNAME, KEYED_VERSION,
};
use serde_json::json;

use crate::helpers::TestFleet;

/// A catalog entry of `auth` whose `[auth]` table is `table`; `{keyed}`
/// stands for the simulator's Keyed.
fn entry(auth: &str, table: &str) -> String {
    format!(
        "display_name = \"Keyed\"\nauth = \"{auth}\"\ndocs_url = \"https://keyed.test/docs\"\n\
         default_sync_interval_secs = 3600\n\n\
         [[settings]]\nname = \"section\"\nlabel = \"API section\"\nallowed = [\"api\"]\n\n\
         [{auth}]\n{table}"
    )
}

fn credentials(value: serde_json::Value) -> Credentials {
    serde_json::from_value(value).unwrap()
}

/// HTTP Basic credentials for the simulated Keyed's `api` section.
fn keyed_basic(username: &str, password: &str) -> Credentials {
    credentials(json!({
        "kind": "basic", "username": username, "password": password,
        "values": {"section": "api"}
    }))
}

/// An API key for the simulated Keyed's `api` section.
fn keyed_api_key(api_key: &str) -> Credentials {
    credentials(json!({"kind": "api_key", "api_key": api_key, "values": {"section": "api"}}))
}

/// The simulated Keyed's client id with `secret`, for its `api` section.
fn keyed_client(secret: &str) -> Credentials {
    credentials(json!({
        "kind": "client_credentials", "client_id": KEYED_CLIENT_ID,
        "client_secret": secret, "values": {"section": "api"}
    }))
}

/// Connects `credentials` and returns the connection once it is synced,
/// with the number of records of that sync.
async fn synced(fleet: &TestFleet, id: &str, credentials: &Credentials) -> (ConnectionId, u64) {
    let (connection, _) = fleet.connect_to(id, SetupOrigin::Manual, credentials).await;
    let statuses = fleet
        .statuses_until(&connection, ConnectionState::Synced)
        .await;
    let ConnectionStatus::Synced { records, .. } = statuses.last().unwrap().status else {
        unreachable!()
    };
    (connection, records)
}

/// Connects `credentials`, which the provider refuses, and returns the
/// reason of the `invalid` status after checking that `secret` is in no
/// status event and not in the connection's row.
async fn refused(fleet: &TestFleet, id: &str, credentials: &Credentials, secret: &str) -> String {
    let (connection, _) = fleet.connect_to(id, SetupOrigin::Manual, credentials).await;
    let statuses = fleet
        .statuses_until(&connection, ConnectionState::Invalid)
        .await;
    for status in &statuses {
        let text = serde_json::to_string(status).unwrap();
        assert!(
            !text.contains(secret),
            "a status event holds the secret: {text}"
        );
    }
    let ConnectionStatus::Invalid { reason } = &statuses.last().unwrap().status else {
        unreachable!()
    };
    let row = fleet.row_in(&connection, ConnectionState::Invalid).await;
    let row_text = format!("{:?} {:?}", row.last_error, row.status);
    assert!(
        !row_text.contains(secret),
        "the row holds the secret: {row_text}"
    );
    assert!(!reason.contains(secret), "{reason}");
    reason.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_in_a_header_validates_and_syncs_and_a_wrong_one_is_refused_unseen() {
    let table = "header = \"X-Api-Key\"\nverify_url = \"{keyed}/{section}/me\"\n";
    let fleet = TestFleet::start_with_catalog("keyed", &entry("api_key", table)).await;
    let values = json!({"section": "api"});

    let good = credentials(json!({"kind": "api_key", "api_key": KEYED_API_KEY, "values": values}));
    let (_, records) = synced(&fleet, "keyed", &good).await;
    assert_eq!(records, 1, "the account is the one record");

    let wrong = "sk-wrong-4b1d9e";
    let bad = credentials(json!({"kind": "api_key", "api_key": wrong, "values": values}));
    let reason = refused(&fleet, "keyed", &bad, wrong).await;
    assert!(
        reason.contains("Keyed refused the API key (HTTP 401)"),
        "{reason}"
    );
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_in_the_query_with_a_version_header_validates_and_syncs() {
    // Keyed's /api/versioned wants the header Keyed-Version besides the key.
    let table = format!(
        "query = \"api_key\"\nverify_url = \"{{keyed}}/{{section}}/versioned\"\n\
         headers = {{ Keyed-Version = \"{KEYED_VERSION}\" }}\n"
    );
    let fleet = TestFleet::start_with_catalog("keyed", &entry("api_key", &table)).await;

    let good = credentials(json!({
        "kind": "api_key", "api_key": KEYED_API_KEY, "values": {"section": "api"}
    }));
    let (_, records) = synced(&fleet, "keyed", &good).await;

    assert_eq!(records, 1);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_credentials_validate_and_sync_and_a_wrong_password_is_refused() {
    // An endpoint that answers 204 without a body: any 2xx validates.
    let table = "verify_url = \"{keyed}/{section}/ping\"\n";
    let fleet = TestFleet::start_with_catalog("keyed", &entry("basic", table)).await;
    let basic = |password: &str| keyed_basic(KEYED_USERNAME, password);

    let (_, records) = synced(&fleet, "keyed", &basic(KEYED_PASSWORD)).await;
    assert_eq!(records, 1);

    let wrong = "not-the-password-77";
    let reason = refused(&fleet, "keyed", &basic(wrong), wrong).await;
    assert!(
        reason.contains("Keyed refused the user name and password (HTTP 401)"),
        "{reason}"
    );
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_fetch_a_token_renew_it_when_rejected_and_a_wrong_secret_is_refused() {
    let table = "token_url = \"{keyed}/oauth/token\"\nverify_url = \"{keyed}/{section}/me\"\n\
                 client_auth = \"client_secret_basic\"\ntoken_body = \"json\"\n";
    let fleet =
        TestFleet::start_with_catalog("keyed", &entry("oauth2_client_credentials", table)).await;

    let (connection, records) = synced(&fleet, "keyed", &keyed_client(KEYED_CLIENT_SECRET)).await;
    assert_eq!(records, 1);
    let stored = fleet.in_use(&connection).await.unwrap();
    let Credentials::ClientCredentials {
        access_token: Some(_),
        expires_at: Some(_),
        ..
    } = stored.value
    else {
        panic!("the sync stored no access token");
    };

    // The provider stops honouring every token it issued: the next sync
    // is refused, fetches a new token with the client credentials, and
    // still ends synced.
    let issued = fleet.sim.keyed_tokens_issued();
    fleet.sim.expire_keyed_tokens();
    fleet.sync_now("keyed", &connection).await;
    fleet
        .statuses_until_nth(&connection, ConnectionState::Synced, 2)
        .await;
    assert_eq!(fleet.sim.keyed_tokens_issued(), issued + 1);

    let wrong = "wrong-client-secret-5e";
    let reason = refused(&fleet, "keyed", &keyed_client(wrong), wrong).await;
    assert!(reason.contains("invalid_client"), "{reason}");
    fleet.stop().await;
}

/// The stored access token of client credentials.
async fn stored_token(fleet: &TestFleet, connection: &ConnectionId) -> String {
    let stored = fleet.in_use(connection).await.unwrap();
    let value = serde_json::to_value(&stored.value).unwrap();
    value["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_credentials_token_about_to_expire_is_fetched_again_before_the_sync() {
    // Keyed's tokens live an hour: with a two-hour margin, every token is
    // about to expire, and every sync fetches a new one first.
    let table = "token_url = \"{keyed}/oauth/token\"\nverify_url = \"{keyed}/{section}/me\"\n\
                 token_expiry_margin_secs = 7200\n";
    let fleet =
        TestFleet::start_with_catalog("keyed", &entry("oauth2_client_credentials", table)).await;
    let (connection, _) = synced(&fleet, "keyed", &keyed_client(KEYED_CLIENT_SECRET)).await;
    let first = stored_token(&fleet, &connection).await;

    fleet.sync_now("keyed", &connection).await;
    fleet
        .statuses_until_nth(&connection, ConnectionState::Synced, 2)
        .await;

    let second = stored_token(&fleet, &connection).await;
    assert_ne!(first, second, "the token was fetched again and stored");
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_without_a_verify_url_are_checked_at_the_token_endpoint() {
    let table = "token_url = \"{keyed}/oauth/token\"\n\
                 client_auth = \"client_secret_basic\"\ntoken_body = \"json\"\n";
    let fleet =
        TestFleet::start_with_catalog("keyed", &entry("oauth2_client_credentials", table)).await;
    let issued = fleet.sim.keyed_tokens_issued();

    let (connection, records) = synced(&fleet, "keyed", &keyed_client(KEYED_CLIENT_SECRET)).await;

    assert_eq!(records, 1);
    let row = fleet.row_in(&connection, ConnectionState::Synced).await;
    assert_eq!(
        row.account.map(|a| a.id).as_deref(),
        Some(KEYED_CLIENT_ID),
        "the account is the client id"
    );
    assert!(
        fleet.sim.keyed_tokens_issued() >= issued + 2,
        "the validation and the sync each asked the token endpoint"
    );
    let wrong = "wrong-client-secret-7a";
    let reason = refused(&fleet, "keyed", &keyed_client(wrong), wrong).await;
    assert!(reason.contains("invalid_client"), "{reason}");
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_setting_reaches_its_header_beside_an_authorization_header_and_the_key() {
    // The version as a secret setting the user gives, which may stand in
    // a header only; with the key in the query, Authorization is free for
    // a fixed value.
    let table = "query = \"api_key\"\nverify_url = \"{keyed}/{section}/versioned\"\n\
                 headers = { Keyed-Version = \"{version}\", Authorization = \"basic\" }\n";
    let file = entry("api_key", table).replace(
        "[api_key]",
        "[[settings]]\nname = \"version\"\nlabel = \"API version\"\nsecret = true\n\n[api_key]",
    );
    let fleet = TestFleet::start_with_catalog("keyed", &file).await;

    let good = credentials(json!({
        "kind": "api_key", "api_key": KEYED_API_KEY,
        "values": {"section": "api", "version": KEYED_VERSION}
    }));
    let (_, records) = synced(&fleet, "keyed", &good).await;
    assert_eq!(records, 1);

    // A version Keyed refuses, in an answer that echoes it: the secret
    // shows in no status, row or reason.
    let secret = "vsecret-1999-01";
    let without = credentials(json!({
        "kind": "api_key", "api_key": KEYED_API_KEY,
        "values": {"section": "api", "version": secret}
    }));
    let reason = refused(&fleet, "keyed", &without, secret).await;
    assert!(reason.contains("version_required"), "{reason}");
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_wanted_in_two_headers_reaches_both() {
    // Keyed's /api/both wants the key in X-Api-Key and as a bearer token.
    let table = "header = \"X-Api-Key\"\nverify_url = \"{keyed}/{section}/both\"\n\
                 headers = { Authorization = \"Bearer {api_key}\" }\n";
    let fleet = TestFleet::start_with_catalog("keyed", &entry("api_key", table)).await;

    let good = credentials(json!({
        "kind": "api_key", "api_key": KEYED_API_KEY, "values": {"section": "api"}
    }));
    let (_, records) = synced(&fleet, "keyed", &good).await;
    assert_eq!(records, 1);

    let wrong = "sk-wrong-77e1";
    let bad = credentials(json!({
        "kind": "api_key", "api_key": wrong, "values": {"section": "api"}
    }));
    refused(&fleet, "keyed", &bad, wrong).await;
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_basic_user_name_built_from_the_field_carries_an_api_token() {
    // Keyed takes its API token as the password of "<user>/token".
    let table = "verify_url = \"{keyed}/{section}/me\"\nusername = \"{username}/token\"\n";
    let fleet = TestFleet::start_with_catalog("keyed", &entry("basic", table)).await;
    let basic = |password: &str| keyed_basic(KEYED_USERNAME, password);

    let (_, records) = synced(&fleet, "keyed", &basic(KEYED_API_TOKEN)).await;
    assert_eq!(records, 1);

    // The account password is no API token.
    let reason = refused(&fleet, "keyed", &basic(KEYED_PASSWORD), KEYED_PASSWORD).await;
    assert!(
        reason.contains("Keyed refused the user name and password (HTTP 401)"),
        "{reason}"
    );
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_name_in_the_verify_path_names_the_account_and_shows_redacted() {
    // Keyed's /api/accounts/{user name}, as Twilio's API names the account
    // SID in its paths.
    let table = "verify_url = \"{keyed}/{section}/accounts/{username}\"\n";
    let fleet = TestFleet::start_with_catalog("keyed", &entry("basic", table)).await;
    let basic = |username: &str| keyed_basic(username, KEYED_PASSWORD);

    let (_, records) = synced(&fleet, "keyed", &basic(KEYED_USERNAME)).await;
    assert_eq!(records, 1);

    // Another account's path: the provider's 404 names the request, with
    // the user name redacted from its address.
    let other = "someone-else-3f";
    let reason = refused(&fleet, "keyed", &basic(other), other).await;
    assert!(reason.contains("404"), "{reason}");
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_in_the_verify_path_validates_and_syncs_and_a_wrong_one_is_refused_unseen() {
    // Keyed's /bot{key}/getMe, as Telegram's bot API takes its token.
    let table = "verify_url = \"{keyed}/bot{api_key}/getMe\"\n";
    let fleet = TestFleet::start_with_catalog("keyed", &entry("api_key", table)).await;

    let (_, records) = synced(&fleet, "keyed", &keyed_api_key(KEYED_API_KEY)).await;
    assert_eq!(records, 1);

    let wrong = "bot-token-wrong-77a1";
    let reason = refused(&fleet, "keyed", &keyed_api_key(wrong), wrong).await;
    assert!(
        reason.contains("Keyed refused the API key (HTTP 401)"),
        "{reason}"
    );
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_that_repeats_a_key_in_the_path_names_no_key() {
    // A gateway that adds a trailing slash: its Location repeats the key.
    let table = "verify_url = \"{keyed}/moved/bot{api_key}/getMe\"\n";
    let fleet = TestFleet::start_with_catalog("keyed", &entry("api_key", table)).await;
    let key = credentials(json!({
        "kind": "api_key", "api_key": KEYED_API_KEY, "values": {"section": "api"}
    }));

    let reason = refused(&fleet, "keyed", &key, KEYED_API_KEY).await;
    assert!(reason.contains("redirect (HTTP 301)"), "{reason}");
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_in_a_json_body_validates_and_syncs_and_a_wrong_one_is_refused_unseen() {
    // Keyed's POST /api/users/ping, as Mandrill takes its key; a refused
    // key comes back in the answer's message.
    let table = "verify_url = \"{keyed}/{section}/users/ping\"\nverify_method = \"POST\"\n\
                 verify_json = { key = \"{api_key}\" }\n";
    let fleet = TestFleet::start_with_catalog("keyed", &entry("api_key", table)).await;

    let (_, records) = synced(&fleet, "keyed", &keyed_api_key(KEYED_API_KEY)).await;
    assert_eq!(records, 1);

    let wrong = "md-wrong-key-5e2c";
    let reason = refused(&fleet, "keyed", &keyed_api_key(wrong), wrong).await;
    assert!(
        reason.contains("Keyed refused the API key (HTTP 401)"),
        "{reason}"
    );
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_credentials_in_a_header_of_their_own_validate_and_a_refused_token_is_unseen() {
    // ConnectSecure's `client-auth-token: base64(user:password)`.
    let table = "verify_url = \"{keyed}/{section}/me\"\nheader = \"client-auth-token\"\n";
    let fleet = TestFleet::start_with_catalog("keyed", &entry("basic", table)).await;
    let basic = |password: &str| keyed_basic(KEYED_USERNAME, password);

    let (_, records) = synced(&fleet, "keyed", &basic(KEYED_PASSWORD)).await;
    assert_eq!(records, 1);

    // Keyed echoes the token it refused: the base64 of the credentials.
    let wrong = "not-the-password-81";
    let token = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{KEYED_USERNAME}:{wrong}"),
    );
    let reason = refused(&fleet, "keyed", &basic(wrong), &token).await;
    assert!(
        reason.contains("Keyed refused the user name and password (HTTP 401)"),
        "{reason}"
    );
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duo_signed_request_validates_and_syncs_and_a_wrong_secret_key_is_refused() {
    // Keyed's Duo-like Admin API: HTTP Basic with the integration key and
    // an HMAC of the request and its Date, never the secret key itself.
    let table = "verify_url = \"{keyed}/admin/v1/info/summary?limit=1&b=x y\"\n\
                 [basic.duo_signature]\ndigest = \"sha1\"\n";
    let fleet = TestFleet::start_with_catalog("keyed", &entry("basic", table)).await;
    let keys = |secret: &str| keyed_basic(KEYED_USERNAME, secret);

    let (_, records) = synced(&fleet, "keyed", &keys(KEYED_PASSWORD)).await;
    assert_eq!(records, 1);

    let wrong = "not-the-secret-key-0c4e";
    let reason = refused(&fleet, "keyed", &keys(wrong), wrong).await;
    assert!(
        reason.contains("Keyed refused the integration key and secret key (HTTP 401)"),
        "{reason}"
    );
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_message_signature_validates_and_another_key_s_signature_is_refused() {
    // Keyed's signed endpoint, as Streamline AI wants: RFC 9421 with
    // ed25519, the user name as the key id, the password the private key.
    let table = "verify_url = \"{keyed}/{section}/signed\"\n\
                 headers = { content-type = \"application/json\" }\n\
                 [basic.http_signature]\nalgorithm = \"ed25519\"\n\
                 components = [\"@method\", \"@target-uri\", \"content-digest\", \"content-type\"]\n\
                 expires_secs = 60\n";
    let fleet = TestFleet::start_with_catalog("keyed", &entry("basic", table)).await;
    let keys = |private_key: &str| keyed_basic(KEYED_USERNAME, private_key);

    let (_, records) = synced(&fleet, "keyed", &keys(KEYED_SIGNING_KEY)).await;
    assert_eq!(records, 1);

    // Another ed25519 key: the provider refuses the signature.
    let other = "-----BEGIN PRIVATE KEY-----\n\
                 MC4CAQAwBQYDK2VwBCIEIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f\n\
                 -----END PRIVATE KEY-----\n";
    let reason = refused(
        &fleet,
        "keyed",
        &keys(other),
        "BAgMEBQYHCAkKCwwNDg8QERITFBUW",
    )
    .await;
    assert!(
        reason.contains("Keyed refused the key id and private key (HTTP 401)"),
        "{reason}"
    );
    fleet.stop().await;
}
