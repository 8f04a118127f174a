//! The Marketing API's `/act_<n>/insights` at `level=account`: calendar
//! buckets of `time_increment` days over a `time_range` or `date_preset`
//! (`last_30d` and `all_days` by default), those without delivery left
//! out, so a page can be empty while `next` is present; metrics as
//! strings, `spend` in currency units; code 1 on HTTP 500 for more days
//! than the user's `insights_day_limit`.

use std::{collections::HashMap, sync::Arc};

use axum::{
    extract::{Path, Query, State as AxumState},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use chrono::{Days, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    Paged, account_number, caller, currency, fields, graph_error, graph_error_typed, may_read_ads,
    no_ads_permission,
};
use crate::state::State;

/// The insights fields the simulator knows.
const INSIGHT_FIELDS: [&str; 7] = [
    "impressions",
    "clicks",
    "spend",
    "reach",
    "account_id",
    "account_name",
    "account_currency",
];

/// The first day the seeded ad accounts delivered.
fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 1, 1).expect("a valid date")
}

/// `time_range`: `{"since": "YYYY-MM-DD", "until": "YYYY-MM-DD"}`.
#[derive(Deserialize)]
struct TimeRange {
    since: String,
    until: String,
}

/// What an insights request asks for.
struct InsightsRequest {
    since: NaiveDate,
    until: NaiveDate,
    /// Days per row.
    increment: u64,
    fields: Vec<String>,
}

/// `GET /{version}/act_<n>/insights` at `level=account`.
pub(super) async fn insights(
    AxumState(state): AxumState<Arc<State>>,
    Path((version, object)): Path<(String, String)>,
    headers: HeaderMap,
    Query(raw): Query<Vec<(String, String)>>,
) -> Response {
    let params: HashMap<String, String> = raw.iter().cloned().collect();
    let (index, user, grant, token) = match caller(&state, &headers, &params).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let owned =
        (0..user.ad_accounts).find(|n| object == format!("act_{}", account_number(index, *n)));
    let Some(n) = owned else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            Some(33),
            &format!(
                "Unsupported get request. Object with ID '{object}' does not exist, cannot be \
                 loaded due to missing permissions, or does not support this operation. Please \
                 read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
            ),
        );
    };
    if !may_read_ads(&grant) {
        return no_ads_permission();
    }
    let request = match insights_request(&params, Utc::now().date_naive()) {
        Ok(request) => request,
        Err(message) => return graph_error(StatusCode::BAD_REQUEST, 100, None, &message),
    };
    let span = (request.until - request.since).num_days() + 1;
    if user
        .insights_day_limit
        .is_some_and(|limit| span > i64::from(limit))
    {
        return graph_error_typed(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            1,
            None,
            "Please reduce the amount of data you're asking for, then retry your request",
        );
    }
    let number = account_number(index, n);
    let idle = n >= user.ad_accounts.saturating_sub(user.idle_ad_accounts);
    let buckets = buckets(&request);
    let impressions: HashMap<NaiveDate, Option<u64>> = state.meta(|meta| {
        request
            .since
            .iter_days()
            .take_while(|day| *day <= request.until)
            .map(|day| (day, meta.impressions(number, day)))
            .collect()
    });
    let impressions = |day| impressions.get(&day).copied().flatten();
    let account_name = format!("{} ad account {}", user.name, n + 1);
    let page = Paged {
        link: format!("{}/meta/{version}/{object}/insights", state.base_url),
        raw: &raw,
        token: &token,
    };
    page.respond(buckets.len(), &params, |range| {
        buckets[range]
            .iter()
            .filter(|_| !idle)
            .filter_map(|(start, end)| {
                let mut row = row(number, *start, *end, &request.fields, &impressions)?;
                for field in &request.fields {
                    let value = match field.as_str() {
                        "account_id" => json!(number.to_string()),
                        "account_name" => json!(account_name),
                        "account_currency" => json!(currency(n)),
                        _ => continue,
                    };
                    row.insert(field.clone(), value);
                }
                Some(Value::Object(row))
            })
            .collect()
    })
}

