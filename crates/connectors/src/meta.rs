//! Meta's Marketing API, on the Graph API: who a token belongs to, and the
//! daily insights of the user's ad accounts.

use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use fleet_events::ConnectorId;
use futures::{FutureExt as _, future::BoxFuture};
use reqwest::{StatusCode, header::HeaderMap};
use serde::{Deserialize, Serialize, de::Error as _};
use serde_json::{Map, Value, json};
use url::Url;

use crate::{
    Account, Connector, Credentials, Error, Page, Record, StreamSpec,
    bearer::{Api, Failure},
    catalog::{CatalogEntry, CatalogError},
    http::{self, Http},
    wp::plain_text,
};

/// Display name in messages.
const PROVIDER: &str = "Meta";

/// Days a sync reads, ending yesterday (UTC). Meta revises recent days
/// (late conversions, spend corrections), so each sync reads the whole
/// window again and upserts it.
const WINDOW_DAYS: u64 = 30;

/// The insights fields of `ad_insights`.
const FIELDS: &str = "impressions,clicks,spend,reach";

/// The integer metrics among [`FIELDS`]; `spend` is a decimal amount in
/// the account's currency.
const COUNTS: [&str; 3] = ["impressions", "clicks", "reach"];

/// The ad-account fields a sync keeps.
const ACCOUNT_FIELDS: &str = "id,account_id,name,currency";

/// How long to wait when `X-App-Usage` shows the app at its limit. The
/// header carries percentages of a rolling one-hour window and no time to
/// wait; this is a first wait, and the worker backs off further when the
/// next attempt is throttled again.
const APP_USAGE_WAIT: Duration = Duration::from_secs(5 * 60);

static STREAMS: [StreamSpec; 1] = [StreamSpec {
    name: "ad_insights",
    description: "Impressions, clicks, spend and reach per ad account and day of the last 30 days \
                  (yesterday included)",
    reconcile: false,
}];

/// The Meta Ads connector.
///
/// Validation asks `GET /me?fields=id,name`; the user id is the
/// [`Account::id`]. `ad_insights` lists the user's ad accounts
/// (`/me/adaccounts`), then reads each account's insights
/// (`/act_<n>/insights`, `level=account`, `time_increment=1`) for the last
/// [`WINDOW_DAYS`] days ending yesterday (UTC). Records are keyed
/// `act_<n>:<YYYY-MM-DD>`; the payload is Meta's row as sent (metrics are
/// strings, `spend` in currency units) plus `account`, `account_name`,
/// `currency`, `date` and `numbers` (the metrics parsed: integers, and
/// `spend` as a number). Days without delivery have no row, so they have
/// no record.
///
/// Both listings are cursor-paged. Only `paging.next` says there is
/// another page (the last page still carries `paging.cursors`), and a page
/// may be empty while `next` is present. The `after` cursor is kept in the
/// sync cursor, never the `next` URL, which carries the access token.
#[derive(Debug)]
pub(crate) struct Meta {
    id: ConnectorId,
    graph: Url,
    page_size: Option<u32>,
    http: Http,
}

impl Meta {
    /// The connector of catalog entry `entry`, which must declare the
    /// `graph` API base URL (with its version, `…/v22.0`).
    pub(crate) fn new(entry: &CatalogEntry, http: Http) -> Result<Self, CatalogError> {
        let graph = entry
            .api_base_url("graph")
            .cloned()
            .ok_or_else(|| CatalogError::Invalid {
                id: entry.id.to_string(),
                problem: "needs api_base_urls.graph",
            })?;
        Ok(Self {
            id: entry.id.clone(),
            graph,
            page_size: entry.page_size,
            http,
        })
    }
}

/// Where an `ad_insights` sync stands.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    since: NaiveDate,
    until: NaiveDate,
    /// The ad accounts of the listing page read last that are not done,
    /// the current one first.
    accounts: Vec<AdAccount>,
    /// `after` of the next listing page; `None` once the listing is read.
    accounts_after: Option<String>,
    /// `after` of the current account's next insights page; `None` for
    /// its first page.
    after: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AdAccount {
    /// `act_<n>`.
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    currency: Option<String>,
}

