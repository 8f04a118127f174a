//! Google Analytics 4: properties from the Admin API (`v1beta`), daily
//! traffic from the Data API's `runReport` (`v1beta`).

use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, TimeDelta, Utc};
use fleet_events::ConnectorId;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize, de::Error as _};
use serde_json::{Map, Value, json};
use url::Url;

use crate::{
    Account, Credentials, Error, Page, Record, StreamSpec,
    catalog::{CatalogEntry, CatalogError},
    http::{self, Classify, Failure, Http},
    providers::{self, Provider, bearer::Api, window},
    text::plain_text,
};

/// Display name in messages.
const PROVIDER: &str = "Google Analytics";

/// Rows per `runReport` call when the catalog entry sets no `page_size`:
/// the API's own default.
const DEFAULT_PAGE_SIZE: u32 = 10_000;

/// Account summaries per Admin API page: the most it returns (larger
/// values are silently coerced to 200).
const SUMMARIES_PAGE_SIZE: &str = "200";

/// Days of the property's calendar a full pass reads, its today
/// included.
const WINDOW_DAYS: u64 = 30;

/// Days before the last pass that an incremental pass reads again: Google
/// processes a day's data for up to about two days after it and revises
/// the day's figures meanwhile, so three days stay open.
const REVISION_DAYS: u64 = 3;

/// How long to wait after an hourly quota (or an unnamed one) is
/// exhausted: Google refreshes hourly quotas "within an hour" and sends no
/// `Retry-After`.
const HOURLY_QUOTA_WAIT: Duration = Duration::from_secs(60 * 60);

/// The UTC offset of the Pacific time at whose midnight Google refreshes
/// daily quotas: standard time (UTC−8), which is the later midnight while
/// daylight saving time (UTC−7) is in effect, so the wait is at most an
/// hour too long and never too short.
const PACIFIC_STANDARD_HOURS: i64 = -8;

/// The metrics of `daily_metrics`, all integers.
const METRICS: [&str; 3] = ["sessions", "totalUsers", "screenPageViews"];

static STREAMS: [StreamSpec; 1] = [StreamSpec {
    name: "daily_metrics",
    description: "Sessions, users and page views per day of the last 30 days (the property's \
                  calendar), oldest first; days without traffic have no record",
    reconcile: false,
}];

/// The Google Analytics 4 connector.
///
/// Validation lists the account summaries and names the **first property**
/// the user can see, in the Admin API's order; its id
/// (`properties/123456789`) is the [`Account::id`]. A sync's first page
/// asks the Admin API again and takes the same first property, then keeps
/// it in the cursor, so every page of one sync reads one property even if
/// the user's access changes meanwhile. `daily_metrics` records are keyed
/// `<property number>:<YYYYMMDD>` and their payload is
/// `{"property", "date" (YYYY-MM-DD), "sessions", "totalUsers",
/// "screenPageViews"}` with the metrics as numbers.
///
/// # Day windows
///
/// Report dates are days of the property's reporting time zone, which the
/// connector does not know. A report asks from a fixed `startDate` to
/// `endDate: "today"`, which Google resolves in the property's time zone,
/// so the last day read is the property's today wherever it is (a fixed
/// UTC date would miss the today of properties east of UTC and ask for a
/// future day west of it), and days added at the end while a pass pages
/// cannot shift the offsets of the rows before them. The start is a UTC
/// date one day earlier than the property's calendar needs, because a
/// property's today is at most one day before UTC's:
///
/// - a full pass starts [`WINDOW_DAYS`] days before UTC's today, so it
///   reads at least the property's last 30 days (31 for a property on UTC);
/// - an incremental pass (see [`Connector::incremental_start`]) starts
///   [`REVISION_DAYS`] days before the UTC date of the last pass, one day
///   earlier again, and no more than [`MAX_LOOKBACK_DAYS`] back: it reads
///   every day that changed or was still being revised since.
///
/// Days without traffic have no row in a report, and so no record: a
/// missing day is neither an error nor a deletion. Days that leave the
/// window stay stored as they were last read (the stream does not
/// reconcile).
///
/// # Quotas
///
/// An exhausted quota is a 429 `RESOURCE_EXHAUSTED` whose message names
/// the quota, without `Retry-After`. The call is not retried at once: a
/// daily quota waits for the next midnight, Pacific time; an hourly (or
/// unnamed) one waits an hour; only the concurrent-requests quota, which
/// frees up within seconds, is retried after the usual short backoff.
///
/// [`Connector::incremental_start`]: crate::Connector::incremental_start
/// [`MAX_LOOKBACK_DAYS`]: window::MAX_LOOKBACK_DAYS
#[derive(Debug)]
pub(crate) struct GoogleAnalytics {
    id: ConnectorId,
    admin_base: Url,
    data_base: Url,
    page_size: u32,
    http: Http,
}

