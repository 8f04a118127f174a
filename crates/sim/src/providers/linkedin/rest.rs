//! LinkedIn's versioned Community Management API under `/rest`:
//! `organizationAcls` and `organizationalEntityFollowerStatistics`.
//!
//! - Every call needs `LinkedIn-Version: YYYYMM` (400 `VERSION_MISSING`
//!   without it, 426 `NONEXISTENT_VERSION` for a version outside the
//!   configured window) and `X-Restli-Protocol-Version: 2.0.0`.
//! - Rest.li 2.0 query syntax: `timeIntervals=(timeRange:(start:…,end:…),timeGranularityType:DAY)`
//!   with epoch milliseconds and literal parentheses, URNs URL-encoded
//!   (`urn%3Ali%3Aorganization%3A123`); encoded parentheses, raw URNs and
//!   the dotted Rest.li 1.0 form are refused with 400.
//! - Time-bound statistics are daily `followerGains` (gains, not totals);
//!   without `timeIntervals` the element has demographic facets instead.

use std::{collections::HashMap, sync::Arc};

use axum::{
    Json, Router,
    extract::{Query, RawQuery, State as AxumState},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{access_denied, api_error, caller, member_id, organization_number};
use crate::{
    config::{LinkedInConfig, LinkedInUserConfig},
    state::State,
};

/// Rest.li's default and the simulator's largest `count`.
const DEFAULT_COUNT: u32 = 10;
const MAX_COUNT: u32 = 100;

/// The scopes that may read organization ACLs and statistics.
const ADMIN_SCOPES: [&str; 2] = ["rw_organization_admin", "r_organization_admin"];

const DAY_MS: i64 = 86_400_000;

/// The `/rest` routes.
pub(super) fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/rest/organizationAcls", get(organization_acls))
        .route(
            "/rest/organizationalEntityFollowerStatistics",
            get(follower_statistics),
        )
}

/// The caller of a `/rest` route, after the version and protocol headers
/// and the admin scope are checked.
async fn rest_caller(
    state: &State,
    headers: &HeaderMap,
    resource: &str,
) -> Result<(usize, LinkedInUserConfig), Response> {
    let (index, user, grant) = caller(state, headers).await?;
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let Some(version) = header("linkedin-version") else {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            Some("VERSION_MISSING"),
            0,
            "A version must be present. Please specify a version by adding the LinkedIn-Version \
             header.",
        ));
    };
    let active = state.linkedin(|linkedin| active_version(&linkedin.config, version));
    if !active {
        return Err(api_error(
            StatusCode::UPGRADE_REQUIRED,
            Some("NONEXISTENT_VERSION"),
            0,
            &format!("Requested version {version} is not active"),
        ));
    }
    if header("x-restli-protocol-version") != Some("2.0.0") {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            Some("ILLEGAL_ARGUMENT"),
            0,
            "The simulator speaks Rest.li protocol 2.0.0 only; send X-Restli-Protocol-Version: \
             2.0.0",
        ));
    }
    let admin = grant
        .scopes
        .iter()
        .any(|scope| ADMIN_SCOPES.contains(&scope.as_str()));
    if !admin {
        return Err(access_denied(&format!("{resource}.{version}")));
    }
    Ok((index, user))
}

/// Whether `version` (`YYYYMM` or `YYYYMM.NN`) is within the configured
/// window.
fn active_version(config: &LinkedInConfig, version: &str) -> bool {
    let (month, patch) = version.split_once('.').unwrap_or((version, "00"));
    let digits = |text: &str, len| text.len() == len && text.bytes().all(|b| b.is_ascii_digit());
    digits(month, 6)
        && digits(patch, 2)
        && config.oldest_version.as_str() <= month
        && month <= config.newest_version.as_str()
}

#[derive(Deserialize)]
struct AclQuery {
    q: Option<String>,
    role: Option<String>,
    state: Option<String>,
    start: Option<u32>,
    count: Option<u32>,
}

