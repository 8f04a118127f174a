use std::collections::HashMap;

use fleet_sim::{Config, GoogleConfig, GoogleUserConfig, Sim, SimHandle};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::client;

const CLIENT_ID: &str = "sim-client.apps.googleusercontent.com";
const REDIRECT_URI: &str = "https://fleet.test/oauth/callback";

async fn spawn(google: GoogleConfig) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let google = google.user(GoogleUserConfig::new("ada", 1, 1));
    Sim::start(listener, &Config::default().google(google)).unwrap()
}

fn authorize_url(sim: &SimHandle, extra: &str) -> String {
    format!(
        "{}/o/oauth2/v2/auth?client_id={CLIENT_ID}&redirect_uri={REDIRECT_URI}&response_type=code\
         &scope=openid&state=s1&access_type=offline{extra}",
        sim.google_url()
    )
}

/// Consents and returns the callback's query.
async fn callback(sim: &SimHandle) -> HashMap<String, String> {
    let response = client().get(authorize_url(sim, "")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT_URI));
    location.query_pairs().into_owned().collect()
}

async fn token(sim: &SimHandle, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = form.to_vec();
    form.extend([
        ("client_id", CLIENT_ID),
        ("client_secret", "sim-client-secret"),
    ]);
    let response = client()
        .post(format!("{}/token", sim.google_url()))
        .form(&form)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn consent_redirects_with_code_and_state_and_a_refresh_token_comes_only_once() {
    let sim = spawn(GoogleConfig::default()).await;
    let query = callback(&sim).await;
    assert_eq!(query["state"], "s1");

    let (status, tokens) = token(
        &sim,
        &[
            ("grant_type", "authorization_code"),
            ("code", &query["code"]),
            ("redirect_uri", REDIRECT_URI),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (tokens["expires_in"].clone(), tokens["token_type"].clone()),
        (json!(3599), json!("Bearer"))
    );
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    let (status, refreshed) = token(
        &sim,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(refreshed.get("refresh_token").is_none(), "{refreshed}");

    let (status, reused) = token(
        &sim,
        &[
            ("grant_type", "authorization_code"),
            ("code", &query["code"]),
            ("redirect_uri", REDIRECT_URI),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reused["error"], "invalid_grant");
}

#[tokio::test]
async fn the_consent_page_has_an_allow_button_that_carries_the_request_on() {
    let sim = spawn(GoogleConfig::default()).await;

    let page = client()
        .get(authorize_url(&sim, "&consent=page"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"allow\""), "{html}");
    assert!(
        html.contains(&format!("value=\"{REDIRECT_URI}\"")),
        "{html}"
    );

    let allowed = client()
        .get(authorize_url(&sim, "&consent=granted"))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::FOUND);
    let denied = client()
        .get(authorize_url(&sim, "&consent=denied"))
        .send()
        .await
        .unwrap();
    let location = denied.headers()["location"].to_str().unwrap();
    assert!(
        location.contains("error=access_denied") && location.contains("state=s1"),
        "{location}"
    );
}

#[tokio::test]
async fn api_errors_use_googles_envelope_without_retry_after() {
    let sim = spawn(GoogleConfig::default()).await;
    let summaries = format!(
        "{}/analyticsadmin/v1beta/accountSummaries",
        sim.google_url()
    );

    let unknown = client()
        .get(&summaries)
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");

    let query = callback(&sim).await;
    let (_, tokens) = token(
        &sim,
        &[
            ("grant_type", "authorization_code"),
            ("code", &query["code"]),
            ("redirect_uri", REDIRECT_URI),
        ],
    )
    .await;
    let access_token = tokens["access_token"].as_str().unwrap();
    client()
        .post(format!("{}/_sim/faults", sim.base_url()))
        .json(&json!({"google_user": "ada", "fault": {"kind": "rate_limited", "retry_after_secs": 5}}))
        .send()
        .await
        .unwrap();

    let limited = client()
        .get(&summaries)
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().get("retry-after").is_none());
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    let ok: Value = client()
        .get(&summaries)
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        ok["accountSummaries"][0]["propertySummaries"][0]["property"],
        "properties/1000001"
    );
    assert!(ok.get("nextPageToken").is_none());
    assert_eq!(sim.google_requests("ada"), 3);
}

/// Consents with `extra` authorize parameters and exchanges the code.
async fn connect(sim: &SimHandle, extra: &str) -> Value {
    let response = client()
        .get(authorize_url(sim, extra))
        .send()
        .await
        .unwrap();
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
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

#[tokio::test]
async fn a_refresh_token_comes_on_first_consent_or_with_prompt_consent_only() {
    let sim = spawn(GoogleConfig::default()).await;

    let first = connect(&sim, "").await;
    let again = connect(&sim, "").await;
    let forced = connect(&sim, "&prompt=consent").await;
    let forced_with_more = connect(&sim, "&prompt=select_account%20consent").await;

    let first_refresh = first["refresh_token"].as_str().unwrap();
    assert!(again.get("refresh_token").is_none(), "{again}");
    let forced_refresh = forced["refresh_token"].as_str().unwrap();
    assert_ne!(first_refresh, forced_refresh);
    assert!(
        forced_with_more["refresh_token"].is_string(),
        "{forced_with_more}"
    );
    for refresh_token in [first_refresh, forced_refresh] {
        let (status, _) = token(
            &sim,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "an earlier refresh token keeps working"
        );
    }
}

#[tokio::test]
async fn revoking_the_refresh_token_makes_the_next_consent_a_first_one() {
    let sim = spawn(GoogleConfig::default()).await;
    let first = connect(&sim, "").await;

    let revoked = client()
        .post(format!("{}/revoke", sim.google_url()))
        .form(&[("token", first["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    let again = connect(&sim, "").await;

    assert_eq!(revoked.status(), StatusCode::OK);
    assert!(again["refresh_token"].is_string(), "{again}");
}

/// Runs a daily sessions report of property 1000001 from `start` to `end`.
async fn report(sim: &SimHandle, access_token: &str, start: &str, end: &str) -> Value {
    client()
        .post(format!(
            "{}/analyticsdata/v1beta/properties/1000001:runReport",
            sim.google_url()
        ))
        .bearer_auth(access_token)
        .json(&json!({
            "dateRanges": [{"startDate": start, "endDate": end}],
            "dimensions": [{"name": "date"}],
            "metrics": [{"name": "sessions"}],
            "orderBys": [{"dimension": {"dimensionName": "date"}}],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn dates(report: &Value) -> Vec<String> {
    report["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| {
                    row["dimensionValues"][0]["value"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn days_without_traffic_are_left_out_of_reports() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let google =
        GoogleConfig::default().user(GoogleUserConfig::new("ada", 1, 1).no_traffic_every(4));
    let sim = Sim::start(listener, &Config::default().google(google)).unwrap();
    let access_token = connect(&sim, "").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let day = |text: &str| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
    sim.set_google_sessions(1_000_001, day("2025-01-02"), None);
    sim.set_google_sessions(1_000_001, day("2025-01-05"), Some(9));

    let report = report(&sim, &access_token, "2025-01-01", "2025-01-12").await;

    let dates = dates(&report);
    assert!(dates.len() < 12, "{dates:?}");
    assert_eq!(report["rowCount"], dates.len());
    assert!(!dates.contains(&"20250102".to_owned()), "{dates:?}");
    assert_eq!(sim.google_sessions(1_000_001, day("2025-01-02")), None);
    assert_eq!(sim.google_sessions(1_000_001, day("2025-01-05")), Some(9));
    let quiet = (1..=12)
        .map(|n| day(&format!("2025-01-{n:02}")))
        .filter(|day| sim.google_sessions(1_000_001, *day).is_none())
        .count();
    assert_eq!(dates.len(), 12 - quiet);
}

#[tokio::test]
async fn today_is_the_users_today_in_their_time_zone() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let google =
        GoogleConfig::default().user(GoogleUserConfig::new("ada", 1, 1).utc_offset_minutes(1440));
    let sim = Sim::start(listener, &Config::default().google(google)).unwrap();
    let access_token = connect(&sim, "").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Days::new(1))
        .format("%Y%m%d")
        .to_string();

    let today = report(&sim, &access_token, "today", "today").await;

    assert_eq!(dates(&today), [tomorrow]);
}
