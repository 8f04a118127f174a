use std::{collections::HashSet, time::Duration};

use fleet_connectors::{
    Config, Connector, Credentials, Error, ErrorClass, OAuthClient, Registry, oauth1,
};
use fleet_events::ConnectorId;
use fleet_sim::{
    Config as SimConfig, Fault, Sim, SimHandle, TrelloChange, TrelloConfig, TrelloMemberConfig,
};
use secrecy::ExposeSecret as _;
use std::sync::Arc;
use url::Url;

use crate::helpers::{Synced, config, sync_all, sync_from};

/// The consumer the simulated Trello accepts.
const KEY: &str = "0123456789abcdef0123456789abcdef";
pub(crate) const SECRET: &str = "trello-test-consumer-secret";

/// Starts a simulator whose Trello member `ada` has open boards of 1,203
/// and 7 cards and a closed one of 3.
pub(crate) async fn spawn(trello: TrelloConfig) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let trello = TrelloConfig {
        consumer_key: KEY.to_owned(),
        consumer_secret: SECRET.to_owned(),
        ..trello
    }
    .member(
        TrelloMemberConfig::new("ada")
            .board(1203)
            .closed_board(3)
            .board(7),
    );
    Sim::start(listener, &SimConfig::default().trello(trello)).unwrap()
}

/// A catalog directory pointing Trello at the simulator, with `page_size`
/// cards per request.
pub(crate) fn catalog(sim: &SimHandle, page_size: u32) -> tempfile::TempDir {
    let trello = sim.trello_url();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("trello.toml"),
        format!(
            "page_size = {page_size}\n[api_base_urls]\napi = \"{trello}/1\"\n\
             [oauth1]\nrequest_token_url = \"{trello}/1/OAuthGetRequestToken\"\n\
             authorize_url = \"{trello}/1/OAuthAuthorizeToken\"\n\
             access_token_url = \"{trello}/1/OAuthGetAccessToken\"\n"
        ),
    )
    .unwrap();
    dir
}

/// Settings with the catalog of `dir` and the consumer secret `secret`.
pub(crate) fn trello_config(dir: &tempfile::TempDir, secret: &str) -> Config {
    let client = OAuthClient {
        client_id: Some(KEY.to_owned()),
        client_secret: secret.into(),
    };
    Config {
        catalog_dir: Some(dir.path().to_owned()),
        oauth_clients: [("trello".to_owned(), client)].into(),
        ..config()
    }
}

/// Trello's OAuth 1.0a client and connector from a registry of `config`.
pub(crate) fn trello(config: &Config) -> (oauth1::Client, Arc<dyn Connector>) {
    let registry = Registry::new(config).unwrap();
    let id = ConnectorId::parse("trello").unwrap();
    (registry.oauth1(&id).unwrap(), registry.get(&id).unwrap())
}

/// Where the callback would land; never called.
fn callback() -> Url {
    Url::parse("https://fleet.example.test/oauth/callback?state=s1").unwrap()
}

/// Follows `authorize_url` to the simulator's auto-consent and returns the
/// callback's `oauth_token` and `oauth_verifier`.
async fn approve(authorize_url: &Url) -> (String, String) {
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(authorize_url.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::FOUND);
    let location = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        location.as_str().starts_with(callback().as_str()),
        "{location}"
    );
    let param = |name: &str| {
        location
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
            .unwrap()
    };
    (param("oauth_token"), param("oauth_verifier"))
}

/// Connects `ada`: request token, approval, access token.
pub(crate) async fn connect(client: &oauth1::Client) -> Credentials {
    let request = client.request_token(&callback()).await.unwrap();
    let (token, verifier) = approve(&request.authorize_url).await;
    assert_eq!(token, request.token);
    client
        .access_token(&request.token, &request.secret, &verifier)
        .await
        .unwrap()
}

fn token(credentials: &Credentials) -> String {
    let Credentials::OAuth1 { token, .. } = credentials else {
        panic!("expected OAuth 1.0a credentials, got {credentials:?}");
    };
    token.expose_secret().to_owned()
}

