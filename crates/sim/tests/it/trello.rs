//! The simulated Trello's contracts: OAuth 1.0a signatures are checked,
//! token answers are form-encoded, lists are bare arrays paged with
//! `limit`/`before`, and refusals are plain text (401) or JSON (429).

use std::collections::HashMap;

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use chrono::{TimeDelta, Utc};
use fleet_sim::{Config, Fault, Sim, SimHandle, TrelloConfig, TrelloMemberConfig};
use hmac::{Hmac, Mac as _};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use sha1::Sha1;
use url::Url;

use crate::helpers::client;

const KEY: &str = "0123456789abcdef0123456789abcdef";
const SECRET: &str = "trello-test-consumer-secret";
const CALLBACK: &str = "https://fleet.test/oauth/callback?state=s1";

const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

async fn spawn(trello: TrelloConfig) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let trello = TrelloConfig {
        consumer_key: KEY.to_owned(),
        consumer_secret: SECRET.to_owned(),
        ..trello
    }
    .member(TrelloMemberConfig::new("ada").board(5).closed_board(2));
    Sim::start(listener, &Config::default().trello(trello)).unwrap()
}

fn enc(value: &str) -> String {
    utf8_percent_encode(value, UNRESERVED).to_string()
}

/// One signed request's protocol values.
struct Signing<'a> {
    consumer_secret: &'a str,
    token: Option<(&'a str, &'a str)>,
    nonce: String,
    timestamp: i64,
    extra: Vec<(&'a str, &'a str)>,
}

impl<'a> Signing<'a> {
    fn new(token: Option<(&'a str, &'a str)>) -> Self {
        Self {
            consumer_secret: SECRET,
            token,
            nonce: format!("n{}", rand_suffix()),
            timestamp: Utc::now().timestamp(),
            extra: Vec::new(),
        }
    }

    /// The `Authorization` header of `method url`, signed with HMAC-SHA1.
    fn header(&self, method: &str, url: &Url) -> String {
        let timestamp = self.timestamp.to_string();
        let mut oauth = vec![
            ("oauth_consumer_key", KEY),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", timestamp.as_str()),
            ("oauth_nonce", self.nonce.as_str()),
            ("oauth_version", "1.0"),
        ];
        oauth.extend(self.token.map(|(token, _)| ("oauth_token", token)));
        oauth.extend(self.extra.iter().copied());
        let mut pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| (enc(&name), enc(&value)))
            .chain(oauth.iter().map(|(name, value)| (enc(name), enc(value))))
            .collect();
        pairs.sort();
        let normalized: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let uri = format!(
            "{}://{}:{}{}",
            url.scheme(),
            url.host_str().unwrap(),
            url.port().unwrap(),
            url.path()
        );
        let base = format!("{method}&{}&{}", enc(&uri), enc(&normalized.join("&")));
        let key = format!(
            "{}&{}",
            enc(self.consumer_secret),
            enc(self.token.map_or("", |(_, secret)| secret))
        );
        let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(base.as_bytes());
        let signature = BASE64.encode(mac.finalize().into_bytes());
        let fields: Vec<String> = oauth
            .iter()
            .chain([("oauth_signature", signature.as_str())].iter())
            .map(|(name, value)| format!("{name}=\"{}\"", enc(value)))
            .collect();
        format!("OAuth realm=\"\", {}", fields.join(", "))
    }
}

/// A nonce suffix that differs between calls.
fn rand_suffix() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    u128::from(NEXT.fetch_add(1, Ordering::Relaxed)) << 64
        | u128::from(Utc::now().timestamp_subsec_nanos())
}

async fn send(method: &str, url: &Url, signing: &Signing<'_>) -> Response {
    let request = match method {
        "POST" => client().post(url.clone()),
        _ => client().get(url.clone()),
    };
    request
        .header("authorization", signing.header(method, url))
        .send()
        .await
        .unwrap()
}

fn url(sim: &SimHandle, path: &str) -> Url {
    Url::parse(&format!("{}{path}", sim.trello_url())).unwrap()
}

async fn form(response: Response) -> HashMap<String, String> {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/x-www-form-urlencoded"
    );
    let body = response.text().await.unwrap();
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

async fn plain_401(response: Response) -> String {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    response.text().await.unwrap()
}