/// A page of a Graph list.
#[derive(Deserialize)]
struct List<T> {
    #[serde(default = "Vec::new")]
    data: Vec<T>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Deserialize)]
struct Paging {
    #[serde(default)]
    cursors: Option<Cursors>,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
struct Cursors {
    #[serde(default)]
    after: Option<String>,
}

impl Paging {
    /// The `after` cursor of the next page, if there is one. Only `next`
    /// says there is; the cursor comes from its query, else from
    /// `cursors.after`.
    fn next_after(self) -> Option<String> {
        let next = self.next?;
        let after = Url::parse(&next)
            .ok()
            .and_then(|url| {
                url.query_pairs()
                    .find(|(name, _)| name == "after")
                    .map(|(_, value)| value.into_owned())
            })
            .or_else(|| self.cursors.and_then(|cursors| cursors.after))
            .filter(|after| !after.is_empty());
        if after.is_none() {
            tracing::warn!("Meta announced a next page without an after cursor; stopping there.");
        }
        after
    }
}

/// `GET /me`.
#[derive(Deserialize)]
struct Me {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

impl Connector for Meta {
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
            let mut url = http::endpoint(&self.graph, "me");
            url.query_pairs_mut().append_pair("fields", "id,name");
            let me: Me = self.get(&self.api(credentials)?, &url).await?;
            Ok(Account::new(&me.id, me.name.as_deref().unwrap_or_default()))
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

impl Meta {
    fn api<'a>(&'a self, credentials: &'a Credentials) -> Result<Api<'a>, Error> {
        Ok(Api {
            http: &self.http,
            provider: PROVIDER,
            token: credentials.bearer(&self.id)?,
        })
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        api: &Api<'_>,
        url: &Url,
    ) -> Result<T, Error> {
        api.get_with(url, &HeaderMap::new(), &api_error).await
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
        let mut cursor = match cursor {
            Some(cursor) => Cursor::deserialize(cursor).map_err(|source| Error::InvalidCursor {
                connector: self.id.clone(),
                source,
            })?,
            None => self.first_cursor(&api).await?,
        };
        if cursor.accounts.is_empty() {
            self.list_accounts(&api, &mut cursor).await?;
        }
        let Some(account) = cursor.accounts.first() else {
            return Ok(Page::finished());
        };
        let (records, after) = self.insights(&api, &cursor, account).await?;
        cursor.after = after;
        if cursor.after.is_none() {
            cursor.accounts.remove(0);
        }
        let finished = cursor.accounts.is_empty() && cursor.accounts_after.is_none();
        let next =
            (!finished).then(|| serde_json::to_value(&cursor).expect("a Meta cursor serialises"));
        Ok(Page {
            records,
            next,
            total: None,
            gap: None,
            bytes: 0,
        })
    }

    /// The cursor of a sync's first page: the window ending yesterday and
    /// the first listing page that has an ad account.
    async fn first_cursor(&self, api: &Api<'_>) -> Result<Cursor, Error> {
        let until = Utc::now().date_naive() - Days::new(1);
        let mut cursor = Cursor {
            since: until - Days::new(WINDOW_DAYS - 1),
            until,
            accounts: Vec::new(),
            accounts_after: None,
            after: None,
        };
        self.read_listing(api, &mut cursor).await?;
        if cursor.accounts.is_empty() {
            self.list_accounts(api, &mut cursor).await?;
        }
        Ok(cursor)
    }

    /// Reads listing pages from `cursor.accounts_after` on until one has an
    /// ad account or the listing ends.
    async fn list_accounts(&self, api: &Api<'_>, cursor: &mut Cursor) -> Result<(), Error> {
        while cursor.accounts.is_empty() && cursor.accounts_after.is_some() {
            self.read_listing(api, cursor).await?;
        }
        Ok(())
    }

