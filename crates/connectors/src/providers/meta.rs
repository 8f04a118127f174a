//! Meta's Marketing API, on the Graph API: who a token belongs to, and the
//! daily insights of the user's ad accounts.

use std::fmt::Write as _;

use chrono::{DateTime, Days, NaiveDate, Utc};
use fleet_events::ConnectorId;
use hmac::{Hmac, Mac as _};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize, de::Error as _};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use url::Url;

use crate::{
    Account, Credentials, Error, Page, Record, StreamSpec,
    catalog::{Auth, CatalogEntry, CatalogError},
    http::{self, Classify, Failure, Http},
    providers::{self, Provider, bearer::Api, window},
};

/// Display name in messages.
const PROVIDER: &str = "Meta";

/// Days a full pass reads, ending yesterday (UTC).
const WINDOW_DAYS: u64 = 30;

/// Days before the last pass that an incremental pass reads again: Meta
/// attributes conversions to the day of the ad's click or view for up to
/// 28 days (the longest attribution window), and corrects spend within
/// it, so a day's figures may change for that long.
const ATTRIBUTION_DAYS: u64 = 28;

/// The insights fields of `ad_insights`.
const FIELDS: &str = "impressions,clicks,spend,reach";

/// The integer metrics among [`FIELDS`]; `spend` is a decimal amount in
/// the account's currency.
const COUNTS: [&str; 3] = ["impressions", "clicks", "reach"];

/// The ad-account fields a sync keeps.
const ACCOUNT_FIELDS: &str = "id,account_id,name,currency";

mod errors;

pub(crate) use errors::{GraphErrorBody, token_endpoint_error};

static STREAMS: [StreamSpec; 1] = [StreamSpec {
    name: "ad_insights",
    description: "Impressions, clicks, spend and reach per ad account and day of the last 30 days \
                  (yesterday included); days without delivery have no record",
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
///
/// # Day windows
///
/// Insights days are days of the ad account's time zone. A full pass reads
/// the [`WINDOW_DAYS`] days ending yesterday (UTC), which is never after
/// the account's today. An incremental pass (see
/// [`Connector::incremental_start`]) starts [`ATTRIBUTION_DAYS`] before
/// the UTC date of the last complete pass, one day earlier again for the
/// accounts west of UTC, and no more than [`MAX_LOOKBACK_DAYS`] back. The
/// account's yesterday and today that a pass leaves out (east of UTC) are
/// inside the next pass's window.
///
/// # Too much data
///
/// Meta refuses an insights request that would compute too much with code
/// 1, "Please reduce the amount of data you're asking for" (HTTP 500). The
/// connector then asks for the same account's days in halves of the
/// range that failed, down to one day, and keeps the smaller size for the
/// rest of the account. A single day that still fails is left out, and the
/// page reports it as a gap, so the run ends `partial` and says which day
/// of which account is missing.
///
/// # Calls
///
/// With the app secret configured, every Graph call carries
/// `appsecret_proof` (the hex HMAC-SHA256 of the access token keyed with
/// the app secret), which apps that "require app secret" demand. A missing
/// permission (codes 10 and 200–299, answered with HTTP 400 or 403) asks
/// the user to reconnect and approve it, naming it.
///
/// [`Connector::incremental_start`]: crate::Connector::incremental_start
/// [`MAX_LOOKBACK_DAYS`]: window::MAX_LOOKBACK_DAYS
#[derive(Debug)]
pub(crate) struct Meta {
    id: ConnectorId,
    graph: Url,
    page_size: Option<u32>,
    /// The app secret, for `appsecret_proof`.
    app_secret: Option<SecretString>,
    /// The permissions the catalog asks for, named when Meta's message
    /// names none.
    scopes: Vec<String>,
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
        let (app_secret, scopes) = match &entry.auth {
            Auth::OAuth2(settings) => (settings.client_secret.clone(), settings.scopes.clone()),
            Auth::OAuth1(_)
            | Auth::AppPassword
            | Auth::ApiKey(_)
            | Auth::Basic(_)
            | Auth::ClientCredentials(_) => (None, Vec::new()),
        };
        Ok(Self {
            id: entry.id.clone(),
            graph,
            page_size: entry.page_size,
            app_secret,
            scopes,
            http,
        })
    }
}

/// Where an `ad_insights` sync stands.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Cursor {
    since: NaiveDate,
    until: NaiveDate,
    /// The listing of ad accounts is still to be read from its start.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    unlisted: bool,
    /// The ad accounts of the listing page read last that are not done,
    /// the current one first.
    accounts: Vec<AdAccount>,
    /// `after` of the next listing page; `None` once the listing is read.
    accounts_after: Option<String>,
    /// `after` of the current account's next insights page; `None` for
    /// its first page.
    after: Option<String>,
    /// The current account's days in smaller ranges, since Meta refused
    /// to answer for more at once; `None` for the whole window at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chunk: Option<Chunk>,
}

/// A range of days of the current account: `days` days from `since` (cut
/// at the window's end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Chunk {
    since: NaiveDate,
    days: u64,
}