/// The three legs; `authorize` is the query the authorize URL adds.
/// Returns the access token and its secret.
async fn connect(sim: &SimHandle, authorize: &str) -> (String, String) {
    let mut signing = Signing::new(None);
    signing.extra.push(("oauth_callback", CALLBACK));
    let request = form(send("POST", &url(sim, "/1/OAuthGetRequestToken"), &signing).await).await;
    assert_eq!(request["oauth_callback_confirmed"], "true");
    let token = &request["oauth_token"];

    let approved = client()
        .get(format!(
            "{}/1/OAuthAuthorizeToken?oauth_token={token}{authorize}",
            sim.trello_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), StatusCode::FOUND);
    let location = Url::parse(approved.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(CALLBACK), "{location}");
    let callback: HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(&callback["oauth_token"], token);

    let mut signing = Signing::new(Some((token, &request["oauth_token_secret"])));
    signing
        .extra
        .push(("oauth_verifier", &callback["oauth_verifier"]));
    let access = form(send("POST", &url(sim, "/1/OAuthGetAccessToken"), &signing).await).await;
    (
        access["oauth_token"].clone(),
        access["oauth_token_secret"].clone(),
    )
}

#[tokio::test]
async fn three_legs_give_a_token_that_lives_30_days_unless_never_was_asked() {
    let sim = spawn(TrelloConfig::default()).await;

    let (default, _) = connect(&sim, "").await;
    let (never, _) = connect(&sim, "&expiration=never&scope=read,account&name=fleet").await;

    let default = sim.trello_token(&default).unwrap();
    assert_eq!(
        (default.expiration.as_str(), default.scope.as_str()),
        ("30days", "read")
    );
    let lifetime = default.expires_at.unwrap() - Utc::now();
    assert!(
        lifetime > TimeDelta::days(30) - TimeDelta::minutes(1) && lifetime <= TimeDelta::days(30),
        "{lifetime}"
    );
    let never = sim.trello_token(&never).unwrap();
    assert_eq!(never.expiration, "never");
    assert_eq!(never.expires_at, None);
    assert_eq!(never.member, "ada");
}

/// The signing of an access-token request.
fn exchange<'a>(token: &'a str, secret: &'a str, verifier: &'a str) -> Signing<'a> {
    let mut signing = Signing::new(Some((token, secret)));
    signing.extra.push(("oauth_verifier", verifier));
    signing
}

#[tokio::test]
async fn a_request_token_is_exchanged_once_and_only_with_its_verifier() {
    let sim = spawn(TrelloConfig::default()).await;
    let mut signing = Signing::new(None);
    signing.extra.push(("oauth_callback", CALLBACK));
    let request = form(send("POST", &url(&sim, "/1/OAuthGetRequestToken"), &signing).await).await;
    let (token, secret) = (&request["oauth_token"], &request["oauth_token_secret"]);
    let approved = client()
        .get(format!(
            "{}/1/OAuthAuthorizeToken?oauth_token={token}",
            sim.trello_url()
        ))
        .send()
        .await
        .unwrap();
    let location = Url::parse(approved.headers()["location"].to_str().unwrap()).unwrap();
    let verifier = location
        .query_pairs()
        .find(|(name, _)| name == "oauth_verifier")
        .unwrap()
        .1
        .into_owned();

    let wrong = send(
        "POST",
        &url(&sim, "/1/OAuthGetAccessToken"),
        &exchange(token, secret, "nope"),
    )
    .await;
    assert_eq!(plain_401(wrong).await, "invalid verifier");
    let first = send(
        "POST",
        &url(&sim, "/1/OAuthGetAccessToken"),
        &exchange(token, secret, &verifier),
    )
    .await;
    assert!(form(first).await.contains_key("oauth_token"));
    let again = send(
        "POST",
        &url(&sim, "/1/OAuthGetAccessToken"),
        &exchange(token, secret, &verifier),
    )
    .await;
    assert_eq!(plain_401(again).await, "invalid token");
}

#[tokio::test]
async fn bad_signatures_unknown_keys_reused_nonces_and_stale_timestamps_are_refused() {
    let sim = spawn(TrelloConfig::default()).await;
    let (token, secret) = connect(&sim, "&expiration=never").await;
    let me = url(&sim, "/1/members/me");

    let mut wrong_secret = Signing::new(Some((&token, &secret)));
    wrong_secret.consumer_secret = "not-the-secret";
    assert_eq!(
        plain_401(send("GET", &me, &wrong_secret).await).await,
        "invalid signature"
    );
    let wrong_token_secret = Signing::new(Some((&token, "not-the-token-secret")));
    assert_eq!(
        plain_401(send("GET", &me, &wrong_token_secret).await).await,
        "invalid signature"
    );
    let unsigned = client().get(me.clone()).send().await.unwrap();
    assert_eq!(plain_401(unsigned).await, "invalid key");
    let mut stale = Signing::new(Some((&token, &secret)));
    stale.timestamp -= 3600;
    assert_eq!(
        plain_401(send("GET", &me, &stale).await).await,
        "invalid timestamp"
    );

    let once = Signing::new(Some((&token, &secret)));
    assert_eq!(send("GET", &me, &once).await.status(), StatusCode::OK);
    assert_eq!(
        plain_401(send("GET", &me, &once).await).await,
        "invalid nonce"
    );
    // Refused requests were not counted for the member.
    assert_eq!(sim.trello_requests("ada"), 2);
}