    /// Reads the listing page at `cursor.accounts_after` into `cursor`.
    async fn read_listing(&self, api: &Api<'_>, cursor: &mut Cursor) -> Result<(), Error> {
        let mut url = http::endpoint(&self.graph, "me/adaccounts");
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("fields", ACCOUNT_FIELDS);
            self.page_params(&mut query, cursor.accounts_after.as_deref());
        }
        let page: List<AdAccount> = self.get(api, &url).await?;
        cursor.accounts = page.data;
        cursor.accounts_after = page.paging.and_then(Paging::next_after);
        Ok(())
    }

    /// One insights page of `account` at `cursor`: its records and the
    /// `after` of the next page.
    async fn insights(
        &self,
        api: &Api<'_>,
        cursor: &Cursor,
        account: &AdAccount,
    ) -> Result<(Vec<Record>, Option<String>), Error> {
        let path = format!("{}/insights", act_id(&account.id));
        let mut url = http::endpoint(&self.graph, &path);
        {
            let time_range = json!({"since": cursor.since, "until": cursor.until});
            let mut query = url.query_pairs_mut();
            query
                .append_pair("level", "account")
                .append_pair("time_increment", "1")
                .append_pair("fields", FIELDS)
                .append_pair("time_range", &time_range.to_string());
            self.page_params(&mut query, cursor.after.as_deref());
        }
        let page: List<Map<String, Value>> = self.get(api, &url).await?;
        let records = page
            .data
            .into_iter()
            .map(|row| record(account, row))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| Error::invalid_response(PROVIDER, &url, &source))?;
        Ok((records, page.paging.and_then(Paging::next_after)))
    }

    fn page_params(
        &self,
        query: &mut url::form_urlencoded::Serializer<'_, url::UrlQuery<'_>>,
        after: Option<&str>,
    ) {
        if let Some(limit) = self.page_size {
            query.append_pair("limit", &limit.to_string());
        }
        if let Some(after) = after {
            query.append_pair("after", after);
        }
    }
}

/// `act_<n>`, from an ad account id with or without its prefix.
fn act_id(id: &str) -> String {
    if id.starts_with("act_") {
        id.to_owned()
    } else {
        format!("act_{id}")
    }
}

/// An insights row of `account` as a record.
fn record(account: &AdAccount, mut row: Map<String, Value>) -> Result<Record, serde_json::Error> {
    let Some(date) = row.get("date_start").and_then(Value::as_str) else {
        return Err(serde_json::Error::custom(
            "an insights row without date_start",
        ));
    };
    let day = NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|_| serde_json::Error::custom(format!("date_start {date:?} is not YYYY-MM-DD")))?;
    let mut numbers = Map::new();
    for (name, value) in &row {
        let integer = COUNTS.contains(&name.as_str());
        if !integer && name != "spend" {
            continue;
        }
        numbers.insert(name.clone(), number(name, value, integer)?);
    }
    let account_id = act_id(&account.id);
    row.insert("account".to_owned(), json!(account_id));
    row.insert("account_name".to_owned(), json!(account.name));
    row.insert("currency".to_owned(), json!(account.currency));
    row.insert("date".to_owned(), json!(day.to_string()));
    row.insert("numbers".to_owned(), Value::Object(numbers));
    Ok(Record {
        external_id: format!("{account_id}:{day}"),
        payload: Value::Object(row),
        updated_at: None,
    })
}

/// A metric as a number: Meta sends strings ("1523", "12.34").
fn number(name: &str, value: &Value, integer: bool) -> Result<Value, serde_json::Error> {
    let invalid = || serde_json::Error::custom(format!("metric {name} is {value}, not a number"));
    let text = match value {
        Value::String(text) => text.trim().to_owned(),
        Value::Number(number) => number.to_string(),
        _ => return Err(invalid()),
    };
    if integer {
        text.parse::<u64>().map(Value::from).map_err(|_| invalid())
    } else {
        text.parse::<f64>()
            .ok()
            .filter(|amount| amount.is_finite())
            .map(Value::from)
            .ok_or_else(invalid)
    }
}

