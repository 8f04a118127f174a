//! Google Analytics 4: properties from the Admin API (`v1beta`), daily
//! traffic from the Data API's `runReport` (`v1beta`).

use chrono::{Days, NaiveDate, Utc};
use fleet_events::ConnectorId;
use futures::{FutureExt as _, future::BoxFuture};
use serde::{Deserialize, Serialize, de::Error as _};
use serde_json::{Map, Value, json};
use url::Url;

use crate::{
    Account, Connector, Credentials, Error, Page, Record, StreamSpec,
    bearer::Api,
    catalog::{CatalogEntry, CatalogError},
    http::Http,
};

/// Display name in messages.
const PROVIDER: &str = "Google Analytics";

/// Rows per `runReport` call when the catalog entry sets no `page_size`:
/// the API's own default.
const DEFAULT_PAGE_SIZE: u32 = 10_000;

/// Account summaries per Admin API page: the most it returns (larger
/// values are silently coerced to 200).
const SUMMARIES_PAGE_SIZE: &str = "200";

/// Days a sync reads, today included. Google revises recent days for a
/// while, so each sync reads the whole window again and upserts it.
const WINDOW_DAYS: u64 = 30;

/// The metrics of `daily_metrics`, all integers.
const METRICS: [&str; 3] = ["sessions", "totalUsers", "screenPageViews"];

static STREAMS: [StreamSpec; 1] = [StreamSpec {
    name: "daily_metrics",
    description: "Sessions, users and page views per day of the last 30 days, oldest first",
    reconcile: false,
}];

/// The Google Analytics 4 connector.
///
/// Validation lists the account summaries and names the **first property**
/// the user can see, in the Admin API's order; its id
/// (`properties/123456789`) is the [`Account::id`]. A sync's first page
/// asks the Admin API again and takes the same first property, then keeps
/// it in the cursor, so every page of one sync reads one property even if
/// the user's access changes meanwhile. The sync reads the last
/// [`WINDOW_DAYS`] days, `daily_metrics` records are keyed
/// `<property number>:<YYYYMMDD>` and their payload is
/// `{"property", "date" (YYYY-MM-DD), "sessions", "totalUsers",
/// "screenPageViews"}` with the metrics as numbers.
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
struct Cursor {
    /// The property number, without `properties/`.
    property: String,
    start_date: NaiveDate,
    end_date: NaiveDate,
    /// Rows already read.
    offset: u64,
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

impl Connector for GoogleAnalytics {
    fn id(&self) -> &ConnectorId {
        &self.id
    }

    fn streams(&self) -> &[StreamSpec] {
        &STREAMS
    }

    fn validate<'a>(
        &'a self,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Account, Error>> {
        async move {
            let (account, property) = self.first_property(&self.api(credentials)?).await?;
            Ok(Account::new(
                &property.property,
                &format!("{} ({account})", property.display_name),
            ))
        }
        .boxed()
    }

    fn sync_page<'a>(
        &'a self,
        credentials: &'a Credentials,
        stream: &'a str,
        cursor: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<Page, Error>> {
        self.page(credentials, stream, cursor).boxed()
    }
}

impl GoogleAnalytics {
    fn api<'a>(&'a self, credentials: &'a Credentials) -> Result<Api<'a>, Error> {
        Ok(Api {
            http: &self.http,
            provider: PROVIDER,
            token: credentials.bearer(&self.id)?,
        })
    }

    /// The first property of the account summaries, with the display name
    /// of its account, paging until one turns up.
    async fn first_property(&self, api: &Api<'_>) -> Result<(String, PropertySummary), Error> {
        let mut page_token = None;
        loop {
            let mut url = endpoint(&self.admin_base, "v1beta/accountSummaries");
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
    }

    async fn page(
        &self,
        credentials: &Credentials,
        stream: &str,
        cursor: Option<&Value>,
    ) -> Result<Page, Error> {
        if stream != STREAMS[0].name {
            return Err(Error::UnknownStream {
                connector: self.id.clone(),
                stream: stream.to_owned(),
            });
        }
        let api = self.api(credentials)?;
        let cursor = match cursor {
            Some(cursor) => Cursor::deserialize(cursor).map_err(|source| Error::InvalidCursor {
                connector: self.id.clone(),
                source,
            })?,
            None => self.first_cursor(&api).await?,
        };
        self.report(&api, cursor).await
    }

    /// The cursor of a sync's first page: the first property, the last
    /// [`WINDOW_DAYS`] days.
    async fn first_cursor(&self, api: &Api<'_>) -> Result<Cursor, Error> {
        let (_, property) = self.first_property(api).await?;
        let end_date = Utc::now().date_naive();
        Ok(Cursor {
            property: property_number(&property.property).to_owned(),
            start_date: end_date - Days::new(WINDOW_DAYS - 1),
            end_date,
            offset: 0,
        })
    }

    /// One `runReport` page at `cursor`.
    async fn report(&self, api: &Api<'_>, cursor: Cursor) -> Result<Page, Error> {
        let url = endpoint(
            &self.data_base,
            &format!("v1beta/properties/{}:runReport", cursor.property),
        );
        let body = json!({
            "dateRanges": [{
                "startDate": cursor.start_date.to_string(),
                "endDate": cursor.end_date.to_string(),
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
            .map(|row| record(&cursor.property, &report.metric_headers, row))
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        let offset = cursor.offset + read;
        let next = (read > 0 && offset < report.row_count).then(|| {
            serde_json::to_value(Cursor { offset, ..cursor }).expect("a cursor serialises")
        });
        Ok(Page {
            records,
            next,
            total: Some(report.row_count),
            gap: None,
            bytes: 0,
        })
    }
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

/// `path` below `base`, whether or not `base` ends with `/`.
fn endpoint(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    url.path_segments_mut()
        .expect("API base URLs are http(s) URLs")
        .pop_if_empty()
        .extend(path.split('/'));
    url
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

    #[test]
    fn endpoints_join_below_a_base_with_or_without_a_slash() {
        let plain = Url::parse("http://sim.test/google/analyticsdata").unwrap();
        let slashed = Url::parse("https://analyticsdata.googleapis.com/").unwrap();

        assert_eq!(
            endpoint(&plain, "v1beta/properties/1:runReport").as_str(),
            "http://sim.test/google/analyticsdata/v1beta/properties/1:runReport"
        );
        assert_eq!(
            endpoint(&slashed, "v1beta/accountSummaries").as_str(),
            "https://analyticsdata.googleapis.com/v1beta/accountSummaries"
        );
    }

    #[test]
    fn property_prefixes_are_stripped() {
        assert_eq!(property_number("properties/123456789"), "123456789");
    }
}
