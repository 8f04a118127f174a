use std::collections::HashMap;

use fleet_sim::{Config, Fault, MetaConfig, MetaUserConfig, Sim, SimHandle};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::client;

const APP_ID: &str = "100000000000001";
const APP_SECRET: &str = "sim-meta-app-secret";
const REDIRECT_URI: &str = "https://fleet.test/oauth/callback";

/// A simulator whose Meta user `ada` has three ad accounts, the last idle.
async fn spawn() -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let meta = MetaConfig::default().user(MetaUserConfig::new("ada", 3).idle(1));
    Sim::start(listener, &Config::default().meta(meta)).unwrap()
}

fn graph(sim: &SimHandle, path: &str) -> String {
    format!("{}/v22.0/{path}", sim.meta_url())
}

fn dialog_url(sim: &SimHandle, extra: &str) -> String {
    format!(
        "{}/v22.0/dialog/oauth?client_id={APP_ID}&redirect_uri={REDIRECT_URI}&state=s1\
         &scope=ads_read,read_insights{extra}",
        sim.meta_url()
    )
}

/// Logs in, returning the redirect's `Location`.
async fn login(sim: &SimHandle, extra: &str) -> String {
    let response = client().get(dialog_url(sim, extra)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    response.headers()["location"].to_str().unwrap().to_owned()
}

async fn code(sim: &SimHandle) -> String {
    let location = url::Url::parse(&login(sim, "").await).unwrap();
    let query: HashMap<_, _> = location.query_pairs().into_owned().collect();
    query["code"].clone()
}

/// GETs the token endpoint with `params` and the app's credentials.
async fn token(sim: &SimHandle, params: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut params = params.to_vec();
    params.extend([("client_id", APP_ID), ("client_secret", APP_SECRET)]);
    let response = client()
        .get(graph(sim, "oauth/access_token"))
        .query(&params)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn short_lived_token(sim: &SimHandle) -> String {
    let code = code(sim).await;
    let (status, body) = token(sim, &[("code", &code), ("redirect_uri", REDIRECT_URI)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn get(url: &str, token: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = client().get(url).bearer_auth(token).send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap())
}

#[tokio::test]
async fn login_redirects_with_code_state_and_the_fragment_and_a_denial_says_permissions_error() {
    let sim = spawn().await;

    let granted = login(&sim, "").await;
    let denied = login(&sim, "&consent=denied").await;
    let page = client()
        .get(dialog_url(&sim, "&consent=page"))
        .send()
        .await
        .unwrap();

    assert!(
        granted.starts_with(&format!("{REDIRECT_URI}?code=")),
        "{granted}"
    );
    assert!(granted.ends_with("&state=s1#_=_"), "{granted}");
    assert_eq!(
        denied,
        format!(
            "{REDIRECT_URI}?error_reason=user_denied&error=access_denied\
             &error_description=Permissions+error.&state=s1#_=_"
        )
    );
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"allow\""), "{html}");
    assert!(html.contains("value=\"ads_read,read_insights\""), "{html}");
}

#[tokio::test]
async fn a_code_gives_a_short_lived_token_that_exchanges_for_a_long_lived_one() {
    let sim = spawn().await;
    let code = code(&sim).await;

    let posted = client()
        .post(graph(&sim, "oauth/access_token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", APP_ID),
            ("client_secret", APP_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::BAD_REQUEST);
    let refused: Value = posted.json().await.unwrap();
    assert_eq!(refused["error"]["code"], 100, "{refused}");
    assert_eq!(refused["error"]["type"], "GraphMethodException");
    let (status, short) = token(&sim, &[("code", &code), ("redirect_uri", REDIRECT_URI)]).await;
    assert_eq!(status, StatusCode::OK, "{short}");
    assert_eq!(short["token_type"], "bearer");
    assert!(short.get("refresh_token").is_none(), "{short}");
    assert!(short["expires_in"].as_i64().unwrap() <= 7_200, "{short}");
    let (status, long) = token(
        &sim,
        &[
            ("grant_type", "fb_exchange_token"),
            ("fb_exchange_token", short["access_token"].as_str().unwrap()),
        ],
    )
    .await;

    assert_eq!(status, StatusCode::OK, "{long}");
    assert_eq!(long["expires_in"], 5_183_944);
    assert_ne!(long["access_token"], short["access_token"]);
    let posted_exchange = client()
        .post(graph(&sim, "oauth/access_token"))
        .form(&[
            ("grant_type", "fb_exchange_token"),
            ("fb_exchange_token", long["access_token"].as_str().unwrap()),
            ("client_id", APP_ID),
            ("client_secret", APP_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(posted_exchange.status(), StatusCode::OK);
    let (status, reused) = token(&sim, &[("code", &code), ("redirect_uri", REDIRECT_URI)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        (
            reused["error"]["code"].clone(),
            reused["error"]["error_subcode"].clone()
        ),
        (json!(100), json!(36_009))
    );
    assert_eq!(reused["error"]["type"], "OAuthException");
    assert!(reused["error"]["fbtrace_id"].is_string(), "{reused}");
}

#[tokio::test]
async fn only_a_still_valid_token_is_exchanged() {
    let sim = spawn().await;
    let short = short_lived_token(&sim).await;
    sim.inject_meta("ada", Fault::ExpiredAccessToken, 1);

    let (status, expired) = token(
        &sim,
        &[
            ("grant_type", "fb_exchange_token"),
            ("fb_exchange_token", &short),
        ],
    )
    .await;
    let (_, unknown) = token(
        &sim,
        &[
            ("grant_type", "fb_exchange_token"),
            ("fb_exchange_token", "EAAnope"),
        ],
    )
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(expired["error"]["code"], 190);
    assert_eq!(expired["error"]["error_subcode"], 463);
    let message = expired["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Error validating access token: Session has expired on"),
        "{message}"
    );
    assert_eq!(unknown["error"]["code"], 190);
    assert!(unknown["error"].get("error_subcode").is_none(), "{unknown}");
    assert_eq!(
        sim.meta_requests("ada"),
        2,
        "the code exchange and the faulted exchange"
    );
}

#[tokio::test]
async fn ad_accounts_link_a_next_page_only_before_the_last_one() {
    let sim = spawn().await;
    let token = short_lived_token(&sim).await;
    let first_url = format!(
        "{}?fields=id,account_id,name,currency&limit=2",
        graph(&sim, "me/adaccounts")
    );

    let (status, headers, first) = get(&first_url, &token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.contains_key("x-app-usage"));
    let next = first["paging"]["next"].as_str().unwrap();
    assert!(
        next.contains("access_token="),
        "Graph's next links carry the token: {next}"
    );
    let (_, _, last) = get(next, &token).await;

    let ids: Vec<_> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(last["data"].as_array().unwrap())
        .map(|account| account["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|id| id.starts_with("act_")), "{ids:?}");
    assert_eq!(
        first["data"][0]["account_id"],
        ids[0].trim_start_matches("act_")
    );
    assert!(last["paging"].get("next").is_none(), "{last}");
    assert!(last["paging"]["cursors"]["after"].is_string(), "{last}");
}

#[tokio::test]
async fn daily_insights_are_strings_and_an_idle_account_pages_through_empty_data() {
    let sim = spawn().await;
    let token = short_lived_token(&sim).await;
    let (_, _, accounts) = get(&graph(&sim, "me/adaccounts"), &token).await;
    let id = |n: usize| accounts["data"][n]["id"].as_str().unwrap().to_owned();
    let query = "?level=account&time_increment=1&fields=impressions,clicks,spend,reach&limit=3\
                 &time_range=%7B%22since%22%3A%222025-01-01%22%2C%22until%22%3A%222025-01-05%22%7D";

    let (status, _, active) = get(
        &format!("{}{query}", graph(&sim, &format!("{}/insights", id(0)))),
        &token,
    )
    .await;
    let (_, _, idle) = get(
        &format!("{}{query}", graph(&sim, &format!("{}/insights", id(2)))),
        &token,
    )
    .await;

    assert_eq!(status, StatusCode::OK, "{active}");
    let rows = active["data"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["date_start"], "2025-01-01");
    assert_eq!(rows[0]["date_start"], rows[0]["date_stop"]);
    for metric in ["impressions", "clicks", "spend", "reach"] {
        assert!(rows[0][metric].is_string(), "{metric} in {}", rows[0]);
    }
    assert_eq!(idle["data"], json!([]));
    assert!(idle["paging"]["next"].is_string(), "{idle}");
}

#[tokio::test]
async fn throttling_is_http_400_with_a_code_and_the_wait_in_minutes_in_the_buc_header() {
    let sim = spawn().await;
    let token = short_lived_token(&sim).await;
    client()
        .post(format!("{}/_sim/faults", sim.base_url()))
        .json(&json!({"meta_user": "ada", "fault": {"kind": "rate_limited", "retry_after_secs": 240}}))
        .send()
        .await
        .unwrap();

    let (status, headers, body) = get(&graph(&sim, "me/adaccounts"), &token).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(headers.get("retry-after").is_none());
    assert_eq!(body["error"]["code"], 80_000);
    assert_eq!(body["error"]["is_transient"], true);
    let usage: Value =
        serde_json::from_str(headers["x-business-use-case-usage"].to_str().unwrap()).unwrap();
    let (_, entries) = usage.as_object().unwrap().iter().next().unwrap();
    assert_eq!(entries[0]["estimated_time_to_regain_access"], 4);
}

#[tokio::test]
async fn graph_wants_a_valid_token_and_the_ads_permission() {
    let sim = spawn().await;
    let response = client().get(graph(&sim, "me")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let missing: Value = response.json().await.unwrap();
    let login_without_ads = client()
        .get(format!(
            "{}/v22.0/dialog/oauth?client_id={APP_ID}&redirect_uri={REDIRECT_URI}&scope=public_profile",
            sim.meta_url()
        ))
        .send()
        .await
        .unwrap();
    let redirect =
        url::Url::parse(login_without_ads.headers()["location"].to_str().unwrap()).unwrap();
    let code: HashMap<_, _> = redirect.query_pairs().into_owned().collect();
    let (_, tokens) = token(
        &sim,
        &[("code", &code["code"]), ("redirect_uri", REDIRECT_URI)],
    )
    .await;
    let token = tokens["access_token"].as_str().unwrap();

    let (_, _, me) = get(&format!("{}?fields=id,name", graph(&sim, "me")), token).await;
    let (status, _, refused) = get(&graph(&sim, "me/adaccounts"), token).await;

    assert_eq!(missing["error"]["code"], 2500);
    assert_eq!(me["name"], "ada");
    assert!(me["id"].is_string());
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"]["code"], 200);
    assert_eq!(refused["error"]["type"], "OAuthException");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ads_read"),
        "{refused}"
    );
}

/// The hex HMAC-SHA256 of `token` keyed with the app secret.
fn proof(token: &str) -> String {
    use hmac::{Hmac, Mac as _};

    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(APP_SECRET.as_bytes()).unwrap();
    mac.update(token.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[tokio::test]
async fn an_app_that_requires_the_secret_wants_a_valid_appsecret_proof_on_every_call() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let meta = MetaConfig {
        require_appsecret_proof: true,
        ..MetaConfig::default()
    }
    .user(MetaUserConfig::new("ada", 1));
    let sim = Sim::start(listener, &Config::default().meta(meta)).unwrap();
    let token = short_lived_token(&sim).await;
    let me = graph(&sim, "me");

    let (missing_status, _, missing) = get(&me, &token).await;
    let (wrong_status, _, wrong) =
        get(&format!("{me}?appsecret_proof={}", "0".repeat(64)), &token).await;
    let (status, _, body) = get(&format!("{me}?appsecret_proof={}", proof(&token)), &token).await;

    assert_eq!(missing_status, StatusCode::BAD_REQUEST);
    assert_eq!(missing["error"]["code"], 100);
    assert_eq!(missing["error"]["type"], "GraphMethodException");
    assert!(
        missing["error"]["message"]
            .as_str()
            .unwrap()
            .contains("require an appsecret_proof"),
        "{missing}"
    );
    assert_eq!(wrong_status, StatusCode::BAD_REQUEST);
    assert!(
        wrong["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid appsecret_proof"),
        "{wrong}"
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "ada");
}

#[tokio::test]
async fn too_many_days_at_once_is_code_1_and_fewer_are_answered() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let meta = MetaConfig::default().user(MetaUserConfig::new("ada", 1).insights_day_limit(3));
    let sim = Sim::start(listener, &Config::default().meta(meta)).unwrap();
    let token = short_lived_token(&sim).await;
    let (_, _, accounts) = get(&graph(&sim, "me/adaccounts"), &token).await;
    let insights = graph(
        &sim,
        &format!("{}/insights", accounts["data"][0]["id"].as_str().unwrap()),
    );
    let range = |until: &str| {
        format!(
            "{insights}?time_increment=1&time_range=%7B%22since%22%3A%222025-01-01%22%2C%22until%22%3A%22{until}%22%7D"
        )
    };

    let (refused_status, _, refused) = get(&range("2025-01-04"), &token).await;
    let (status, _, answered) = get(&range("2025-01-03"), &token).await;

    assert_eq!(refused_status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(refused["error"]["code"], 1);
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reduce the amount of data"),
        "{refused}"
    );
    assert_eq!(status, StatusCode::OK, "{answered}");
    assert_eq!(answered["data"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn impressions_set_through_the_handle_are_what_insights_report() {
    let sim = spawn().await;
    let token = short_lived_token(&sim).await;
    let (_, _, accounts) = get(&graph(&sim, "me/adaccounts"), &token).await;
    let account = accounts["data"][0]["id"].as_str().unwrap().to_owned();
    let day = |text: &str| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
    sim.set_meta_impressions(&account, day("2025-01-02"), Some(4321));
    sim.set_meta_impressions(&account, day("2025-01-03"), None);
    let query = "?time_increment=1&fields=impressions\
                 &time_range=%7B%22since%22%3A%222025-01-01%22%2C%22until%22%3A%222025-01-04%22%7D";

    let (_, _, insights) = get(
        &format!("{}{query}", graph(&sim, &format!("{account}/insights"))),
        &token,
    )
    .await;

    let rows: Vec<(&str, &str)> = insights["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["date_start"].as_str().unwrap(),
                row["impressions"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[1], ("2025-01-02", "4321"));
    assert!(rows.iter().all(|(date, _)| *date != "2025-01-03"));
    assert_eq!(
        sim.meta_impressions(&account, day("2025-01-02")),
        Some(4321)
    );
    assert_eq!(sim.meta_impressions(&account, day("2025-01-03")), None);
}