/// The body of a failed Graph API call: `{"error": {…}}`.
#[derive(Deserialize)]
pub(crate) struct GraphErrorBody {
    pub(crate) error: GraphError,
}

/// A Graph API error: `{"message", "type", "code", "error_subcode",
/// "fbtrace_id", "is_transient"}`.
#[derive(Deserialize)]
pub(crate) struct GraphError {
    #[serde(default)]
    message: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    code: i64,
    #[serde(default)]
    error_subcode: Option<i64>,
    #[serde(default)]
    is_transient: bool,
}

/// What a Graph error code means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meaning {
    /// Code 190 (and the old 102): the token expired (subcode 463), was
    /// invalidated or cannot be parsed.
    TokenRejected,
    /// Throttling: app (4), user (17), page (32), call-type (613) and
    /// business-use-case (80000–80014) limits.
    Throttled,
    /// A missing permission: 10 and 200–299.
    PermissionDenied,
    /// "Service temporarily unavailable" (2), or anything Meta flags with
    /// `is_transient`.
    Transient,
    /// Anything else, such as 100 (invalid parameter).
    Other,
}

impl GraphError {
    fn meaning(&self) -> Meaning {
        match self.code {
            102 | 190 => Meaning::TokenRejected,
            4 | 17 | 32 | 613 | 80_000..=80_014 => Meaning::Throttled,
            10 | 200..=299 => Meaning::PermissionDenied,
            2 => Meaning::Transient,
            _ if self.is_transient => Meaning::Transient,
            _ => Meaning::Other,
        }
    }

    /// The code for messages: `OAuthException 190/463`.
    fn code_text(&self) -> String {
        let kind = crate::text::code(self.kind.as_deref().unwrap_or("GraphError"));
        match self.error_subcode {
            Some(subcode) => format!("{kind} {}/{subcode}", self.code),
            None => format!("{kind} {}", self.code),
        }
    }
}

/// Reads a failed Graph API response (see [`Meaning`]). `None` for bodies
/// that are not Graph errors, and for unrecognised codes on 5xx, which
/// the generic mapping retries.
fn api_error(failure: &Failure<'_>) -> Option<Error> {
    let GraphErrorBody { error } = serde_json::from_slice(failure.body).ok()?;
    let provider = failure.provider.to_owned();
    let message = plain_text(&error.message);
    Some(match error.meaning() {
        Meaning::TokenRejected => Error::AccessTokenRejected { provider, message },
        Meaning::Throttled => Error::Throttled {
            provider,
            code: error.code_text(),
            message,
            retry_after: usage_wait(failure.headers),
        },
        Meaning::PermissionDenied => Error::PermissionDenied {
            provider,
            code: error.code_text(),
            message,
        },
        Meaning::Transient => Error::Unavailable {
            provider,
            site: http::display_url(failure.url),
            status: failure.status.as_u16(),
            retry_after: None,
        },
        Meaning::Other if http::is_transient(failure.status) => return None,
        Meaning::Other => Error::Rejected {
            provider,
            url: http::display_url(failure.url),
            status: failure.status.as_u16(),
            code: error.code_text(),
            message,
        },
    })
}

