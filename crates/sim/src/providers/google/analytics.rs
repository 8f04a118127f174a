//! The Analytics Admin API's `accountSummaries` and the Data API's
//! `runReport`, with Google's paging, metric values as strings, dates as
//! `YYYYMMDD`, `rows`/`rowCount`/`nextPageToken` omitted when empty, and
//! days without traffic omitted from reports.
//!
//! Report dates are days of the user's time zone
//! ([`GoogleUserConfig::utc_offset_minutes`](crate::GoogleUserConfig::utc_offset_minutes)):
//! `today` and `NdaysAgo` count from the user's today, and no day after it
//! has traffic.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Path, Query, State as AxumState},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::{Days, NaiveDate, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{api_error, caller};
use crate::{config::GoogleUserConfig, state::State};

/// The Data API's default and largest `limit`.
const DEFAULT_LIMIT: u64 = 10_000;
const MAX_LIMIT: u64 = 250_000;

/// The Admin API's default and largest `pageSize` (larger is coerced).
const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 200;

/// The metrics `runReport` knows.
const METRICS: [&str; 3] = ["sessions", "totalUsers", "screenPageViews"];

/// The Admin API's and the Data API's routes.
pub(super) fn router() -> Router<Arc<State>> {
    Router::new()
        .route(
            "/analyticsadmin/v1beta/accountSummaries",
            get(account_summaries),
        )
        .route("/analyticsdata/v1beta/properties/{call}", post(run_report))
}

/// The first day with traffic.
fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2020, 1, 1).expect("a valid date")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SummariesQuery {
    page_size: Option<usize>,
    page_token: Option<String>,
}

/// `GET /analyticsadmin/v1beta/accountSummaries`.
async fn account_summaries(
    AxumState(state): AxumState<Arc<State>>,
    headers: HeaderMap,
    Query(query): Query<SummariesQuery>,
) -> Response {
    let (index, user) = match caller(&state, &headers).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let page_size = query
        .page_size
        .filter(|size| *size > 0)
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .min(MAX_PAGE_SIZE);
    let Ok(start) = query.page_token.as_deref().map_or(Ok(0), str::parse::<u32>) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "Invalid page token.",
            "INVALID_ARGUMENT",
        );
    };
    let accounts: Vec<Value> = (start..user.accounts)
        .take(page_size)
        .map(|n| account_summary(index, &user, n))
        .collect();
    let mut body = json!({});
    let end = start as usize + accounts.len();
    if !accounts.is_empty() {
        body["accountSummaries"] = json!(accounts);
    }
    if end < user.accounts as usize {
        body["nextPageToken"] = json!(end.to_string());
    }
    Json(body).into_response()
}

/// Account `n` (from 0) of the user at `index`.
pub(super) fn account_id(index: usize, n: u32) -> u64 {
    (index as u64 + 1) * 1000 + u64::from(n)
}

pub(super) fn property_id(account: u64, n: u32) -> u64 {
    account * 1000 + u64::from(n) + 1
}

fn account_summary(index: usize, user: &GoogleUserConfig, n: u32) -> Value {
    let account = account_id(index, n);
    let properties: Vec<Value> = (0..user.properties_per_account)
        .map(|p| {
            let property = property_id(account, p);
            json!({
                "property": format!("properties/{property}"),
                "displayName": format!("Property {property}"),
                "propertyType": "PROPERTY_TYPE_ORDINARY",
                "parent": format!("accounts/{account}"),
            })
        })
        .collect();
    let mut summary = json!({
        "name": format!("accountSummaries/{account}"),
        "account": format!("accounts/{account}"),
        "displayName": format!("{} account {}", user.name, n + 1),
    });
    if !properties.is_empty() {
        summary["propertySummaries"] = json!(properties);
    }
    summary
}