#[tokio::test]
async fn the_signature_covers_the_query() {
    let sim = spawn(TrelloConfig::default()).await;
    let (token, secret) = connect(&sim, "").await;
    let signing = Signing::new(Some((&token, &secret)));
    let signed_for = url(&sim, "/1/members/me/boards?filter=open");

    let response = client()
        .get(url(&sim, "/1/members/me/boards?filter=all"))
        .header("authorization", signing.header("GET", &signed_for))
        .send()
        .await
        .unwrap();

    assert_eq!(plain_401(response).await, "invalid signature");
}

async fn get(sim: &SimHandle, path: &str, token: &str, secret: &str) -> Response {
    send("GET", &url(sim, path), &Signing::new(Some((token, secret)))).await
}

#[tokio::test]
async fn boards_are_a_bare_array_with_lower_case_rate_limit_headers() {
    let sim = spawn(TrelloConfig::default()).await;
    let (token, secret) = connect(&sim, "").await;

    let all = get(&sim, "/1/members/me/boards", &token, &secret).await;
    assert_eq!(all.status(), StatusCode::OK);
    assert_eq!(all.headers()["x-rate-limit-api-token-max"], "100");
    assert_eq!(all.headers()["x-rate-limit-api-token-remaining"], "99");
    assert_eq!(all.headers()["x-rate-limit-api-key-interval-ms"], "10000");
    assert!(all.headers().get("retry-after").is_none());
    let all: Value = all.json().await.unwrap();
    assert_eq!(all.as_array().unwrap().len(), 2);
    let open: Value = get(&sim, "/1/members/me/boards?filter=open", &token, &secret)
        .await
        .json()
        .await
        .unwrap();
    let open = open.as_array().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["closed"], false);
    let id = open[0]["id"].as_str().unwrap();
    assert!(
        id.len() == 24 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    assert!(
        open[0]["dateLastActivity"]
            .as_str()
            .unwrap()
            .ends_with(".000Z")
    );
}

#[tokio::test]
async fn cards_page_newest_first_with_before_and_end_on_a_short_page() {
    let sim = spawn(TrelloConfig::default()).await;
    let (token, secret) = connect(&sim, "").await;
    let boards: Value = get(&sim, "/1/members/me/boards?filter=open", &token, &secret)
        .await
        .json()
        .await
        .unwrap();
    let board = boards[0]["id"].as_str().unwrap().to_owned();

    let mut pages = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let path = match &before {
            Some(before) => format!("/1/boards/{board}/cards?limit=2&before={before}"),
            None => format!("/1/boards/{board}/cards?limit=2"),
        };
        let page: Vec<Value> = get(&sim, &path, &token, &secret)
            .await
            .json()
            .await
            .unwrap();
        let ids: Vec<String> = page
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        pages.push(ids.clone());
        if ids.len() < 2 {
            break;
        }
        before = ids.last().cloned();
    }

    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    let ids: Vec<&String> = pages.iter().flatten().collect();
    assert!(ids.windows(2).all(|pair| pair[0] > pair[1]), "{ids:?}");
    let too_many = get(
        &sim,
        &format!("/1/boards/{board}/cards?limit=1001"),
        &token,
        &secret,
    )
    .await;
    assert_eq!(too_many.status(), StatusCode::BAD_REQUEST);
    let bad_id = get(&sim, "/1/boards/nope/cards", &token, &secret).await;
    assert_eq!(bad_id.text().await.unwrap(), "invalid id");
}