/// `GET /rest/organizationAcls?q=roleAssignee`: the organizations the
/// member administers, paged by `start`/`count` with `total` and links.
async fn organization_acls(
    AxumState(state): AxumState<Arc<State>>,
    headers: HeaderMap,
    Query(query): Query<AclQuery>,
) -> Response {
    let (index, user) =
        match rest_caller(&state, &headers, "organizationAcls.FINDER-roleAssignee").await {
            Ok(caller) => caller,
            Err(response) => return response,
        };
    if query.q.as_deref() != Some("roleAssignee") {
        return api_error(
            StatusCode::BAD_REQUEST,
            Some("ILLEGAL_ARGUMENT"),
            0,
            "The simulator supports the roleAssignee finder only",
        );
    }
    // The simulated members hold approved administrator roles only.
    let matches = query
        .role
        .as_deref()
        .is_none_or(|role| role == "ADMINISTRATOR")
        && query
            .state
            .as_deref()
            .is_none_or(|state| state == "APPROVED");
    let total = if matches { user.organizations } else { 0 };
    let start = query.start.unwrap_or(0);
    let count = query.count.unwrap_or(DEFAULT_COUNT).clamp(1, MAX_COUNT);
    let person = format!("urn:li:person:{}", member_id(index, &user));
    let elements: Vec<Value> = (start..total)
        .take(count as usize)
        .map(|n| {
            json!({
                "role": "ADMINISTRATOR",
                "state": "APPROVED",
                "roleAssignee": person,
                "organization": format!("urn:li:organization:{}", organization_number(index, n)),
                "created": {"actor": person, "time": 1_704_067_200_000_i64},
                "lastModified": {"actor": person, "time": 1_704_067_200_000_i64},
            })
        })
        .collect();
    let link = |rel: &str, start: u32| {
        let mut href = format!("/rest/organizationAcls?q=roleAssignee&start={start}&count={count}");
        for (name, value) in [("role", &query.role), ("state", &query.state)] {
            if let Some(value) = value {
                href.push_str(&format!("&{name}={value}"));
            }
        }
        json!({"rel": rel, "href": href, "type": "application/json"})
    };
    let mut links = Vec::new();
    if start > 0 {
        links.push(link("prev", start.saturating_sub(count)));
    }
    if start.saturating_add(count) < total {
        links.push(link("next", start + count));
    }
    Json(json!({
        "paging": {"start": start, "count": count, "total": total, "links": links},
        "elements": elements,
    }))
    .into_response()
}

/// `GET /rest/organizationalEntityFollowerStatistics?q=organizationalEntity`:
/// daily follower gains for `timeIntervals`, lifetime demographic counts
/// without it. The query is read raw, as Rest.li 2.0 syntax must be.
async fn follower_statistics(
    AxumState(state): AxumState<Arc<State>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (index, user) = match rest_caller(
        &state,
        &headers,
        "organizationalEntityFollowerStatistics.FINDER-organizationalEntity",
    )
    .await
    {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let query = match StatsQuery::parse(raw.as_deref().unwrap_or_default()) {
        Ok(query) => query,
        Err(message) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                Some("ILLEGAL_ARGUMENT"),
                0,
                &message,
            );
        }
    };
    let administers =
        (0..user.organizations).any(|n| organization_number(index, n) == query.organization);
    if !administers {
        return access_denied(&format!(
            "organizationalEntityFollowerStatistics.FINDER-organizationalEntity (organization {})",
            query.organization
        ));
    }
    let urn = format!("urn:li:organization:{}", query.organization);
    let elements = match query.interval {
        Some((start, end)) => state.linkedin(|linkedin| {
            daily_gains(&urn, start, end, &|day| {
                linkedin.gains(query.organization, day)
            })
        }),
        None => vec![lifetime(&urn, query.organization)],
    };
    Json(json!({
        "paging": {"start": 0, "count": 10, "links": []},
        "elements": elements,
    }))
    .into_response()
}

/// A follower-statistics query, read from the raw query string.
#[derive(Debug, PartialEq, Eq)]
struct StatsQuery {
    /// The organization number of `organizationalEntity`.
    organization: u64,
    /// `[start, end)` in epoch milliseconds, with DAY granularity.
    interval: Option<(i64, i64)>,
}

