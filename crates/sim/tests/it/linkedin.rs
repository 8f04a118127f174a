use std::collections::HashMap;

use chrono::{Days, NaiveTime, Utc};
use fleet_sim::{Config, Fault, LinkedInConfig, LinkedInUserConfig, Sim, SimHandle};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::helpers::client;

const CLIENT_ID: &str = "sim-linkedin-client";
const CLIENT_SECRET: &str = "sim-linkedin-secret";
const REDIRECT_URI: &str = "https://fleet.test/oauth/callback";
const VERSION: &str = "202603";

/// A simulator whose LinkedIn member `lin` administers three organizations.
async fn spawn(linkedin: LinkedInConfig) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let linkedin = linkedin.user(LinkedInUserConfig::new("lin", 3));
    Sim::start(listener, &Config::default().linkedin(linkedin)).unwrap()
}

fn authorize_url(sim: &SimHandle, extra: &str) -> String {
    format!(
        "{}/oauth/v2/authorization?response_type=code&client_id={CLIENT_ID}\
         &redirect_uri={REDIRECT_URI}&state=s1&scope=openid%20profile%20email%20rw_organization_admin{extra}",
        sim.linkedin_url()
    )
}

async fn redirect(sim: &SimHandle, extra: &str) -> url::Url {
    let response = client()
        .get(authorize_url(sim, extra))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap()
}