impl GoogleAnalytics {
    /// The connector of catalog entry `entry`, which must declare the
    /// `admin` and `data` API base URLs.
    pub(crate) fn new(entry: &CatalogEntry, http: Http) -> Result<Self, CatalogError> {
        let base = |role| {
            entry
                .api_base_url(role)
                .cloned()
                .ok_or_else(|| CatalogError::Invalid {
                    id: entry.id.to_string(),
                    problem: "needs api_base_urls.admin and api_base_urls.data",
                })
        };
        Ok(Self {
            id: entry.id.clone(),
            admin_base: base("admin")?,
            data_base: base("data")?,
            page_size: entry.page_size.unwrap_or(DEFAULT_PAGE_SIZE),
            http,
        })
    }
}

/// Where a `daily_metrics` sync stands.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Cursor {
    /// The property number, without `properties/`; `None` until the first
    /// page of the pass looks it up.
    #[serde(default)]
    property: Option<String>,
    start_date: NaiveDate,
    /// The last day; `None` for the property's today (`"today"`). Cursors
    /// written before the window followed the property's calendar carry a
    /// UTC date.
    #[serde(default)]
    end_date: Option<NaiveDate>,
    /// Rows already read.
    offset: u64,
}

impl Cursor {
    /// The first cursor of a pass from `start_date` to the property's
    /// today.
    fn from(start_date: NaiveDate) -> Self {
        Self {
            property: None,
            start_date,
            end_date: None,
            offset: 0,
        }
    }
}

/// The first day a full pass at `now` reads: [`WINDOW_DAYS`] before UTC's
/// today, which is at least the property's today minus
/// `WINDOW_DAYS - 1` in every time zone.
fn full_start(now: DateTime<Utc>) -> NaiveDate {
    now.date_naive() - Days::new(WINDOW_DAYS)
}

/// The first day an incremental pass at `now` reads when the last
/// complete pass began at `since`: [`REVISION_DAYS`] before the property's
/// date of `since` (at least one day before its UTC date), at most
/// [`MAX_LOOKBACK_DAYS`] back, and never after UTC's yesterday (a clock
/// ahead of the fleet's must not make the range empty).
///
/// [`MAX_LOOKBACK_DAYS`]: window::MAX_LOOKBACK_DAYS
fn incremental_start(since: DateTime<Utc>, now: DateTime<Utc>) -> NaiveDate {
    window::reopened_since(since, now, REVISION_DAYS + 1)
}

/// A page of `accountSummaries.list`. Proto3 JSON omits empty lists, and
/// `nextPageToken` is absent on the last page.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Summaries {
    #[serde(default)]
    account_summaries: Vec<AccountSummary>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountSummary {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    property_summaries: Vec<PropertySummary>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PropertySummary {
    /// `properties/123456789`.
    property: String,
    #[serde(default)]
    display_name: String,
}

/// A `runReport` answer. `rows` and `rowCount` are omitted when empty;
/// `rowCount` is the total over all pages.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    #[serde(default)]
    metric_headers: Vec<Header>,
    #[serde(default)]
    rows: Vec<Row>,
    #[serde(default)]
    row_count: u64,
}

#[derive(Deserialize)]
struct Header {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    dimension_values: Vec<Cell>,
    metric_values: Vec<Cell>,
}

/// Every value comes as a string, numbers included.
#[derive(Deserialize)]
struct Cell {
    value: String,
}

impl Provider for GoogleAnalytics {
    type Cursor = Cursor;
    const STREAMS: &'static [StreamSpec] = &STREAMS;