#[tokio::test]
async fn faults_and_limits_answer_as_trello_does() {
    let sim = spawn(TrelloConfig {
        token_limit: 2,
        ..TrelloConfig::default()
    })
    .await;
    let (token, secret) = connect(&sim, "").await;

    sim.inject_trello(
        "ada",
        Fault::RateLimited {
            retry_after_secs: 5,
        },
        1,
    );
    let injected = get(&sim, "/1/members/me", &token, &secret).await;
    assert_eq!(injected.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(injected.headers().get("retry-after").is_none());
    let body: Value = injected.json().await.unwrap();
    assert_eq!(body["error"], "API_TOKEN_LIMIT_EXCEEDED");

    sim.inject_trello("ada", Fault::ExpiredAccessToken, 1);
    assert_eq!(
        plain_401(get(&sim, "/1/members/me", &token, &secret).await).await,
        "invalid token"
    );

    for _ in 0..2 {
        let ok = get(&sim, "/1/members/me", &token, &secret).await;
        assert_eq!(ok.status(), StatusCode::OK);
    }
    let limited = get(&sim, "/1/members/me", &token, &secret).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["x-rate-limit-api-token-remaining"], "0");
    assert_eq!(
        limited.headers()["x-rate-limit-api-token-interval-ms"],
        "10000"
    );

    assert!(sim.revoke_trello_token(&token));
    assert_eq!(
        plain_401(get(&sim, "/1/members/me", &token, &secret).await).await,
        "invalid token"
    );
}

#[tokio::test]
async fn the_consent_page_has_an_allow_button_and_a_denial_brings_no_verifier() {
    let sim = spawn(TrelloConfig {
        consent_page: true,
        ..TrelloConfig::default()
    })
    .await;
    let mut signing = Signing::new(None);
    signing.extra.push(("oauth_callback", CALLBACK));
    let request = form(send("POST", &url(&sim, "/1/OAuthGetRequestToken"), &signing).await).await;
    let authorize = format!(
        "{}/1/OAuthAuthorizeToken?oauth_token={}&scope=read&name=connector-fleet",
        sim.trello_url(),
        request["oauth_token"]
    );

    let page = client().get(&authorize).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("id=\"allow\"") && html.contains("connector-fleet"),
        "{html}"
    );

    let denied = client()
        .get(format!("{authorize}&consent=denied"))
        .send()
        .await
        .unwrap();
    let location = denied.headers()["location"].to_str().unwrap().to_owned();
    assert!(!location.contains("oauth_verifier"), "{location}");
    let allowed = client()
        .get(format!("{authorize}&consent=granted"))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::FOUND);
    let location = allowed.headers()["location"].to_str().unwrap();
    assert!(location.contains("oauth_verifier="), "{location}");
}