impl Cursor {
    /// The first cursor of a pass over `since..=until`.
    fn window(since: NaiveDate, until: NaiveDate) -> Self {
        Self {
            since,
            until,
            unlisted: true,
            accounts: Vec::new(),
            accounts_after: None,
            after: None,
            chunk: None,
        }
    }

    /// The days the current account's next request asks for.
    fn range(&self) -> (NaiveDate, NaiveDate) {
        match self.chunk {
            None => (self.since, self.until),
            Some(chunk) => {
                let end = chunk.since + Days::new(chunk.days.saturating_sub(1));
                (chunk.since, end.min(self.until))
            }
        }
    }

    /// Moves past a range ending at `end` that is read: to the next
    /// chunk of the same size, or to the next account.
    fn range_done(&mut self, end: NaiveDate) {
        self.after = None;
        match (self.chunk, end.succ_opt()) {
            (Some(chunk), Some(next)) if end < self.until => {
                self.chunk = Some(Chunk {
                    since: next,
                    ..chunk
                });
            }
            _ => {
                self.chunk = None;
                if !self.accounts.is_empty() {
                    self.accounts.remove(0);
                }
            }
        }
    }
}

/// The window of a full pass at `now`: the [`WINDOW_DAYS`] days ending
/// yesterday (UTC).
fn full_window(now: DateTime<Utc>) -> (NaiveDate, NaiveDate) {
    let until = now.date_naive() - Days::new(1);
    (until - Days::new(WINDOW_DAYS - 1), until)
}

/// The window of an incremental pass at `now` after a complete pass that
/// began at `since`: from [`ATTRIBUTION_DAYS`] before the account's date
/// of `since` (at least one day before its UTC date), at most
/// [`MAX_LOOKBACK_DAYS`] back, to yesterday (UTC).
///
/// [`MAX_LOOKBACK_DAYS`]: window::MAX_LOOKBACK_DAYS
fn incremental_window(since: DateTime<Utc>, now: DateTime<Utc>) -> (NaiveDate, NaiveDate) {
    let until = now.date_naive() - Days::new(1);
    (
        window::reopened_since(since, now, ATTRIBUTION_DAYS + 1),
        until,
    )
}