#[tokio::test]
async fn three_legs_connect_a_member_whose_token_never_expires() {
    let sim = spawn(TrelloConfig::default()).await;
    let dir = catalog(&sim, 100);
    let (client, connector) = trello(&trello_config(&dir, SECRET));

    let request = client.request_token(&callback()).await.unwrap();
    let params: Vec<(String, String)> = request.authorize_url.query_pairs().into_owned().collect();
    assert!(
        params.contains(&("expiration".to_owned(), "never".to_owned()))
            && params.contains(&("scope".to_owned(), "read".to_owned()))
            && params.contains(&("name".to_owned(), "connector-fleet".to_owned()))
            && params.contains(&("oauth_token".to_owned(), request.token.clone())),
        "{params:?}"
    );
    let (_, verifier) = approve(&request.authorize_url).await;
    let credentials = client
        .access_token(&request.token, &request.secret, &verifier)
        .await
        .unwrap();

    let granted = sim.trello_token(&token(&credentials)).unwrap();
    assert_eq!(granted.expiration, "never");
    assert_eq!(granted.expires_at, None);
    assert_eq!(granted.scope, "read");
    let account = connector.validate(&credentials).await.unwrap();
    assert_eq!(account.name, "Ada (@ada)");
    assert_eq!(account.id.len(), 24);
}

#[tokio::test]
async fn cards_of_every_open_board_sync_page_by_page() {
    let sim = spawn(TrelloConfig::default()).await;
    let dir = catalog(&sim, 100);
    let (client, connector) = trello(&trello_config(&dir, SECRET));
    let credentials = connect(&client).await;

    let boards = sync_all(&*connector, &credentials, "boards").await;
    let cards = sync_all(&*connector, &credentials, "cards").await;

    assert_eq!((boards.pages, boards.records.len()), (1, 2));
    // 1,203 cards at 100 a page: 12 full pages and a short one; then 7.
    assert_eq!(cards.pages, 14);
    assert_eq!(cards.records.len(), 1210);
    let ids: HashSet<&str> = cards
        .records
        .iter()
        .map(|record| record.external_id.as_str())
        .collect();
    assert_eq!(ids.len(), 1210);
    assert!(
        cards
            .records
            .iter()
            .all(|record| record.external_id.len() == 24 && record.updated_at.is_some())
    );
    let per_board = |board: &str| {
        cards
            .records
            .iter()
            .filter(|record| record.payload["idBoard"] == board)
            .count()
    };
    let board_ids: Vec<&str> = boards
        .records
        .iter()
        .map(|record| record.external_id.as_str())
        .collect();
    assert_eq!(
        board_ids.iter().map(|id| per_board(id)).collect::<Vec<_>>(),
        [1203, 7]
    );
    // One access-token exchange, two board lists, 14 card pages.
    assert_eq!(sim.trello_requests("ada"), 17);
}

#[tokio::test]
async fn a_revoked_token_asks_for_a_reconnect_without_retrying() {
    let sim = spawn(TrelloConfig::default()).await;
    let dir = catalog(&sim, 100);
    let (client, connector) = trello(&trello_config(&dir, SECRET));
    let credentials = connect(&client).await;
    assert!(sim.revoke_trello_token(&token(&credentials)));

    let error = connector.validate(&credentials).await.unwrap_err();

    assert_eq!(error.class(), ErrorClass::ReauthRequired);
    assert!(!error.wants_token_refresh());
    let message = error.to_string();
    assert!(
        message.contains("invalid token") && message.contains("reconnect"),
        "{message}"
    );
    assert!(!message.contains(&token(&credentials)), "{message}");
}

#[tokio::test]
async fn a_429_without_rate_limit_headers_is_retryable_after_ten_seconds() {
    let sim = spawn(TrelloConfig::default()).await;
    let dir = catalog(&sim, 100);
    let (client, connector) = trello(&trello_config(&dir, SECRET));
    let credentials = connect(&client).await;
    let before = sim.trello_requests("ada");
    sim.inject_trello(
        "ada",
        Fault::RateLimited {
            retry_after_secs: 0,
        },
        3,
    );

    let error = connector
        .sync_page(&credentials, "cards", None)
        .await
        .unwrap_err();

    assert_eq!(
        error.class(),
        ErrorClass::Retryable {
            retry_after: Some(Duration::from_secs(10))
        }
    );
    assert!(error.to_string().contains("HTTP 429"), "{error}");
    // Ten seconds is longer than the test's max_retry_wait: handed back at once.
    assert_eq!(sim.trello_requests("ada") - before, 1);
}

#[tokio::test]
async fn an_exhausted_token_limit_is_waited_out_for_its_interval() {
    let sim = spawn(TrelloConfig {
        token_limit: 1,
        limit_window_ms: 1500,
        ..TrelloConfig::default()
    })
    .await;
    let dir = catalog(&sim, 100);
    let (client, connector) = trello(&trello_config(&dir, SECRET));
    let credentials = connect(&client).await;
    connector.validate(&credentials).await.unwrap();

    // The second call in the window gets a 429 saying the token has 0
    // requests left of a 1.5 s window; the connector waits that out.
    let account = connector.validate(&credentials).await.unwrap();

    assert_eq!(account.name, "Ada (@ada)");
    assert_eq!(sim.trello_requests("ada"), 4);
}