    fn id(&self) -> &ConnectorId {
        &self.id
    }

    async fn validate(&self, credentials: &Credentials) -> Result<Account, Error> {
        let (account, property) = self.first_property(&self.api(credentials)?).await?;
        Ok(Account::new(
            &property.property,
            &format!("{} ({account})", property.display_name),
        ))
    }

    fn first(&self, _stream: &StreamSpec) -> Cursor {
        Cursor::from(full_start(Utc::now()))
    }

    fn incremental(&self, _stream: &StreamSpec, since: DateTime<Utc>) -> Option<Cursor> {
        Some(Cursor::from(incremental_start(since, Utc::now())))
    }

    async fn page(
        &self,
        credentials: &Credentials,
        _stream: &StreamSpec,
        mut cursor: Cursor,
    ) -> Result<Page, Error> {
        let api = self.api(credentials)?;
        let property = match cursor.property.take() {
            Some(property) => property,
            None => {
                let (_, property) = self.first_property(&api).await?;
                property_number(&property.property).to_owned()
            }
        };
        self.report(&api, property, cursor).await
    }
}

impl GoogleAnalytics {
    fn api<'a>(&'a self, credentials: &'a Credentials) -> Result<Api<'a>, Error> {
        Ok(Api::new(&self.http, self, credentials.bearer(&self.id)?))
    }

    /// The first property of the account summaries, with the display name
    /// of its account, paging until one turns up, for at most
    /// [`MAX_EMPTY_LISTING_PAGES`](providers::MAX_EMPTY_LISTING_PAGES) pages.
    async fn first_property(&self, api: &Api<'_>) -> Result<(String, PropertySummary), Error> {
        let mut page_token = None;
        for _ in 0..providers::MAX_EMPTY_LISTING_PAGES {
            let mut url = http::endpoint(&self.admin_base, "v1beta/accountSummaries");
            url.query_pairs_mut()
                .append_pair("pageSize", SUMMARIES_PAGE_SIZE)
                .extend_pairs(page_token.iter().map(|token| ("pageToken", token)));
            let page: Summaries = api.get(&url).await?;
            let first = page.account_summaries.into_iter().find_map(|account| {
                let property = account.property_summaries.into_iter().next()?;
                Some((account.display_name, property))
            });
            if let Some(first) = first {
                return Ok(first);
            }
            let Some(next) = page.next_page_token.filter(|token| !token.is_empty()) else {
                return Err(Error::NoAnalyticsProperty);
            };
            page_token = Some(next);
        }
        tracing::warn!(
            pages = providers::MAX_EMPTY_LISTING_PAGES,
            "Google Analytics listed account summaries without a property page after page; \
             giving up."
        );
        Err(Error::NoAnalyticsProperty)
    }

    /// One `runReport` page of `property` at `cursor`.
    async fn report(&self, api: &Api<'_>, property: String, cursor: Cursor) -> Result<Page, Error> {
        let url = http::endpoint(
            &self.data_base,
            &format!("v1beta/properties/{property}:runReport"),
        );
        let end_date = cursor
            .end_date
            .map_or_else(|| "today".to_owned(), |date| date.to_string());
        let body = json!({
            "dateRanges": [{
                "startDate": cursor.start_date.to_string(),
                "endDate": end_date,
            }],
            "dimensions": [{"name": "date"}],
            "metrics": METRICS.map(|name| json!({"name": name})),
            "orderBys": [{"dimension": {"dimensionName": "date"}}],
            "limit": self.page_size.to_string(),
            "offset": cursor.offset.to_string(),
        });
        let report: Report = api.post(&url, &body).await?;
        let invalid = |source: serde_json::Error| Error::invalid_response(PROVIDER, &url, &source);
        let read = report.rows.len() as u64;
        let records = report
            .rows
            .iter()
            .map(|row| record(&property, &report.metric_headers, row))
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        let offset = cursor.offset + read;
        let next = (read > 0 && offset < report.row_count).then(|| {
            let next = Cursor {
                property: Some(property),
                offset,
                ..cursor
            };
            providers::encode(&next)
        });
        Ok(Page {
            records,
            next,
            total: Some(report.row_count),
            ..Page::finished()
        })
    }
}