impl StatsQuery {
    fn parse(raw: &str) -> Result<Self, String> {
        let mut params = HashMap::new();
        for pair in raw.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if name.starts_with("timeIntervals.") {
                return Err(format!(
                    "Query parameter {name} is Rest.li 1.0 syntax; with protocol 2.0.0 send \
                     timeIntervals=(timeRange:(start:…,end:…),timeGranularityType:DAY)"
                ));
            }
            params.insert(name, value);
        }
        if params.get("q") != Some(&"organizationalEntity") {
            return Err("The simulator supports the organizationalEntity finder only".to_owned());
        }
        let Some(entity) = params.get("organizationalEntity") else {
            return Err("Query parameter organizationalEntity is missing".to_owned());
        };
        if entity.contains(':') {
            return Err(format!(
                "Invalid value {entity} for organizationalEntity: URNs must be URL-encoded with \
                 Rest.li protocol 2.0.0"
            ));
        }
        let decoded = percent_decode_str(entity).decode_utf8_lossy();
        let organization = decoded
            .strip_prefix("urn:li:organization:")
            .and_then(|number| number.parse().ok())
            .ok_or_else(|| format!("Invalid organizationalEntity {decoded}"))?;
        let interval = params
            .get("timeIntervals")
            .map(|value| time_interval(value))
            .transpose()?;
        Ok(Self {
            organization,
            interval,
        })
    }
}

/// `(timeRange:(start:…,end:…),timeGranularityType:DAY)`, its parts in any
/// order.
fn time_interval(raw: &str) -> Result<(i64, i64), String> {
    let invalid = || {
        format!(
            "Invalid value {raw} for timeIntervals: expected \
             (timeRange:(start:<ms>,end:<ms>),timeGranularityType:DAY) in Rest.li 2.0 syntax, \
             with its parentheses, colons and commas not URL-encoded"
        )
    };
    let Some(Restli::Object(fields)) = parse_restli(raw) else {
        return Err(invalid());
    };
    let field = |fields: &[(String, Restli)], name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let Some(Restli::Object(range)) = field(&fields, "timeRange") else {
        return Err(invalid());
    };
    let number = |name| match field(&range, name) {
        Some(Restli::Text(text)) => text.parse::<i64>().ok(),
        _ => None,
    };
    let (Some(start), Some(end)) = (number("start"), number("end")) else {
        return Err(invalid());
    };
    match field(&fields, "timeGranularityType") {
        Some(Restli::Text(granularity)) if granularity == "DAY" => {}
        Some(Restli::Text(granularity)) if granularity == "WEEK" || granularity == "MONTH" => {
            return Err(format!(
                "timeGranularityType {granularity} is not supported by the simulator"
            ));
        }
        _ => return Err(invalid()),
    }
    if end <= start {
        return Err("timeRange.end must be after timeRange.start".to_owned());
    }
    Ok((start, end))
}

/// A Rest.li 2.0 value: an object `(key:value,…)` or a scalar.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Restli {
    Object(Vec<(String, Restli)>),
    Text(String),
}

fn parse_restli(input: &str) -> Option<Restli> {
    let (value, rest) = restli_value(input)?;
    rest.is_empty().then_some(value)
}

fn restli_value(input: &str) -> Option<(Restli, &str)> {
    let Some(mut rest) = input.strip_prefix('(') else {
        let end = input.find([',', ')', '(', ':']).unwrap_or(input.len());
        return (end > 0).then(|| (Restli::Text(input[..end].to_owned()), &input[end..]));
    };
    let mut fields = Vec::new();
    if let Some(rest) = rest.strip_prefix(')') {
        return Some((Restli::Object(fields), rest));
    }
    loop {
        let (key, after) = rest.split_once(':')?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let (value, after) = restli_value(after)?;
        fields.push((key.to_owned(), value));
        if let Some(after) = after.strip_prefix(',') {
            rest = after;
            continue;
        }
        return Some((Restli::Object(fields), after.strip_prefix(')')?));
    }
}

/// The seeded organic and paid follower gains of `organization` on `day`.
pub(super) fn seeded_gains(organization: u64, day: NaiveDate) -> (i64, i64) {
    let millis = day.and_time(NaiveTime::MIN).and_utc().timestamp_millis();
    let days = u64::try_from(millis.div_euclid(DAY_MS)).unwrap_or(0);
    let organic =
        i64::try_from((organization.wrapping_mul(7) + days.wrapping_mul(13)) % 23).unwrap_or(0) - 2;
    let paid = i64::try_from((organization + days) % 3).unwrap_or(0);
    (organic, paid)
}