/// The body of `runReport`, reduced to what the simulator reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReportRequest {
    #[serde(default)]
    date_ranges: Vec<DateRange>,
    #[serde(default)]
    dimensions: Vec<Named>,
    #[serde(default)]
    metrics: Vec<Named>,
    #[serde(default)]
    order_bys: Vec<Value>,
    #[serde(default)]
    limit: Option<Int64>,
    #[serde(default)]
    offset: Option<Int64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DateRange {
    start_date: String,
    end_date: String,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

/// An int64, which proto3 JSON writes as a string and accepts as either.
#[derive(Deserialize)]
#[serde(untagged)]
enum Int64 {
    Number(u64),
    Text(String),
}

impl Int64 {
    fn value(&self) -> Option<u64> {
        match self {
            Self::Number(n) => Some(*n),
            Self::Text(text) => text.parse().ok(),
        }
    }
}

/// `POST /analyticsdata/v1beta/properties/{id}:runReport`: one row per day
/// of the range up to today, paged by `limit`/`offset`.
async fn run_report(
    AxumState(state): AxumState<Arc<State>>,
    Path(call): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(property) = call
        .strip_suffix(":runReport")
        .and_then(|id| id.parse::<u64>().ok())
    else {
        return api_error(
            StatusCode::NOT_FOUND,
            "Requested entity was not found.",
            "NOT_FOUND",
        );
    };
    let (index, user) = match caller(&state, &headers).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let owns = (0..user.accounts).any(|n| {
        (0..user.properties_per_account).any(|p| property_id(account_id(index, n), p) == property)
    });
    if !owns {
        return api_error(
            StatusCode::FORBIDDEN,
            "User does not have sufficient permissions for this property. To learn more about \
             Property ID, see https://developers.google.com/analytics/devguides/reporting/data/v1/property-id.",
            "PERMISSION_DENIED",
        );
    }
    let request: ReportRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                &format!("Invalid JSON payload received. {error}"),
                "INVALID_ARGUMENT",
            );
        }
    };
    let today = (Utc::now() + TimeDelta::minutes(i64::from(user.utc_offset_minutes))).date_naive();
    let result = state.google(|google| {
        report(property, &request, today, &|day| {
            google.sessions(property, day)
        })
    });
    match result {
        Ok(report) => Json(report).into_response(),
        Err(message) => api_error(StatusCode::BAD_REQUEST, &message, "INVALID_ARGUMENT"),
    }
}

/// The report `request` asks of `property` on `today` (the owner's), with
/// the sessions of each day from `sessions`, or why it is invalid. Days
/// without traffic have no row.
fn report(
    property: u64,
    request: &ReportRequest,
    today: NaiveDate,
    sessions: &dyn Fn(NaiveDate) -> Option<u64>,
) -> Result<Value, String> {
    let [range] = &request.date_ranges[..] else {
        return Err("The simulator supports exactly one dateRange.".to_owned());
    };
    let start = parse_date(&range.start_date, today)?;
    let end = parse_date(&range.end_date, today)?;
    if end < start {
        return Err("The dateRange's endDate must not be before its startDate.".to_owned());
    }
    if request.dimensions.iter().any(|d| d.name != "date") {
        return Err("The simulator supports only the date dimension.".to_owned());
    }
    if let Some(unknown) = request
        .metrics
        .iter()
        .find(|m| !METRICS.contains(&m.name.as_str()))
    {
        return Err(format!("Field {} is not a valid metric.", unknown.name));
    }
    let limit = request
        .limit
        .as_ref()
        .map_or(Some(DEFAULT_LIMIT), Int64::value);
    let offset = request.offset.as_ref().map_or(Some(0), Int64::value);
    let (Some(limit), Some(offset)) = (limit, offset) else {
        return Err("limit and offset must be integers.".to_owned());
    };
    if limit == 0 || limit > MAX_LIMIT {
        return Err(format!("limit must be positive and at most {MAX_LIMIT}."));
    }
    let mut days: Vec<(NaiveDate, u64)> = start
        .iter_days()
        .take_while(|day| *day <= end.min(today))
        .filter_map(|day| Some((day, sessions(day)?)))
        .collect();
    if request.order_bys.is_empty() {
        // Without orderBys, rows come in no particular order.
        days.sort_by_key(|(day, _)| seeded_traffic(property, *day) ^ 0x5555);
    }
    let row_count = days.len();
    let rows: Vec<Value> = days
        .iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|(day, sessions)| row(*day, *sessions, &request.metrics))
        .collect();
    let mut body = json!({
        "dimensionHeaders": request.dimensions.iter().map(|d| json!({"name": d.name})).collect::<Vec<_>>(),
        "metricHeaders": request.metrics.iter().map(|m| json!({"name": m.name, "type": "TYPE_INTEGER"})).collect::<Vec<_>>(),
        "metadata": {"currencyCode": "USD", "timeZone": "Etc/UTC"},
        "kind": "analyticsData#runReport",
    });
    if !rows.is_empty() {
        body["rows"] = json!(rows);
    }
    if row_count > 0 {
        body["rowCount"] = json!(row_count);
    }
    Ok(body)
}

/// A date of a `dateRange`: `YYYY-MM-DD`, `today`, `yesterday` or `NdaysAgo`.
fn parse_date(value: &str, today: NaiveDate) -> Result<NaiveDate, String> {
    let days_ago = match value {
        "today" => Some(0),
        "yesterday" => Some(1),
        _ => value
            .strip_suffix("daysAgo")
            .and_then(|n| n.parse::<u64>().ok()),
    };
    if let Some(days) = days_ago {
        return today
            .checked_sub_days(Days::new(days))
            .ok_or_else(|| format!("Invalid date: {value}"));
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| format!("Invalid date: {value}"))
}

/// The seeded sessions of `property` on `day`: none before the first
/// day, none on every `quiet_every`th day (0: never), else a
/// deterministic number varying by day.
pub(super) fn seeded_sessions(property: u64, day: NaiveDate, quiet_every: u32) -> Option<u64> {
    let days = u64::try_from((day - first_day()).num_days()).ok()?;
    let quiet = quiet_every > 0 && (days + property).is_multiple_of(u64::from(quiet_every));
    (!quiet).then(|| seeded_traffic(property, day))
}