/// The error for a Graph error from Meta's token endpoint (the code
/// exchange and `fb_exchange_token`). A rejected token (190) and an
/// invalid or used authorization code (100 with subcode 36007 or 36009)
/// are `invalid_grant`: the user has to connect again. `redact` blanks
/// the request's secrets out of Meta's message.
pub(crate) fn token_endpoint_error(
    provider: &str,
    url: &Url,
    status: StatusCode,
    headers: &HeaderMap,
    error: &GraphError,
    redact: &dyn Fn(&str) -> String,
) -> Error {
    let message = redact(&plain_text(&redact(&error.message)));
    let dead_code = error.code == 100 && matches!(error.error_subcode, Some(36_007 | 36_009));
    let code = match error.meaning() {
        Meaning::TokenRejected => "invalid_grant".to_owned(),
        _ if dead_code => "invalid_grant".to_owned(),
        Meaning::Throttled => {
            return Error::Throttled {
                provider: provider.to_owned(),
                code: error.code_text(),
                message,
                retry_after: usage_wait(headers),
            };
        }
        Meaning::Transient => {
            return Error::Unavailable {
                provider: provider.to_owned(),
                site: http::display_url(url),
                status: status.as_u16(),
                retry_after: None,
            };
        }
        Meaning::PermissionDenied | Meaning::Other => error.code_text(),
    };
    Error::TokenEndpoint {
        provider: provider.to_owned(),
        url: http::display_url(url),
        status: status.as_u16(),
        code,
        description: format!("{message} ({})", error.code_text()),
    }
}

/// How long a throttled caller should wait, from Meta's usage headers:
/// `X-Business-Use-Case-Usage` (the longest
/// `estimated_time_to_regain_access`, in minutes, over every business
/// object and call type), else `X-App-Usage` at 100 % or more
/// ([`APP_USAGE_WAIT`]).
fn usage_wait(headers: &HeaderMap) -> Option<Duration> {
    business_use_case_wait(headers).or_else(|| app_usage_wait(headers))
}

/// `{"<business id>": [{"type": "ads_insights", "call_count": 98, …,
/// "estimated_time_to_regain_access": 5}]}`, as a JSON string.
fn business_use_case_wait(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get("x-business-use-case-usage")?.to_str().ok()?;
    let usage: Map<String, Value> = serde_json::from_str(text).ok()?;
    let minutes = usage
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|entry| entry.get("estimated_time_to_regain_access")?.as_f64())
        .fold(0.0_f64, f64::max);
    // Whole minutes in practice; a fraction rounds up.
    let seconds = (minutes * 60.0).ceil();
    (seconds >= 1.0).then(|| Duration::from_secs_f64(seconds))
}