/// One element per whole UTC day from `start`, up to `end` and at most to
/// the start of today, with each day's gains from `gains`; days without
/// gains have an element too, with zeros.
fn daily_gains(
    urn: &str,
    start: i64,
    end: i64,
    gains: &dyn Fn(NaiveDate) -> (i64, i64),
) -> Vec<Value> {
    let today = Utc::now()
        .date_naive()
        .and_time(NaiveTime::MIN)
        .and_utc()
        .timestamp_millis();
    let end = end.min(today);
    let mut elements = Vec::new();
    let mut day = start;
    while day + DAY_MS <= end {
        let date = DateTime::from_timestamp_millis(day)
            .map(|at| at.date_naive())
            .unwrap_or_default();
        let (organic, paid) = gains(date);
        elements.push(json!({
            "timeRange": {"start": day, "end": day + DAY_MS},
            "followerGains": {"organicFollowerGain": organic, "paidFollowerGain": paid},
            "organizationalEntity": urn,
        }));
        day += DAY_MS;
    }
    elements
}

/// The lifetime element: demographic facets, no gains.
fn lifetime(urn: &str, organization: u64) -> Value {
    let followers = |share: u64| json!({"organicFollowerCount": (organization % 997) * share, "paidFollowerCount": 0});
    json!({
        "organizationalEntity": urn,
        "followerCountsByAssociationType": [
            {"associationType": "EMPLOYEE", "followerCounts": followers(1)},
        ],
        "followerCountsBySeniority": [
            {"seniority": "urn:li:seniority:3", "followerCounts": followers(4)},
            {"seniority": "urn:li:seniority:4", "followerCounts": followers(3)},
        ],
        "followerCountsByGeoCountry": [
            {"geo": "urn:li:geo:103644278", "followerCounts": followers(5)},
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_li_2_intervals_parse_in_any_key_order() {
        let raw = "(timeGranularityType:DAY,timeRange:(end:1700086400000,start:1700000000000))";

        assert_eq!(
            time_interval(raw),
            Ok((1_700_000_000_000, 1_700_086_400_000))
        );
    }

    #[test]
    fn encoded_or_dotted_intervals_and_raw_urns_are_refused() {
        let encoded = "q=organizationalEntity&organizationalEntity=urn%3Ali%3Aorganization%3A1\
                       &timeIntervals=%28timeRange%3A%28start%3A1%2Cend%3A2%29%2CtimeGranularityType%3ADAY%29";
        let dotted = "q=organizationalEntity&organizationalEntity=urn%3Ali%3Aorganization%3A1\
                      &timeIntervals.timeRange.start=1&timeIntervals.timeRange.end=2";
        let raw_urn = "q=organizationalEntity&organizationalEntity=urn:li:organization:1";

        assert!(StatsQuery::parse(encoded).is_err());
        assert!(StatsQuery::parse(dotted).is_err());
        assert!(StatsQuery::parse(raw_urn).is_err());
        assert_eq!(
            StatsQuery::parse(
                "q=organizationalEntity&organizationalEntity=urn%3Ali%3Aorganization%3A7"
            ),
            Ok(StatsQuery {
                organization: 7,
                interval: None
            })
        );
    }

    #[test]
    fn versions_are_active_inside_the_window_only() {
        let config = LinkedInConfig::default();

        assert!(active_version(&config, &config.newest_version));
        assert!(active_version(
            &config,
            &format!("{}.01", config.oldest_version)
        ));
        assert!(!active_version(&config, "202201"));
        assert!(!active_version(&config, "209912"));
        assert!(!active_version(&config, "2026-01"));
    }

    #[test]
    fn daily_gains_stop_at_the_start_of_today() {
        let today = Utc::now()
            .date_naive()
            .and_time(NaiveTime::MIN)
            .and_utc()
            .timestamp_millis();

        let elements = daily_gains(
            "urn:li:organization:1",
            today - 3 * DAY_MS,
            today + DAY_MS,
            &|day| seeded_gains(1, day),
        );

        assert_eq!(elements.len(), 3);
        assert_eq!(elements[0]["timeRange"]["start"], today - 3 * DAY_MS);
    }
}