async fn token(sim: &SimHandle, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = form.to_vec();
    form.extend([("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)]);
    let response = client()
        .post(format!("{}/oauth/v2/accessToken", sim.linkedin_url()))
        .form(&form)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn connect(sim: &SimHandle) -> Value {
    let location = redirect(sim, "").await;
    let query: HashMap<_, _> = location.query_pairs().into_owned().collect();
    let (status, tokens) = token(
        sim,
        &[
            ("grant_type", "authorization_code"),
            ("code", &query["code"]),
            ("redirect_uri", REDIRECT_URI),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

/// A `/rest` GET with the version and protocol headers.
fn rest(sim: &SimHandle, path_and_query: &str, token: &str) -> RequestBuilder {
    client()
        .get(format!("{}/rest/{path_and_query}", sim.linkedin_url()))
        .bearer_auth(token)
        .header("LinkedIn-Version", VERSION)
        .header("X-Restli-Protocol-Version", "2.0.0")
}

async fn json(request: RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn consent_gives_a_60_day_token_with_a_comma_separated_scope_and_cancel_says_so() {
    let sim = spawn(LinkedInConfig::default()).await;

    let tokens = connect(&sim).await;
    let cancelled = redirect(&sim, "&consent=denied").await;

    assert_eq!(tokens["expires_in"], 5_184_000);
    assert_eq!(
        tokens["scope"],
        "openid,profile,email,rw_organization_admin"
    );
    assert!(
        tokens.get("refresh_token").is_none(),
        "only approved apps get refresh tokens: {tokens}"
    );
    let query: HashMap<_, _> = cancelled.query_pairs().into_owned().collect();
    assert_eq!(query["error"], "user_cancelled_authorize");
    assert_eq!(query["state"], "s1");
    assert!(
        cancelled
            .as_str()
            .contains("error_description=The+user+cancelled")
    );
}

#[tokio::test]
async fn a_refresh_keeps_the_refresh_token_and_does_not_extend_its_life() {
    let sim = spawn(LinkedInConfig {
        refresh_tokens: true,
        ..LinkedInConfig::default()
    })
    .await;
    let tokens = connect(&sim).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    let (status, refreshed) = token(
        &sim,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await;

    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_eq!(refreshed["refresh_token"], refresh_token);
    assert_ne!(refreshed["access_token"], tokens["access_token"]);
    let before = tokens["refresh_token_expires_in"].as_i64().unwrap();
    let after = refreshed["refresh_token_expires_in"].as_i64().unwrap();
    assert!(after <= before, "{after} > {before}");
    sim.inject_linkedin("lin", Fault::InvalidGrant, 1);
    let (status, refused) = token(
        &sim,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"], "invalid_grant");
}

#[tokio::test]
async fn an_expired_or_unknown_refresh_token_is_refused_with_invalid_request() {
    let sim = spawn(LinkedInConfig {
        refresh_tokens: true,
        ..LinkedInConfig::default()
    })
    .await;
    let tokens = connect(&sim).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    sim.expire_linkedin_refresh_tokens("lin");

    let (status, expired) = token(
        &sim,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await;
    let (_, unknown) = token(
        &sim,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "AQWnever-issued"),
        ],
    )
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(expired["error"], "invalid_request");
    assert!(
        expired["error_description"]
            .as_str()
            .unwrap()
            .contains("invalid, expired or revoked"),
        "{expired}"
    );
    assert_eq!(unknown["error"], "invalid_request");
}

#[tokio::test]
async fn rest_calls_need_an_active_version_and_userinfo_needs_none() {
    let sim = spawn(LinkedInConfig::default()).await;
    let tokens = connect(&sim).await;
    let token = tokens["access_token"].as_str().unwrap();
    let acls = format!(
        "{}/rest/organizationAcls?q=roleAssignee",
        sim.linkedin_url()
    );

    let (missing_status, missing) = json(
        client()
            .get(&acls)
            .bearer_auth(token)
            .header("X-Restli-Protocol-Version", "2.0.0"),
    )
    .await;
    let (sunset_status, sunset) = json(
        client()
            .get(&acls)
            .bearer_auth(token)
            .header("LinkedIn-Version", "202401")
            .header("X-Restli-Protocol-Version", "2.0.0"),
    )
    .await;
    let (protocol_status, _) = json(
        client()
            .get(&acls)
            .bearer_auth(token)
            .header("LinkedIn-Version", VERSION),
    )
    .await;
    let (userinfo_status, userinfo) = json(
        client()
            .get(format!("{}/v2/userinfo", sim.linkedin_url()))
            .bearer_auth(token),
    )
    .await;

    assert_eq!(missing_status, StatusCode::BAD_REQUEST);
    assert_eq!(missing["code"], "VERSION_MISSING");
    assert_eq!(sunset_status, StatusCode::UPGRADE_REQUIRED);
    assert_eq!(sunset["code"], "NONEXISTENT_VERSION");
    assert_eq!(sunset["status"], 426);
    assert_eq!(protocol_status, StatusCode::BAD_REQUEST);
    assert_eq!(userinfo_status, StatusCode::OK);
    assert_eq!(userinfo["name"], "lin");
    assert_eq!(
        userinfo["locale"],
        json!({"country": "US", "language": "en"})
    );
}

#[tokio::test]
async fn organization_acls_page_by_start_and_count_with_total_and_links() {
    let sim = spawn(LinkedInConfig::default()).await;
    let tokens = connect(&sim).await;
    let token = tokens["access_token"].as_str().unwrap();
    let query = "organizationAcls?q=roleAssignee&role=ADMINISTRATOR&state=APPROVED&count=2";

    let (_, first) = json(rest(&sim, &format!("{query}&start=0"), token)).await;
    let (_, last) = json(rest(&sim, &format!("{query}&start=2"), token)).await;

    assert_eq!(first["paging"]["total"], 3);
    assert_eq!(first["elements"].as_array().unwrap().len(), 2);
    let rels = |page: &Value| -> Vec<String> {
        page["paging"]["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|link| link["rel"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(rels(&first), ["next"]);
    assert_eq!(rels(&last), ["prev"]);
    let organization = last["elements"][0]["organization"].as_str().unwrap();
    assert!(
        organization.starts_with("urn:li:organization:"),
        "{organization}"
    );
    assert_eq!(last["elements"][0]["role"], "ADMINISTRATOR");
}

#[tokio::test]
async fn follower_statistics_take_rest_li_2_intervals_and_give_daily_gains() {
    let sim = spawn(LinkedInConfig::default()).await;
    let tokens = connect(&sim).await;
    let token = tokens["access_token"].as_str().unwrap();
    let (_, acls) = json(rest(&sim, "organizationAcls?q=roleAssignee", token)).await;
    let urn = acls["elements"][0]["organization"].as_str().unwrap();
    let encoded = urn.replace(':', "%3A");
    let today = Utc::now().date_naive().and_time(NaiveTime::MIN).and_utc();
    let start = (today - Days::new(30)).timestamp_millis();
    let end = today.timestamp_millis();
    let base = format!(
        "organizationalEntityFollowerStatistics?q=organizationalEntity&organizationalEntity={encoded}"
    );

    let (status, daily) = json(rest(
        &sim,
        &format!(
            "{base}&timeIntervals=(timeRange:(start:{start},end:{end}),timeGranularityType:DAY)"
        ),
        token,
    ))
    .await;
    let (lifetime_status, lifetime) = json(rest(&sim, &base, token)).await;
    let (encoded_status, refused) = json(rest(
        &sim,
        &format!("{base}&timeIntervals=%28timeRange%3A%28start%3A{start}%2Cend%3A{end}%29%2CtimeGranularityType%3ADAY%29"),
        token,
    ))
    .await;
    let (raw_urn_status, _) = json(rest(
        &sim,
        &format!("organizationalEntityFollowerStatistics?q=organizationalEntity&organizationalEntity={urn}"),
        token,
    ))
    .await;

    assert_eq!(status, StatusCode::OK, "{daily}");
    let elements = daily["elements"].as_array().unwrap();
    assert_eq!(elements.len(), 30);
    assert_eq!(elements[0]["timeRange"]["start"], start);
    assert!(elements[0]["followerGains"]["organicFollowerGain"].is_i64());
    assert_eq!(elements[0]["organizationalEntity"], urn);
    assert_eq!(lifetime_status, StatusCode::OK);
    assert!(lifetime["elements"][0].get("followerGains").is_none());
    assert!(lifetime["elements"][0]["followerCountsBySeniority"].is_array());
    assert_eq!(encoded_status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["status"], 400);
    assert_eq!(raw_urn_status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn errors_use_linkedins_envelope_and_429_has_no_retry_after() {
    let sim = spawn(LinkedInConfig::default()).await;
    let tokens = connect(&sim).await;
    let token = tokens["access_token"].as_str().unwrap();
    sim.inject_linkedin(
        "lin",
        Fault::RateLimited {
            retry_after_secs: 30,
        },
        1,
    );

    let limited = rest(&sim, "organizationAcls?q=roleAssignee", token)
        .send()
        .await
        .unwrap();
    let (unknown_status, unknown) =
        json(rest(&sim, "organizationAcls?q=roleAssignee", "nope")).await;

    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().get("retry-after").is_none());
    let body: Value = limited.json().await.unwrap();
    assert_eq!(
        (body["code"].clone(), body["serviceErrorCode"].clone()),
        (json!("TOO_MANY_REQUESTS"), json!(101))
    );
    assert_eq!(unknown_status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown["serviceErrorCode"], 65_600);
    assert_eq!(
        sim.linkedin_requests("lin"),
        2,
        "the code exchange and the limited call"
    );
}