/// Reads the insights parameters against `today`.
fn insights_request(
    params: &HashMap<String, String>,
    today: NaiveDate,
) -> Result<InsightsRequest, String> {
    if params.get("level").is_some_and(|level| level != "account") {
        return Err("(#100) The simulator supports level=account only".to_owned());
    }
    let (since, until) = match (params.get("time_range"), params.get("date_preset")) {
        (Some(range), _) => {
            let range: TimeRange = serde_json::from_str(range).map_err(|_| {
                "(#100) param time_range must be a JSON object with since and until".to_owned()
            })?;
            let date = |value: &str| {
                NaiveDate::parse_from_str(value, "%Y-%m-%d")
                    .map_err(|_| format!("(#100) {value} is not a valid date (YYYY-MM-DD)"))
            };
            (date(&range.since)?, date(&range.until)?)
        }
        (None, preset) => preset_range(preset.map_or("last_30d", String::as_str), today)?,
    };
    if until < since {
        return Err("(#100) time_range's since must not be after its until".to_owned());
    }
    let increment = match params.get("time_increment").map(String::as_str) {
        None | Some("all_days") => u64::try_from((until - since).num_days() + 1).unwrap_or(1),
        Some(days) => days
            .parse::<u64>()
            .ok()
            .filter(|days| (1..=90).contains(days))
            .ok_or_else(|| {
                "(#100) time_increment must be all_days or a number of days from 1 to 90".to_owned()
            })?,
    };
    let fields = fields(
        params,
        &INSIGHT_FIELDS,
        &["impressions", "spend"],
        "AdsInsights",
    )?;
    Ok(InsightsRequest {
        since,
        until,
        increment,
        fields,
    })
}

/// The days of a `date_preset`: `today`, `yesterday`, or `last_<n>d`
/// (the `n` days before today).
fn preset_range(preset: &str, today: NaiveDate) -> Result<(NaiveDate, NaiveDate), String> {
    let invalid = || format!("(#100) date_preset {preset} is not supported by the simulator");
    match preset {
        "today" => Ok((today, today)),
        "yesterday" => Ok((today - Days::new(1), today - Days::new(1))),
        _ => {
            let days = preset
                .strip_prefix("last_")
                .and_then(|rest| rest.strip_suffix('d'))
                .and_then(|days| days.parse::<u64>().ok())
                .filter(|days| *days > 0)
                .ok_or_else(invalid)?;
            Ok((today - Days::new(days), today - Days::new(1)))
        }
    }
}

/// The calendar buckets of `request`, `[start, end]` each.
fn buckets(request: &InsightsRequest) -> Vec<(NaiveDate, NaiveDate)> {
    let mut buckets = Vec::new();
    let mut start = request.since;
    while start <= request.until {
        let end = (start + Days::new(request.increment - 1)).min(request.until);
        buckets.push((start, end));
        let Some(next) = end.succ_opt() else { break };
        start = next;
    }
    buckets
}

/// The seeded impressions of ad account `number` on `day`; `None` before
/// the first day and after today.
pub(super) fn seeded_impressions(number: u64, day: NaiveDate) -> Option<u64> {
    if day < first_day() || day > Utc::now().date_naive() {
        return None;
    }
    let days = u64::try_from((day - first_day()).num_days()).ok()?;
    Some(800 + (number.wrapping_mul(37) + days.wrapping_mul(53)) % 1_200)
}

/// One day's delivery of ad account `number` with `impressions`:
/// impressions, clicks, reach and spend in cents.
fn delivery(number: u64, day: NaiveDate, impressions: u64) -> (u64, u64, u64, u64) {
    let days = u64::try_from((day - first_day()).num_days()).unwrap_or(0);
    let clicks = impressions * (2 + (number + days) % 5) / 100;
    let reach = impressions * 7 / 10;
    let spend_cents = impressions * (3 + number % 4) / 2;
    (impressions, clicks, reach, spend_cents)
}