#[tokio::test]
async fn a_wrong_consumer_secret_is_refused_as_a_configuration_error() {
    let sim = spawn(TrelloConfig::default()).await;
    let dir = catalog(&sim, 100);
    let (client, _) = trello(&trello_config(&dir, "not-the-consumer-secret"));

    let error = client.request_token(&callback()).await.unwrap_err();

    assert!(
        matches!(error, Error::ConsumerRejected { status: 401, .. }),
        "{error:?}"
    );
    assert_eq!(error.class(), ErrorClass::Permanent);
    let message = error.to_string();
    assert!(message.contains("invalid signature"), "{message}");
    assert!(!message.contains("not-the-consumer-secret"), "{message}");
}

#[tokio::test]
async fn a_wrong_verifier_means_starting_over() {
    let sim = spawn(TrelloConfig::default()).await;
    let dir = catalog(&sim, 100);
    let (client, _) = trello(&trello_config(&dir, SECRET));
    let request = client.request_token(&callback()).await.unwrap();
    approve(&request.authorize_url).await;

    let error = client
        .access_token(&request.token, &request.secret, "not-the-verifier")
        .await
        .unwrap_err();

    assert!(
        matches!(error, Error::RequestTokenRejected { status: 401, .. }),
        "{error:?}"
    );
    assert_eq!(error.class(), ErrorClass::ReauthRequired);
    assert!(!error.to_string().contains("not-the-verifier"), "{error}");
}

#[tokio::test]
async fn without_a_consumer_secret_the_flow_says_it_is_not_configured() {
    let registry = Registry::new(&config()).unwrap();
    let id = ConnectorId::parse("trello").unwrap();
    let client = registry.oauth1(&id).unwrap();

    let error = client.request_token(&callback()).await.unwrap_err();

    assert!(
        matches!(error, Error::ClientNotConfigured { .. }),
        "{error:?}"
    );
    assert_eq!(error.class(), ErrorClass::Permanent);
    assert!(registry.get(&id).is_some());
}

/// A catalog directory pointing Trello at the simulator, with its token
/// revocation at `revoke` (`{token}` stands for the token).
fn catalog_revoking_at(sim: &SimHandle, revoke: &str) -> tempfile::TempDir {
    let dir = catalog(sim, 100);
    let path = dir.path().join("trello.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(path, format!("{text}revoke_url = \"{revoke}\"\n")).unwrap();
    dir
}