/// `{"call_count": 100, "total_cputime": 20, "total_time": 35}`: percents
/// of the app's hourly allowance.
fn app_usage_wait(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get("x-app-usage")?.to_str().ok()?;
    let usage: Map<String, Value> = serde_json::from_str(text).ok()?;
    let highest = ["call_count", "total_cputime", "total_time"]
        .iter()
        .filter_map(|name| usage.get(*name)?.as_f64())
        .fold(0.0_f64, f64::max);
    (highest >= 100.0).then_some(APP_USAGE_WAIT)
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn failure_error(status: StatusCode, headers: &HeaderMap, body: &Value) -> Option<Error> {
        let url =
            Url::parse("https://graph.facebook.com/v22.0/act_1/insights?access_token=EAAsecret")
                .unwrap();
        let body = body.to_string();
        api_error(&Failure {
            provider: PROVIDER,
            url: &url,
            status,
            headers,
            body: body.as_bytes(),
        })
    }

    fn graph(code: i64, subcode: Option<i64>, message: &str) -> Value {
        json!({"error": {"message": message, "type": "OAuthException", "code": code,
                         "error_subcode": subcode, "fbtrace_id": "AbC123"}})
    }

    fn header(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn throttling_codes_on_http_400_are_retryable_with_the_buc_wait_in_minutes() {
        let headers = header(
            "x-business-use-case-usage",
            r#"{"112233":[{"type":"ads_insights","call_count":100,"total_cputime":20,"total_time":30,"estimated_time_to_regain_access":3},{"type":"ads_management","call_count":5,"estimated_time_to_regain_access":0}]}"#,
        );

        for code in [4, 17, 32, 613, 80_000, 80_014] {
            let error = failure_error(
                StatusCode::BAD_REQUEST,
                &headers,
                &graph(code, None, "limit"),
            )
            .unwrap();
            assert_eq!(
                error.class(),
                crate::ErrorClass::Retryable {
                    retry_after: Some(Duration::from_secs(180))
                },
                "{code}"
            );
        }
    }

    #[test]
    fn app_usage_at_its_limit_gives_a_wait_and_below_it_none() {
        let full = header(
            "x-app-usage",
            r#"{"call_count":100,"total_cputime":12,"total_time":9}"#,
        );
        let low = header(
            "x-app-usage",
            r#"{"call_count":12,"total_cputime":1,"total_time":1}"#,
        );

        assert_eq!(usage_wait(&full), Some(APP_USAGE_WAIT));
        assert_eq!(usage_wait(&low), None);
        assert_eq!(usage_wait(&HeaderMap::new()), None);
    }

    #[test]
    fn code_190_is_a_rejected_token_and_permissions_are_permanent() {
        let expired = failure_error(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            &graph(
                190,
                Some(463),
                "Error validating access token: Session has expired",
            ),
        )
        .unwrap();
        let permission = failure_error(
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            &graph(200, None, "(#200) Requires ads_read permission"),
        )
        .unwrap();

        assert!(expired.wants_token_refresh(), "{expired:?}");
        assert_eq!(permission.class(), crate::ErrorClass::Permanent);
        assert!(
            permission.to_string().contains("Requires ads_read"),
            "{permission}"
        );
    }

    #[test]
    fn unknown_codes_are_rejections_unless_the_status_is_transient() {
        let invalid = failure_error(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            &graph(100, Some(33), "Unsupported get request."),
        )
        .unwrap();
        let server = failure_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &HeaderMap::new(),
            &graph(1, None, "An unknown error occurred"),
        );

        let Error::Rejected { code, url, .. } = &invalid else {
            panic!("expected Rejected, got {invalid:?}");
        };
        assert_eq!(code, "OAuthException 100/33");
        assert!(!url.contains("EAAsecret"), "{url}");
        assert!(server.is_none());
    }

    #[test]
    fn only_a_next_link_announces_another_page() {
        let last: Paging =
            serde_json::from_value(json!({"cursors": {"before": "QVFIUm", "after": "QVFIUn"}}))
                .unwrap();
        let more: Paging = serde_json::from_value(json!({
            "cursors": {"before": "QVFIUm", "after": "QVFIUn"},
            "next": "https://graph.facebook.com/v22.0/me/adaccounts?access_token=EAAsecret&limit=2&after=QVFIUn"
        }))
        .unwrap();

        assert_eq!(last.next_after(), None);
        assert_eq!(more.next_after().as_deref(), Some("QVFIUn"));
    }

    #[test]
    fn rows_keep_their_strings_and_gain_parsed_numbers() {
        let account = AdAccount {
            id: "act_42".to_owned(),
            name: Some("Shop".to_owned()),
            currency: Some("EUR".to_owned()),
        };
        let row = json!({"impressions": "1523", "clicks": "12", "spend": "12.34", "reach": "1200",
                         "date_start": "2026-01-02", "date_stop": "2026-01-02"});

        let record = record(&account, serde_json::from_value(row).unwrap()).unwrap();

        assert_eq!(record.external_id, "act_42:2026-01-02");
        assert_eq!(record.payload["spend"], "12.34");
        assert_eq!(
            record.payload["numbers"],
            json!({"impressions": 1523, "clicks": 12, "spend": 12.34, "reach": 1200})
        );
        assert_eq!(record.payload["currency"], "EUR");
    }

    #[test]
    fn a_row_without_a_date_or_with_a_garbled_metric_is_refused() {
        let account = AdAccount {
            id: "42".to_owned(),
            name: None,
            currency: None,
        };
        let undated = json!({"impressions": "1"});
        let garbled = json!({"impressions": "lots", "date_start": "2026-01-02"});

        assert!(record(&account, serde_json::from_value(undated).unwrap()).is_err());
        assert!(record(&account, serde_json::from_value(garbled).unwrap()).is_err());
    }
}