/// The row of `[start, end]` of ad account `number`, whose impressions
/// each day are `impressions`, with the metrics of `fields` as strings;
/// `None` when the account delivered nothing then.
fn row(
    number: u64,
    start: NaiveDate,
    end: NaiveDate,
    fields: &[String],
    impressions: &dyn Fn(NaiveDate) -> Option<u64>,
) -> Option<Map<String, Value>> {
    let days: Vec<_> = start
        .iter_days()
        .take_while(|day| *day <= end)
        .filter_map(|day| Some(delivery(number, day, impressions(day)?)))
        .collect();
    if days.is_empty() {
        return None;
    }
    let sum = |pick: fn(&(u64, u64, u64, u64)) -> u64| days.iter().map(pick).sum::<u64>();
    let spend = sum(|day| day.3);
    let mut row = Map::new();
    for field in fields {
        let value = match field.as_str() {
            "impressions" => sum(|day| day.0).to_string(),
            "clicks" => sum(|day| day.1).to_string(),
            // Unique people: fewer than the sum of the days.
            "reach" => (sum(|day| day.2) * 9 / 10).max(days[0].2).to_string(),
            "spend" => format!("{}.{:02}", spend / 100, spend % 100),
            _ => continue,
        };
        row.insert(field.clone(), json!(value));
    }
    row.insert("date_start".to_owned(), json!(start.to_string()));
    row.insert("date_stop".to_owned(), json!(end.to_string()));
    Some(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_defaults_are_last_30_days_in_one_row() {
        let today = day("2026-03-31");

        let request = insights_request(&params(&[]), today).unwrap();

        assert_eq!(
            (request.since, request.until),
            (day("2026-03-01"), day("2026-03-30"))
        );
        assert_eq!(buckets(&request).len(), 1);
        assert_eq!(request.fields, ["impressions", "spend"]);
    }

    #[test]
    fn a_daily_time_range_gives_a_bucket_per_day() {
        let request = insights_request(
            &params(&[
                (
                    "time_range",
                    r#"{"since":"2026-01-30","until":"2026-02-02"}"#,
                ),
                ("time_increment", "1"),
            ]),
            day("2026-03-31"),
        )
        .unwrap();

        let buckets = buckets(&request);
        assert_eq!(buckets.len(), 4);
        assert!(buckets.iter().all(|(start, end)| start == end));
    }

    #[test]
    fn invalid_insights_parameters_are_refused() {
        let today = day("2026-03-31");

        for bad in [
            params(&[("time_range", "2026-01-01..2026-01-02")]),
            params(&[(
                "time_range",
                r#"{"since":"2026-02-02","until":"2026-02-01"}"#,
            )]),
            params(&[("time_increment", "monthly")]),
            params(&[("fields", "impressions,bounces")]),
            params(&[("level", "ad")]),
        ] {
            assert!(insights_request(&bad, today).is_err());
        }
    }

    #[test]
    fn metrics_are_strings_and_spend_has_two_decimals() {
        let fields = ["impressions", "spend", "clicks", "reach"].map(str::to_owned);

        let seeded = |day| seeded_impressions(7, day);
        let daily = row(7, day("2024-02-01"), day("2024-02-01"), &fields, &seeded).unwrap();

        assert!(daily.values().all(Value::is_string));
        let spend = daily["spend"].as_str().unwrap();
        assert_eq!(spend.split_once('.').unwrap().1.len(), 2, "{spend}");
        assert_eq!(daily["date_start"], daily["date_stop"]);
        assert!(row(7, day("2023-12-31"), day("2023-12-31"), &fields, &seeded).is_none());
    }
}