/// Every way an error can be printed: its message with its causes, and
/// its `Debug`.
fn printed(error: &Error) -> String {
    let mut text = format!("{error}\n{error:?}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!("\n{cause}\n{cause:?}"));
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn a_failed_revoke_shows_the_token_path_redacted() {
    let sim = spawn(TrelloConfig::default()).await;
    let revoke = format!("{}/1/tokens/{{token}}", sim.trello_url());
    let dir = catalog_revoking_at(&sim, &revoke);
    let (client, _) = trello(&trello_config(&dir, SECRET));
    let credentials = connect(&client).await;
    let token = token(&credentials);
    sim.inject_trello(
        "ada",
        Fault::Unavailable {
            retry_after_secs: None,
        },
        1,
    );

    let error = client.revoke(&credentials).await.unwrap_err();

    let printed = printed(&error);
    assert!(!printed.contains(&token), "{printed}");
    assert!(
        error
            .to_string()
            .contains(&format!("{}/1/tokens/<redacted>", sim.trello_url())),
        "{error}"
    );
    assert!(sim.trello_token(&token).is_some(), "not revoked");
    assert!(
        client.revoke(&credentials).await.unwrap(),
        "revoked on retry"
    );
}

#[tokio::test]
async fn a_revoke_that_cannot_connect_shows_the_token_path_redacted() {
    let sim = spawn(TrelloConfig::default()).await;
    let dir = catalog(&sim, 100);
    let (client, _) = trello(&trello_config(&dir, SECRET));
    let credentials = connect(&client).await;
    let token = token(&credentials);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let dir = catalog_revoking_at(&sim, &format!("http://{address}/1/tokens/{{token}}"));
    let (client, _) = trello(&trello_config(&dir, SECRET));

    let error = client.revoke(&credentials).await.unwrap_err();

    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    let printed = printed(&error);
    assert!(!printed.contains(&token), "{printed}");
    assert!(
        error
            .to_string()
            .contains(&format!("http://{address}/1/tokens/<redacted>")),
        "{error}"
    );
}

#[tokio::test]
async fn a_revoke_answered_404_is_not_a_success() {
    let sim = spawn(TrelloConfig::default()).await;
    let dir = catalog(&sim, 100);
    let (client, _) = trello(&trello_config(&dir, SECRET));
    let credentials = connect(&client).await;
    let token = token(&credentials);
    // A revocation URL Trello does not know answers 404.
    let revoke = format!("{}/1/no-such-route/{{token}}", sim.trello_url());
    let dir = catalog_revoking_at(&sim, &revoke);
    let (client, _) = trello(&trello_config(&dir, SECRET));

    let error = client.revoke(&credentials).await.unwrap_err();

    assert!(
        matches!(error, Error::Rejected { status: 404, .. }),
        "{error:?}"
    );
    let printed = printed(&error);
    assert!(!printed.contains(&token), "{printed}");
    assert!(error.to_string().contains("HTTP 404"), "{error}");
    assert!(sim.trello_token(&token).is_some(), "the token still works");
}

/// Ada with boards of `cards` cards each, and her credentials.
async fn ada_with(
    sim: &SimHandle,
    cards: &[u32],
) -> (Arc<dyn Connector>, Credentials, tempfile::TempDir) {
    let member = cards
        .iter()
        .fold(TrelloMemberConfig::new("ada"), |member, cards| {
            member.board(*cards)
        });
    sim.set_trello_member(&member);
    let dir = catalog(sim, 100);
    let (client, connector) = trello(&trello_config(&dir, SECRET));
    let credentials = connect(&client).await;
    (connector, credentials, dir)
}

/// The ids of `synced`'s records, sorted.
fn card_ids(synced: &Synced) -> Vec<String> {
    let mut ids: Vec<String> = synced
        .records
        .iter()
        .map(|r| r.external_id.clone())
        .collect();
    ids.sort();
    ids
}

/// The ids of the open cards `sim` has for ada, sorted.
fn open_cards(sim: &SimHandle) -> Vec<String> {
    sim.trello_cards("ada")
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

#[tokio::test]
async fn an_incremental_pass_reads_only_the_cards_its_boards_activity_names() {
    let sim = spawn(TrelloConfig::default()).await;
    let (connector, credentials, _dir) = ada_with(&sim, &[1203, 7]).await;
    let boards: Vec<String> = sim
        .trello_boards("ada")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let full = sync_all(&*connector, &credentials, "cards").await;
    let since = chrono::Utc::now();
    let small: Vec<String> = full
        .records
        .iter()
        .filter(|r| r.payload["idBoard"] == boards[1].as_str())
        .map(|r| r.external_id.clone())
        .collect();
    sim.change_trello(
        "ada",
        &TrelloChange::EditCard {
            card: small[0].clone(),
        },
    );
    let created = sim.change_trello(
        "ada",
        &TrelloChange::CreateCards {
            board: boards[1].clone(),
            count: 2,
        },
    );
    let start = connector.incremental_start("cards", since);
    let before = sim.trello_requests("ada");

    let synced = sync_from(&*connector, &credentials, "cards", start).await;

    let mut want = vec![small[0].clone()];
    want.extend(created);
    want.sort();
    assert_eq!(card_ids(&synced), want);
    // Nothing left the stream: no total to compare.
    assert_eq!(synced.totals.last(), Some(&None));
    assert!(synced.gaps.is_empty());
    // The boards, the busy board's actions, its three cards; the board of
    // 1,203 cards had no activity and is not asked for.
    assert_eq!(sim.trello_requests("ada") - before, 5);
    let edited = synced
        .records
        .iter()
        .find(|r| r.external_id == small[0])
        .unwrap();
    let (_, last_activity) = sim
        .trello_cards("ada")
        .into_iter()
        .find(|(id, _)| *id == small[0])
        .unwrap();
    assert_eq!(edited.updated_at, Some(last_activity));
}

#[tokio::test]
async fn an_incremental_pass_that_sees_cards_leave_ends_with_the_streams_count() {
    let sim = spawn(TrelloConfig::default()).await;
    let (connector, credentials, _dir) = ada_with(&sim, &[30, 5, 4]).await;
    let boards: Vec<String> = sim
        .trello_boards("ada")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let full = sync_all(&*connector, &credentials, "cards").await;
    assert_eq!(full.totals.last(), Some(&None));
    let since = chrono::Utc::now();
    let cards = open_cards(&sim);
    sim.change_trello(
        "ada",
        &TrelloChange::DeleteCard {
            card: cards[0].clone(),
        },
    );
    sim.change_trello(
        "ada",
        &TrelloChange::ArchiveCard {
            card: cards[1].clone(),
        },
    );
    sim.change_trello(
        "ada",
        &TrelloChange::MoveCard {
            card: cards[2].clone(),
            board: boards[2].clone(),
        },
    );
    sim.change_trello(
        "ada",
        &TrelloChange::CloseBoard {
            board: boards[1].clone(),
        },
    );
    let start = connector.incremental_start("cards", since);

    let synced = sync_from(&*connector, &credentials, "cards", start).await;

    // The moved card is read on its new board; what left is counted out.
    assert_eq!(card_ids(&synced), [cards[2].clone()]);
    let remaining = open_cards(&sim).len() as u64;
    assert_eq!(remaining, 35 - 2 - 1);
    assert_eq!(synced.totals.last(), Some(&Some(remaining)));
    assert!(synced.gaps.is_empty());
}

#[tokio::test]
async fn cards_deleted_or_archived_on_an_active_board_are_reported_by_id_without_a_count() {
    let sim = spawn(TrelloConfig::default()).await;
    let (connector, credentials, _dir) = ada_with(&sim, &[30, 5]).await;
    sync_all(&*connector, &credentials, "cards").await;
    let since = chrono::Utc::now();
    let cards = open_cards(&sim);
    sim.change_trello(
        "ada",
        &TrelloChange::DeleteCard {
            card: cards[0].clone(),
        },
    );
    sim.change_trello(
        "ada",
        &TrelloChange::ArchiveCard {
            card: cards[1].clone(),
        },
    );
    let start = connector.incremental_start("cards", since);
    let before = sim.trello_requests("ada");

    let synced = sync_from(&*connector, &credentials, "cards", start).await;

    let mut removed = synced.removed.clone();
    removed.sort();
    let mut want = vec![cards[0].clone(), cards[1].clone()];
    want.sort();
    assert_eq!(removed, want);
    assert!(synced.records.is_empty());
    // Known by id: no count of the stream, so no total and no full pass.
    assert_eq!(synced.totals.last(), Some(&None));
    // The boards, each active board's actions, the archived card.
    assert!(sim.trello_requests("ada") - before <= 5);
}

#[tokio::test]
async fn a_board_deleted_during_a_sync_is_skipped_with_a_gap_that_names_it() {
    let sim = spawn(TrelloConfig::default()).await;
    let (connector, credentials, _dir) = ada_with(&sim, &[3, 4, 5]).await;
    let boards: Vec<String> = sim
        .trello_boards("ada")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    // After the boards are listed and the first one read.
    sim.change_trello_on_request(
        "ada",
        3,
        TrelloChange::DeleteBoard {
            board: boards[1].clone(),
        },
    );

    let synced = sync_all(&*connector, &credentials, "cards").await;

    assert_eq!(card_ids(&synced), open_cards(&sim));
    assert_eq!(synced.records.len(), 8);
    let [gap] = synced.gaps.as_slice() else {
        panic!("expected one gap, got {:?}", synced.gaps);
    };
    assert!(
        gap.contains("board \"Board 2\" (deleted during the sync)"),
        "{gap}"
    );
}

#[tokio::test]
async fn a_board_closed_to_the_member_is_skipped_but_a_refused_token_asks_for_a_reconnect() {
    let sim = spawn(TrelloConfig::default()).await;
    let (connector, credentials, _dir) = ada_with(&sim, &[3, 4]).await;
    let boards: Vec<String> = sim
        .trello_boards("ada")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    sim.change_trello_on_request(
        "ada",
        2,
        TrelloChange::LeaveBoard {
            board: boards[0].clone(),
        },
    );

    let synced = sync_all(&*connector, &credentials, "cards").await;

    assert_eq!(synced.records.len(), 4);
    let [gap] = synced.gaps.as_slice() else {
        panic!("expected one gap, got {:?}", synced.gaps);
    };
    assert!(
        gap.contains("board \"Board 1\" (access refused: unauthorized permission requested)"),
        "{gap}"
    );

    // A token Trello no longer knows is the whole connection's problem,
    // on a board's request as anywhere.
    assert!(sim.revoke_trello_token(&token(&credentials)));
    let cursor = serde_json::json!({"boards": [boards[1]], "board": 0, "listed": true});
    let error = connector
        .sync_page(&credentials, "cards", Some(&cursor))
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::ReauthRequired);
    assert!(error.to_string().contains("invalid token"), "{error}");
}