/// The sessions of `property` on `day`: deterministic, varying by day.
fn seeded_traffic(property: u64, day: NaiveDate) -> u64 {
    let days = u64::try_from((day - first_day()).num_days()).unwrap_or(0);
    50 + (property.wrapping_mul(31) + days.wrapping_mul(17)) % 151
}

/// The metrics of a day with `sessions` sessions: `sessions`,
/// `totalUsers` and `screenPageViews`.
pub(crate) fn metrics(sessions: u64) -> [u64; 3] {
    [sessions, sessions * 2 / 3, sessions * 3]
}

/// A report row: the date as `YYYYMMDD`, every metric as a string.
fn row(day: NaiveDate, sessions: u64, metrics: &[Named]) -> Value {
    let values: Vec<Value> = metrics
        .iter()
        .map(|metric| {
            let [sessions, users, views] = self::metrics(sessions);
            let value = match metric.name.as_str() {
                "totalUsers" => users,
                "screenPageViews" => views,
                _ => sessions,
            };
            json!({"value": value.to_string()})
        })
        .collect();
    json!({
        "dimensionValues": [{"value": day.format("%Y%m%d").to_string()}],
        "metricValues": values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(value: Value) -> ReportRequest {
        serde_json::from_value(value).unwrap()
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 10).unwrap()
    }

    fn seeded(day: NaiveDate) -> Option<u64> {
        seeded_sessions(7, day, 0)
    }

    #[test]
    fn report_pages_by_offset_with_string_metrics_and_compact_dates() {
        let page = report(
            7,
            &request(json!({
                "dateRanges": [{"startDate": "2024-01-01", "endDate": "2024-01-10"}],
                "dimensions": [{"name": "date"}],
                "metrics": [{"name": "sessions"}],
                "orderBys": [{"dimension": {"dimensionName": "date"}}],
                "limit": "4",
                "offset": 8,
            })),
            today(),
            &seeded,
        )
        .unwrap();

        assert_eq!(page["rowCount"], 10);
        let rows = page["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["dimensionValues"][0]["value"], "20240109");
        assert!(rows[0]["metricValues"][0]["value"].is_string());
    }

    #[test]
    fn an_empty_report_omits_rows_and_row_count() {
        let page = report(
            7,
            &request(json!({
                "dateRanges": [{"startDate": "2019-01-01", "endDate": "2019-01-31"}],
                "dimensions": [{"name": "date"}],
                "metrics": [{"name": "sessions"}],
            })),
            today(),
            &seeded,
        )
        .unwrap();

        assert!(page.get("rows").is_none() && page.get("rowCount").is_none());
    }

    #[test]
    fn days_without_traffic_have_no_row_and_count_in_no_total() {
        let quiet = |day: NaiveDate| seeded_sessions(7, day, 3);

        let page = report(
            7,
            &request(json!({
                "dateRanges": [{"startDate": "2024-01-01", "endDate": "2024-01-09"}],
                "dimensions": [{"name": "date"}],
                "metrics": [{"name": "sessions"}],
                "orderBys": [{"dimension": {"dimensionName": "date"}}],
            })),
            today(),
            &quiet,
        )
        .unwrap();

        assert_eq!(page["rowCount"], 6);
        let dates: Vec<_> = page["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["dimensionValues"][0]["value"].as_str().unwrap())
            .collect();
        assert!(!dates.contains(&"20240103"), "{dates:?}");
    }

    #[test]
    fn no_day_after_the_users_today_has_traffic() {
        let page = report(
            7,
            &request(json!({
                "dateRanges": [{"startDate": "2026-03-08", "endDate": "2026-03-20"}],
                "dimensions": [{"name": "date"}],
                "metrics": [{"name": "sessions"}],
            })),
            today(),
            &seeded,
        )
        .unwrap();

        assert_eq!(page["rowCount"], 3);
    }

    #[test]
    fn relative_dates_count_back_from_today() {
        let today = NaiveDate::from_ymd_opt(2024, 3, 10).unwrap();

        assert_eq!(
            parse_date("7daysAgo", today),
            Ok(NaiveDate::from_ymd_opt(2024, 3, 3).unwrap())
        );
        assert_eq!(parse_date("yesterday", today), Ok(today - Days::new(1)));
        assert!(parse_date("20240101", today).is_err());
    }

    #[test]
    fn unknown_metrics_are_invalid_arguments() {
        let result = report(
            7,
            &request(json!({
                "dateRanges": [{"startDate": "today", "endDate": "today"}],
                "metrics": [{"name": "bounces"}],
            })),
            today(),
            &seeded,
        );

        assert_eq!(
            result,
            Err("Field bounces is not a valid metric.".to_owned())
        );
    }
}