#[tokio::test]
async fn other_processes_inject_faults_for_one_member_over_http() {
    let sim = spawn(TrelloConfig::default()).await;
    let (token, secret) = connect(&sim, "").await;
    let inject = |member: &str| {
        reqwest::Client::new()
            .post(format!("{}/_sim/faults", sim.base_url()))
            .json(&serde_json::json!({"trello_member": member, "fault": {"kind": "expired_access_token"}}))
            .send()
    };

    assert_eq!(
        inject("bob").await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let untouched = get(&sim, "/1/members/me", &token, &secret).await;
    assert_eq!(
        untouched.status(),
        StatusCode::OK,
        "bob's fault is not ada's"
    );

    assert_eq!(
        inject("ada").await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        plain_401(get(&sim, "/1/members/me", &token, &secret).await).await,
        "invalid token"
    );
}

/// GETs `path` and decodes its JSON body.
async fn json(sim: &SimHandle, path: &str, token: &str, secret: &str) -> Value {
    let response = get(sim, path, token, secret).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

/// The `id`s of a bare array.
fn ids_of(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn changes_leave_actions_on_their_boards_and_move_last_activity() {
    let sim = spawn(TrelloConfig::default()).await;
    sim.set_trello_member(&TrelloMemberConfig::new("ada").board(5).board(1));
    let (token, secret) = connect(&sim, "").await;
    let boards: Vec<String> = sim
        .trello_boards("ada")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let (a, b) = (boards[0].clone(), boards[1].clone());
    let on_a: Vec<String> =
        ids_of(&json(&sim, &format!("/1/boards/{a}/cards"), &token, &secret).await);
    let since = (Utc::now() - TimeDelta::seconds(1)).to_rfc3339();
    use fleet_sim::TrelloChange::*;

    let created = sim.change_trello(
        "ada",
        &CreateCards {
            board: a.clone(),
            count: 2,
        },
    );
    sim.change_trello(
        "ada",
        &EditCard {
            card: on_a[0].clone(),
        },
    );
    sim.change_trello(
        "ada",
        &ArchiveCard {
            card: on_a[1].clone(),
        },
    );
    sim.change_trello(
        "ada",
        &DeleteCard {
            card: on_a[2].clone(),
        },
    );
    sim.change_trello(
        "ada",
        &MoveCard {
            card: on_a[3].clone(),
            board: b.clone(),
        },
    );

    let actions = json(
        &sim,
        &format!(
            "/1/boards/{a}/actions?since={}",
            url::form_urlencoded::byte_serialize(since.as_bytes()).collect::<String>()
        ),
        &token,
        &secret,
    )
    .await;
    let kinds: Vec<&str> = actions
        .as_array()
        .unwrap()
        .iter()
        .map(|action| action["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "moveCardFromBoard",
            "deleteCard",
            "updateCard",
            "updateCard",
            "createCard",
            "createCard"
        ]
    );
    assert_eq!(actions[2]["data"]["old"]["closed"], false);
    assert_eq!(actions[1]["data"]["card"]["id"], on_a[2].as_str());
    // Newest first, and `since` an action id works as well as a date.
    let newest = actions[0]["id"].as_str().unwrap();
    let older = json(
        &sim,
        &format!("/1/boards/{a}/actions?before={newest}&limit=2"),
        &token,
        &secret,
    )
    .await;
    assert_eq!(ids_of(&older), ids_of(&actions)[1..3]);
    let on_b = json(
        &sim,
        &format!("/1/boards/{b}/actions?filter=moveCardToBoard"),
        &token,
        &secret,
    )
    .await;
    assert_eq!(on_b[0]["data"]["card"]["id"], on_a[3].as_str());

    // The board's open cards: no archived, deleted or moved card.
    let mut open = ids_of(&json(&sim, &format!("/1/boards/{a}/cards"), &token, &secret).await);
    open.sort();
    let mut want = vec![on_a[0].clone(), on_a[4].clone()];
    want.extend(created);
    want.sort();
    assert_eq!(open, want);
    let archived = json(&sim, &format!("/1/cards/{}", on_a[1]), &token, &secret).await;
    assert_eq!(archived["closed"], true);
    let moved = json(&sim, &format!("/1/cards/{}", on_a[3]), &token, &secret).await;
    assert_eq!(moved["idBoard"], b.as_str());
    let deleted = get(&sim, &format!("/1/cards/{}", on_a[2]), &token, &secret).await;
    assert_eq!(deleted.status(), StatusCode::NOT_FOUND);
    let only_ids = json(
        &sim,
        &format!("/1/boards/{a}/cards?fields=id"),
        &token,
        &secret,
    )
    .await;
    assert_eq!(only_ids[0].as_object().unwrap().len(), 1);
    let board = &sim.trello_boards("ada")[0];
    assert!(Utc::now() - board.1 < TimeDelta::seconds(5), "{board:?}");
}

#[tokio::test]
async fn a_board_left_is_a_401_and_a_deleted_one_a_404() {
    let sim = spawn(TrelloConfig::default()).await;
    sim.set_trello_member(&TrelloMemberConfig::new("ada").board(1).board(1));
    let (token, secret) = connect(&sim, "").await;
    let boards: Vec<String> = sim
        .trello_boards("ada")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let card = ids_of(
        &json(
            &sim,
            &format!("/1/boards/{}/cards", boards[0]),
            &token,
            &secret,
        )
        .await,
    )
    .remove(0);
    use fleet_sim::TrelloChange::*;

    sim.change_trello(
        "ada",
        &LeaveBoard {
            board: boards[0].clone(),
        },
    );
    sim.change_trello(
        "ada",
        &DeleteBoard {
            board: boards[1].clone(),
        },
    );

    for path in [
        format!("/1/boards/{}/cards", boards[0]),
        format!("/1/boards/{}/actions", boards[0]),
        format!("/1/cards/{card}"),
    ] {
        let left = get(&sim, &path, &token, &secret).await;
        assert_eq!(
            plain_401(left).await,
            "unauthorized permission requested",
            "{path}"
        );
    }
    let deleted = get(
        &sim,
        &format!("/1/boards/{}/cards", boards[1]),
        &token,
        &secret,
    )
    .await;
    assert_eq!(deleted.status(), StatusCode::NOT_FOUND);
    assert!(sim.trello_boards("ada").is_empty());
    let listed = json(&sim, "/1/members/me/boards", &token, &secret).await;
    assert_eq!(listed, Value::Array(Vec::new()));
}