impl Classify for GoogleAnalytics {
    fn provider(&self) -> &str {
        PROVIDER
    }

    fn recognise(&self, failure: &Failure<'_>) -> Option<Error> {
        quota_error(failure)
    }
}

/// Reads an exhausted quota: a 429 with Google's error envelope
/// `{"error": {"code": 429, "message": "Exhausted property tokens per
/// hour…", "status": "RESOURCE_EXHAUSTED"}}`, which waits for the quota
/// window the message names (see [`quota_wait`]). `None` for anything
/// else, which the generic mapping reads.
fn quota_error(failure: &Failure<'_>) -> Option<Error> {
    #[derive(Deserialize)]
    struct Body {
        error: Envelope,
    }
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(default)]
        message: String,
        #[serde(default)]
        status: Option<String>,
    }

    if failure.status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let Body { error } = serde_json::from_slice(failure.body).ok()?;
    Some(Error::Throttled {
        provider: PROVIDER.to_owned(),
        code: crate::text::code(error.status.as_deref().unwrap_or("RESOURCE_EXHAUSTED")),
        retry_after: quota_wait(&error.message, Utc::now()),
        message: plain_text(&error.message),
    })
}

/// How long to wait after the quota `message` names was exhausted at
/// `now`. Google's quota buckets differ only in the message text:
///
/// - "… per day": until the next midnight, Pacific time, when daily
///   quotas refresh (taken at UTC−8; see [`PACIFIC_STANDARD_HOURS`]);
/// - "… concurrent …": no wait beyond the usual backoff (`None`), as
///   requests in flight finish within seconds;
/// - "… per hour" and anything else: [`HOURLY_QUOTA_WAIT`].
fn quota_wait(message: &str, now: DateTime<Utc>) -> Option<Duration> {
    let message = message.to_ascii_lowercase();
    if message.contains("concurrent") {
        return None;
    }
    if !message.contains("per day") {
        return Some(HOURLY_QUOTA_WAIT);
    }
    let offset = TimeDelta::hours(PACIFIC_STANDARD_HOURS);
    let tomorrow = (now + offset).date_naive() + Days::new(1);
    let midnight = tomorrow.and_time(NaiveTime::MIN).and_utc() - offset;
    (midnight - now).to_std().ok()
}

/// A report row as a record: the date and the metrics by header name,
/// numbers parsed from their strings.
fn record(property: &str, headers: &[Header], row: &Row) -> Result<Record, serde_json::Error> {
    let [date] = &row.dimension_values[..] else {
        return Err(serde_json::Error::custom(
            "a row without exactly one dimension value",
        ));
    };
    let day = NaiveDate::parse_from_str(&date.value, "%Y%m%d")
        .map_err(|_| serde_json::Error::custom(format!("date {:?} is not YYYYMMDD", date.value)))?;
    if headers.len() != row.metric_values.len() {
        return Err(serde_json::Error::custom(
            "a row whose metric values do not match the metric headers",
        ));
    }
    let mut payload = Map::new();
    payload.insert(
        "property".to_owned(),
        json!(format!("properties/{property}")),
    );
    payload.insert("date".to_owned(), json!(day.to_string()));
    for (header, cell) in headers.iter().zip(&row.metric_values) {
        let value: u64 = cell.value.trim().parse().map_err(|_| {
            serde_json::Error::custom(format!(
                "metric {} is {:?}, not an integer",
                header.name, cell.value
            ))
        })?;
        payload.insert(header.name.clone(), json!(value));
    }
    Ok(Record {
        external_id: format!("{property}:{}", date.value),
        payload: Value::Object(payload),
        updated_at: None,
    })
}