/// The days of `since..=until`.
fn days(since: NaiveDate, until: NaiveDate) -> u64 {
    u64::try_from((until - since).num_days() + 1).unwrap_or(1)
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

impl Provider for Meta {
    type Cursor = Cursor;
    const STREAMS: &'static [StreamSpec] = &STREAMS;

    fn id(&self) -> &ConnectorId {
        &self.id
    }

    async fn validate(&self, credentials: &Credentials) -> Result<Account, Error> {
        let mut url = http::endpoint(&self.graph, "me");
        url.query_pairs_mut().append_pair("fields", "id,name");
        let me: Me = self.get(&self.api(credentials)?, &url).await?;
        Ok(Account::new(&me.id, me.name.as_deref().unwrap_or_default()))
    }

    fn first(&self, _stream: &StreamSpec) -> Cursor {
        let (since, until) = full_window(Utc::now());
        Cursor::window(since, until)
    }

    fn incremental(&self, _stream: &StreamSpec, since: DateTime<Utc>) -> Option<Cursor> {
        let (since, until) = incremental_window(since, Utc::now());
        Some(Cursor::window(since, until))
    }

    async fn page(
        &self,
        credentials: &Credentials,
        _stream: &StreamSpec,
        mut cursor: Cursor,
    ) -> Result<Page, Error> {
        let api = self.api(credentials)?;
        if cursor.unlisted {
            self.read_listing(&api, &mut cursor).await?;
            cursor.unlisted = false;
        }
        if cursor.accounts.is_empty() {
            self.list_accounts(&api, &mut cursor).await?;
        }
        let Some(account) = cursor.accounts.first().cloned() else {
            if cursor.accounts_after.is_some() {
                // Empty listing pages only, so far: go on from here.
                return Ok(Page {
                    next: Some(providers::encode(&cursor)),
                    ..Page::finished()
                });
            }
            return Ok(Page::finished());
        };
        let (records, gap) = self.account_page(&api, &mut cursor, &account).await?;
        let finished = cursor.accounts.is_empty() && cursor.accounts_after.is_none();
        Ok(Page {
            records,
            next: (!finished).then(|| providers::encode(&cursor)),
            gap,
            ..Page::finished()
        })
    }
}

impl Meta {
    fn api<'a>(&'a self, credentials: &'a Credentials) -> Result<Api<'a>, Error> {
        Ok(Api::new(&self.http, self, credentials.bearer(&self.id)?))
    }

    /// GETs a Graph `url`, with `appsecret_proof` when the app secret is
    /// configured.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        api: &Api<'_>,
        url: &Url,
    ) -> Result<T, Error> {
        let mut url = url.clone();
        if let Some(secret) = &self.app_secret {
            url.query_pairs_mut()
                .append_pair("appsecret_proof", &appsecret_proof(secret, api.token));
        }
        api.get(&url).await
    }

    /// The next insights page of `account`, the current account of
    /// `cursor`, which it moves on. When Meta refuses to answer for so
    /// many days at once, asks again for the first half of the range, down
    /// to one day; a day that fails alone is skipped and returned as the
    /// page's gap.
    async fn account_page(
        &self,
        api: &Api<'_>,
        cursor: &mut Cursor,
        account: &AdAccount,
    ) -> Result<(Vec<Record>, Option<String>), Error> {
        loop {
            let (since, until) = cursor.range();
            let message = match self.insights(api, cursor, account, since, until).await {
                Ok((records, after)) => {
                    cursor.after = after;
                    if cursor.after.is_none() {
                        cursor.range_done(until);
                    }
                    return Ok((records, None));
                }
                Err(Error::TooMuchData { message, .. }) => message,
                Err(error) => return Err(error),
            };
            let span = days(since, until);
            if span > 1 {
                tracing::info!(
                    account = %act_id(&account.id),
                    days = span,
                    "Meta asked for less data; asking for half as many days."
                );
                cursor.after = None;
                cursor.chunk = Some(Chunk {
                    since,
                    days: span / 2,
                });
                continue;
            }
            cursor.range_done(until);
            let gap = format!(
                "Meta did not return the insights of ad account {} for {since} even for that day \
                 alone ({message}); that day is missing, and the next sync asks for it again",
                act_id(&account.id)
            );
            return Ok((Vec::new(), Some(gap)));
        }
    }

    /// Reads listing pages from `cursor.accounts_after` on until one has an
    /// ad account, the listing ends, or
    /// [`MAX_EMPTY_LISTING_PAGES`](providers::MAX_EMPTY_LISTING_PAGES) came
    /// back empty.
    async fn list_accounts(&self, api: &Api<'_>, cursor: &mut Cursor) -> Result<(), Error> {
        for _ in 0..providers::MAX_EMPTY_LISTING_PAGES {
            if !cursor.accounts.is_empty() || cursor.accounts_after.is_none() {
                break;
            }
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

    /// One insights page of `account` for `since..=until` at `cursor`'s
    /// `after`: its records and the `after` of the next page.
    async fn insights(
        &self,
        api: &Api<'_>,
        cursor: &Cursor,
        account: &AdAccount,
        since: NaiveDate,
        until: NaiveDate,
    ) -> Result<(Vec<Record>, Option<String>), Error> {
        let path = format!("{}/insights", act_id(&account.id));
        let mut url = http::endpoint(&self.graph, &path);
        {
            let time_range = json!({"since": since, "until": until});
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

impl Classify for Meta {
    fn provider(&self) -> &str {
        PROVIDER
    }

    fn recognise(&self, failure: &Failure<'_>) -> Option<Error> {
        errors::api_error(failure, &self.scopes)
    }
}

/// `appsecret_proof`: the hex HMAC-SHA256 of `token` keyed with `secret`.
fn appsecret_proof(secret: &SecretString, token: &SecretString) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC takes keys of any size");
    mac.update(token.expose_secret().as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appsecret_proof_is_the_hex_hmac_sha256_of_the_token() {
        // HMAC-SHA256 of "The quick brown fox jumps over the lazy dog"
        // keyed with "key", a well-known test vector.
        let proof = appsecret_proof(
            &SecretString::from("key"),
            &SecretString::from("The quick brown fox jumps over the lazy dog"),
        );

        assert_eq!(
            proof,
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }
    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }
    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }
    #[test]
    fn windows_end_yesterday_and_reopen_the_attribution_window_across_month_ends() {
        assert_eq!(
            full_window(at("2026-03-01T00:10:00Z")),
            (day("2026-01-30"), day("2026-02-28"))
        );
        assert_eq!(
            incremental_window(at("2026-03-01T05:00:00Z"), at("2026-03-02T05:00:00Z")),
            (day("2026-01-31"), day("2026-03-01"))
        );
        assert_eq!(
            incremental_window(at("2024-01-01T00:00:00Z"), at("2026-03-02T05:00:00Z")).0,
            day("2025-03-02"),
            "at most a year back"
        );
    }
    #[test]
    fn chunks_move_through_the_window_and_then_to_the_next_account() {
        let account = |id: &str| AdAccount {
            id: id.to_owned(),
            name: None,
            currency: None,
        };
        let mut cursor = Cursor::window(day("2026-01-01"), day("2026-01-10"));
        cursor.accounts = vec![account("act_1"), account("act_2")];
        cursor.chunk = Some(Chunk {
            since: day("2026-01-01"),
            days: 4,
        });

        assert_eq!(cursor.range(), (day("2026-01-01"), day("2026-01-04")));
        cursor.range_done(day("2026-01-04"));
        assert_eq!(cursor.range(), (day("2026-01-05"), day("2026-01-08")));
        cursor.range_done(day("2026-01-08"));
        assert_eq!(cursor.range(), (day("2026-01-09"), day("2026-01-10")));
        cursor.range_done(day("2026-01-10"));
        assert_eq!(cursor.accounts.len(), 1);
        assert_eq!(cursor.range(), (day("2026-01-01"), day("2026-01-10")));
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