/// `properties/123` as `123`.
fn property_number(resource: &str) -> &str {
    resource.strip_prefix("properties/").unwrap_or(resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(value: Value) -> Report {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn rows_become_records_with_parsed_metrics() {
        let report = report(json!({
            "metricHeaders": [{"name": "sessions", "type": "TYPE_INTEGER"}, {"name": "totalUsers", "type": "TYPE_INTEGER"}],
            "rows": [{"dimensionValues": [{"value": "20240101"}], "metricValues": [{"value": "152"}, {"value": "98"}]}],
            "rowCount": 1,
        }));
        let record = record("123", &report.metric_headers, &report.rows[0]).unwrap();

        assert_eq!(record.external_id, "123:20240101");
        assert_eq!(
            record.payload,
            json!({"property": "properties/123", "date": "2024-01-01", "sessions": 152, "totalUsers": 98})
        );
    }

    #[test]
    fn an_empty_report_omits_rows_and_row_count() {
        let report = report(
            json!({"metricHeaders": [{"name": "sessions"}], "kind": "analyticsData#runReport"}),
        );

        assert!(report.rows.is_empty());
        assert_eq!(report.row_count, 0);
    }

    #[test]
    fn a_non_numeric_metric_or_iso_date_is_refused() {
        let headers = [Header {
            name: "sessions".to_owned(),
        }];
        let row = |date: &str, value: &str| Row {
            dimension_values: vec![Cell {
                value: date.to_owned(),
            }],
            metric_values: vec![Cell {
                value: value.to_owned(),
            }],
        };

        assert!(record("1", &headers, &row("20240101", "many")).is_err());
        assert!(record("1", &headers, &row("2024-01-01", "1")).is_err());
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_full_pass_starts_thirty_days_before_utc_today_across_month_ends() {
        // The property's today is 2026-02-28 west of UTC, 2026-03-01 on
        // UTC, 2026-03-02 far east: its 30 days start at 2026-01-30 at the
        // earliest.
        assert_eq!(full_start(at("2026-03-01T00:30:00Z")), day("2026-01-30"));
        assert_eq!(full_start(at("2026-03-31T23:59:59Z")), day("2026-03-01"));
        assert_eq!(full_start(at("2024-03-01T12:00:00Z")), day("2024-01-31"));
        assert_eq!(full_start(at("2027-01-01T00:00:00Z")), day("2026-12-02"));
    }

    #[test]
    fn an_incremental_pass_reopens_the_revised_days_before_the_last_pass() {
        let now = at("2026-03-02T06:00:00Z");

        assert_eq!(
            incremental_start(at("2026-03-01T23:00:00Z"), now),
            day("2026-02-25")
        );
        assert_eq!(
            incremental_start(at("2025-01-01T00:00:00Z"), now),
            day("2025-03-02"),
            "at most a year back"
        );
        assert_eq!(
            incremental_start(at("2026-03-09T00:00:00Z"), now),
            day("2026-03-01"),
            "a last pass in the future still reads up to today"
        );
    }

    #[test]
    fn a_daily_quota_waits_for_midnight_pacific_standard_time() {
        // 2026-03-02 07:00 UTC is 2026-03-01 23:00 at UTC-8.
        let wait = quota_wait(
            "Exhausted property tokens per day for a property.",
            at("2026-03-02T07:00:00Z"),
        );

        assert_eq!(wait, Some(Duration::from_secs(60 * 60)));
        assert_eq!(
            quota_wait(
                "Exhausted property tokens per day.",
                at("2026-03-02T09:00:00Z")
            ),
            Some(Duration::from_secs(23 * 60 * 60))
        );
    }

    #[test]
    fn hourly_and_unnamed_quotas_wait_an_hour_and_concurrency_does_not() {
        let now = at("2026-03-02T09:00:00Z");

        assert_eq!(
            quota_wait(
                "Exhausted property tokens per hour for a project per property.",
                now
            ),
            Some(HOURLY_QUOTA_WAIT)
        );
        assert_eq!(quota_wait("Quota exceeded.", now), Some(HOURLY_QUOTA_WAIT));
        assert_eq!(
            quota_wait("Exhausted concurrent requests for a property.", now),
            None
        );
    }

    #[test]
    fn old_cursors_with_a_utc_end_date_still_read() {
        let old: Cursor = serde_json::from_value(json!({
            "property": "123", "start_date": "2026-02-01", "end_date": "2026-03-02", "offset": 7
        }))
        .unwrap();

        assert_eq!(old.property.as_deref(), Some("123"));
        assert_eq!(old.end_date, Some(day("2026-03-02")));
    }

    #[test]
    fn property_prefixes_are_stripped() {
        assert_eq!(property_number("properties/123456789"), "123456789");
    }
}
