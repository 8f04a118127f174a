//! LinkedIn: the member behind a token (OpenID Connect userinfo) and the
//! daily follower gains of the organizations the member administers
//! (Community Management API, versioned `/rest` endpoints).

use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use fleet_events::ConnectorId;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{
    StatusCode,
    header::{HeaderMap, HeaderName, HeaderValue},
};
use serde::{Deserialize, Serialize, de::Error as _};
use serde_json::json;
use url::Url;

use crate::{
    Account, Credentials, Error, Page, Record, StreamSpec,
    catalog::{CatalogEntry, CatalogError},
    http::{self, Classify, Failure, Http},
    providers::{self, Provider, bearer::Api, window},
    text::plain_text,
};

/// Display name in messages.
const PROVIDER: &str = "LinkedIn";

/// Days a full pass reads: the 30 whole UTC days before today.
const WINDOW_DAYS: u64 = 30;

/// Days before the last pass that an incremental pass reads again, for
/// gains LinkedIn counts late.
const REVISION_DAYS: u64 = 3;

/// Organization ACLs per page when the catalog entry sets no `page_size`.
const DEFAULT_PAGE_SIZE: u32 = 100;

/// How long to wait after a 429. LinkedIn's limits are daily (they reset
/// at midnight UTC) and unpublished, and a 429 has no `Retry-After`; an
/// hour keeps a throttled connection from burning the rest of the day's
/// allowance on retries while still picking up soon after a reset.
const RATE_LIMIT_WAIT: Duration = Duration::from_secs(60 * 60);

/// The Rest.li protocol every `/rest` call speaks: it fixes the query
/// syntax (`(key:value,…)` objects, URL-encoded URNs).
const RESTLI_PROTOCOL: &str = "2.0.0";

/// What is percent-encoded in a URN inside a Rest.li 2.0 query: everything
/// but the unreserved characters.
const URN: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

static STREAMS: [StreamSpec; 1] = [StreamSpec {
    name: "follower_statistics",
    description: "Organic and paid follower gains per administered organization and day of the \
                  last 30 days",
    reconcile: false,
}];

/// The LinkedIn connector.
///
/// Validation asks OpenID Connect's `/v2/userinfo`; `sub` is the
/// [`Account::id`]. `follower_statistics` lists the organizations the
/// member administers (`/rest/organizationAcls`, role `ADMINISTRATOR`,
/// state `APPROVED`, paged by `start`/`count`), then asks each one's
/// time-bound follower statistics (`/rest/organizationalEntityFollowerStatistics`,
/// daily, the last [`WINDOW_DAYS`] whole days). Records are keyed
/// `<organization URN>:<YYYY-MM-DD>`; the payload is `{"organization",
/// "date", "organicFollowerGain", "paidFollowerGain", "timeRange"}`
/// (gains, not totals: they may be negative).
///
/// LinkedIn's days are UTC days, asked for as `[start, end)` in epoch
/// milliseconds. A full pass reads the [`WINDOW_DAYS`] whole days before
/// today (UTC); an incremental pass (see
/// [`Connector::incremental_start`]) reads from [`REVISION_DAYS`] before
/// the UTC day of the last complete pass, at most [`MAX_LOOKBACK_DAYS`]
/// back, to the start of today. Every day of the range has an element,
/// gains of 0 included.
///
/// Every `/rest` call sends `LinkedIn-Version` (the catalog entry's
/// `api_version`, `YYYYMM`) and `X-Restli-Protocol-Version: 2.0.0`.
/// LinkedIn sunsets each version about a year after its release and then
/// answers 426 `NONEXISTENT_VERSION` ([`Error::ApiVersion`]): moving
/// `api_version` in the catalog (or an operator's override of it) is the
/// fix.
///
/// [`Connector::incremental_start`]: crate::Connector::incremental_start
/// [`MAX_LOOKBACK_DAYS`]: window::MAX_LOOKBACK_DAYS
#[derive(Debug)]
pub(crate) struct LinkedIn {
    id: ConnectorId,
    api: Url,
    version: String,
    page_size: u32,
    http: Http,
}

impl LinkedIn {
    /// The connector of catalog entry `entry`, which must declare the
    /// `api` base URL and an `api_version` of the form `YYYYMM`.
    pub(crate) fn new(entry: &CatalogEntry, http: Http) -> Result<Self, CatalogError> {
        let invalid = |problem| CatalogError::Invalid {
            id: entry.id.to_string(),
            problem,
        };
        let api = entry
            .api_base_url("api")
            .cloned()
            .ok_or_else(|| invalid("needs api_base_urls.api"))?;
        let version = entry
            .api_version
            .clone()
            .filter(|version| is_version(version))
            .ok_or_else(|| {
                invalid("needs an api_version of the form YYYYMM (the LinkedIn-Version header)")
            })?;
        Ok(Self {
            id: entry.id.clone(),
            api,
            version,
            page_size: entry.page_size.unwrap_or(DEFAULT_PAGE_SIZE),
            http,
        })
    }
}

/// `YYYYMM`, or a patch version `YYYYMM.NN`.
fn is_version(version: &str) -> bool {
    let (month, patch) = version.split_once('.').unwrap_or((version, "00"));
    month.len() == 6
        && month.bytes().all(|b| b.is_ascii_digit())
        && patch.len() == 2
        && patch.bytes().all(|b| b.is_ascii_digit())
}

/// Where a `follower_statistics` sync stands.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Cursor {
    /// The window, in epoch milliseconds: `[start, end)`.
    start_ms: i64,
    end_ms: i64,
    /// Organization URNs of the ACL page read last that are not done, the
    /// current one first.
    organizations: Vec<String>,
    /// `start` of the next ACL page; `None` once the ACLs are read.
    next_start: Option<u32>,
}

/// OpenID Connect userinfo. `locale` is left alone: the docs give a
/// string (`"en-US"`), live answers have given an object
/// (`{"country": "US", "language": "en"}`).
#[derive(Deserialize)]
struct UserInfo {
    sub: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

/// A Rest.li collection page.
#[derive(Deserialize)]
struct Collection<T> {
    #[serde(default = "Vec::new")]
    elements: Vec<T>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Deserialize)]
struct Paging {
    #[serde(default)]
    total: Option<u64>,
    #[serde(default)]
    links: Vec<Link>,
}

#[derive(Deserialize)]
struct Link {
    #[serde(default)]
    rel: String,
}

#[derive(Deserialize)]
struct Acl {
    /// `urn:li:organization:<n>`; `organizationalTarget` in the
    /// unversioned API.
    #[serde(alias = "organizationalTarget")]
    organization: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statistic {
    time_range: TimeRange,
    #[serde(default)]
    follower_gains: Option<FollowerGains>,
}

#[derive(Deserialize, Serialize)]
struct TimeRange {
    start: i64,
    end: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FollowerGains {
    #[serde(default)]
    organic_follower_gain: i64,
    #[serde(default)]
    paid_follower_gain: i64,
}

impl Provider for LinkedIn {
    type Cursor = Cursor;
    const STREAMS: &'static [StreamSpec] = &STREAMS;

    fn id(&self) -> &ConnectorId {
        &self.id
    }

    async fn validate(&self, credentials: &Credentials) -> Result<Account, Error> {
        let url = http::endpoint(&self.api, "v2/userinfo");
        let user: UserInfo = self.api(credentials)?.get(&url).await?;
        let name = user.name.or(user.email).unwrap_or_default();
        Ok(Account::new(&user.sub, &name))
    }

    fn first(&self, _stream: &StreamSpec) -> Cursor {
        first_cursor(Utc::now())
    }

    fn incremental(&self, _stream: &StreamSpec, since: DateTime<Utc>) -> Option<Cursor> {
        Some(incremental_cursor(since, Utc::now()))
    }

    async fn page(
        &self,
        credentials: &Credentials,
        _stream: &StreamSpec,
        mut cursor: Cursor,
    ) -> Result<Page, Error> {
        let api = self.api(credentials)?;
        for _ in 0..providers::MAX_EMPTY_LISTING_PAGES {
            if !cursor.organizations.is_empty() {
                break;
            }
            let Some(start) = cursor.next_start else {
                return Ok(Page::finished());
            };
            self.read_acls(&api, &mut cursor, start).await?;
        }
        if cursor.organizations.is_empty() {
            // Empty listing pages only, so far: go on from here.
            let next = cursor
                .next_start
                .is_some()
                .then(|| providers::encode(&cursor));
            return Ok(Page {
                next,
                ..Page::finished()
            });
        }
        let organization = cursor.organizations.remove(0);
        let records = self.statistics(&api, &cursor, &organization).await?;
        let finished = cursor.organizations.is_empty() && cursor.next_start.is_none();
        Ok(Page {
            records,
            next: (!finished).then(|| providers::encode(&cursor)),
            ..Page::finished()
        })
    }
}

impl LinkedIn {
    fn api<'a>(&'a self, credentials: &'a Credentials) -> Result<Api<'a>, Error> {
        Ok(Api::new(&self.http, self, credentials.bearer(&self.id)?))
    }

    /// GETs a `/rest` URL with the version and protocol headers.
    async fn rest<T: serde::de::DeserializeOwned>(
        &self,
        api: &Api<'_>,
        url: &Url,
    ) -> Result<T, Error> {
        let mut headers = HeaderMap::new();
        let version = HeaderValue::from_str(&self.version).map_err(|_| Error::ApiVersion {
            provider: PROVIDER.to_owned(),
            version: self.version.clone(),
            code: "INVALID_VERSION".to_owned(),
            message: "the version is not a valid header value".to_owned(),
        })?;
        headers.insert(HeaderName::from_static("linkedin-version"), version);
        headers.insert(
            HeaderName::from_static("x-restli-protocol-version"),
            HeaderValue::from_static(RESTLI_PROTOCOL),
        );
        api.get_with(url, &headers).await
    }

    /// Reads the ACL page at `start` into `cursor`.
    async fn read_acls(&self, api: &Api<'_>, cursor: &mut Cursor, start: u32) -> Result<(), Error> {
        let mut url = http::endpoint(&self.api, "rest/organizationAcls");
        url.query_pairs_mut()
            .append_pair("q", "roleAssignee")
            .append_pair("role", "ADMINISTRATOR")
            .append_pair("state", "APPROVED")
            .append_pair("start", &start.to_string())
            .append_pair("count", &self.page_size.to_string());
        let page: Collection<Acl> = self.rest(api, &url).await?;
        let read = u32::try_from(page.elements.len()).unwrap_or(u32::MAX);
        let next = start.saturating_add(self.page_size);
        let linked = page
            .paging
            .as_ref()
            .is_some_and(|paging| paging.links.iter().any(|link| link.rel == "next"));
        let total = page.paging.as_ref().and_then(|paging| paging.total);
        let more = match total {
            _ if linked => true,
            Some(total) => read > 0 && u64::from(next) < total,
            None => read >= self.page_size,
        };
        cursor.next_start = more.then_some(next);
        cursor.organizations = page
            .elements
            .into_iter()
            .map(|acl| acl.organization)
            .collect();
        Ok(())
    }

    /// The daily follower gains of `organization` in the cursor's window.
    async fn statistics(
        &self,
        api: &Api<'_>,
        cursor: &Cursor,
        organization: &str,
    ) -> Result<Vec<Record>, Error> {
        let mut url = http::endpoint(&self.api, "rest/organizationalEntityFollowerStatistics");
        // Rest.li 2.0: the object's parentheses, colons and commas are
        // syntax and stay as they are; the URN is encoded.
        url.set_query(Some(&format!(
            "q=organizationalEntity&organizationalEntity={}&timeIntervals=(timeRange:(start:{},end:{}),timeGranularityType:DAY)",
            utf8_percent_encode(organization, URN),
            cursor.start_ms,
            cursor.end_ms,
        )));
        let page: Collection<Statistic> = self.rest(api, &url).await?;
        page.elements
            .into_iter()
            .map(|statistic| record(organization, statistic))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| Error::invalid_response(PROVIDER, &url, &source))
    }

    /// Reads LinkedIn's error body `{"status", "serviceErrorCode", "code",
    /// "message"}`: 401 a refused token, 403 a missing permission, 426 (or
    /// a missing version) a version to update, 429 a daily limit.
    fn error(&self, failure: &Failure<'_>) -> Option<Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Body {
            #[serde(default)]
            code: Option<String>,
            #[serde(default)]
            service_error_code: Option<i64>,
            #[serde(default)]
            message: String,
        }

        let body = serde_json::from_slice::<Body>(failure.body).ok();
        let provider = PROVIDER.to_owned();
        let message = plain_text(body.as_ref().map_or("", |body| &body.message));
        let code = body
            .as_ref()
            .and_then(|body| {
                body.code
                    .clone()
                    .or_else(|| body.service_error_code.map(|code| code.to_string()))
            })
            .map_or_else(
                || failure.status.as_u16().to_string(),
                |code| crate::text::code(&code),
            );
        let version_code = matches!(code.as_str(), "NONEXISTENT_VERSION" | "VERSION_MISSING");
        Some(match failure.status {
            StatusCode::UNAUTHORIZED => Error::AccessTokenRejected { provider, message },
            StatusCode::FORBIDDEN => Error::PermissionDenied {
                provider,
                code,
                message,
            },
            StatusCode::UPGRADE_REQUIRED => Error::ApiVersion {
                provider,
                version: self.version.clone(),
                code,
                message,
            },
            StatusCode::BAD_REQUEST if version_code => Error::ApiVersion {
                provider,
                version: self.version.clone(),
                code,
                message,
            },
            StatusCode::TOO_MANY_REQUESTS => Error::Throttled {
                provider,
                code,
                message,
                retry_after: Some(RATE_LIMIT_WAIT),
            },
            _ => return None,
        })
    }
}

impl Classify for LinkedIn {
    fn provider(&self) -> &str {
        PROVIDER
    }

    fn recognise(&self, failure: &Failure<'_>) -> Option<Error> {
        self.error(failure)
    }
}

/// The cursor of a full pass's first page: the [`WINDOW_DAYS`] whole UTC
/// days before `now`.
fn first_cursor(now: DateTime<Utc>) -> Cursor {
    let today = now.date_naive();
    window_cursor(today - Days::new(WINDOW_DAYS), today)
}

/// The cursor of an incremental pass at `now` after a complete pass that
/// began at `since`: from [`REVISION_DAYS`] before the UTC day of `since`,
/// at most [`MAX_LOOKBACK_DAYS`] back and at least one day, to the start
/// of today.
///
/// [`MAX_LOOKBACK_DAYS`]: window::MAX_LOOKBACK_DAYS
fn incremental_cursor(since: DateTime<Utc>, now: DateTime<Utc>) -> Cursor {
    let start = window::reopened_since(since, now, REVISION_DAYS);
    window_cursor(start, now.date_naive())
}

/// The cursor of a pass over the UTC days from `start` to before `end`,
/// with the organizations still to be listed.
fn window_cursor(start: NaiveDate, end: NaiveDate) -> Cursor {
    let millis = |day: NaiveDate| day.and_time(NaiveTime::MIN).and_utc().timestamp_millis();
    Cursor {
        start_ms: millis(start),
        end_ms: millis(end),
        organizations: Vec::new(),
        next_start: Some(0),
    }
}

/// A daily statistic of `organization` as a record.
fn record(organization: &str, statistic: Statistic) -> Result<Record, serde_json::Error> {
    let day = DateTime::from_timestamp_millis(statistic.time_range.start)
        .ok_or_else(|| {
            serde_json::Error::custom(format!(
                "timeRange.start {} is not a time",
                statistic.time_range.start
            ))
        })?
        .date_naive();
    let gains = statistic.follower_gains.unwrap_or(FollowerGains {
        organic_follower_gain: 0,
        paid_follower_gain: 0,
    });
    Ok(Record {
        external_id: format!("{organization}:{day}"),
        payload: json!({
            "organization": organization,
            "date": day.to_string(),
            "organicFollowerGain": gains.organic_follower_gain,
            "paidFollowerGain": gains.paid_follower_gain,
            "timeRange": statistic.time_range,
        }),
        updated_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_accepts_a_locale_string_or_object() {
        let documented = json!({"sub": "782bbtaQ", "name": "Ada", "locale": "en-US"});
        let observed = json!({"sub": "782bbtaQ", "email": "ada@example.test",
                              "locale": {"country": "US", "language": "en"}});

        let documented: UserInfo = serde_json::from_value(documented).unwrap();
        let observed: UserInfo = serde_json::from_value(observed).unwrap();

        assert_eq!(documented.name.as_deref(), Some("Ada"));
        assert_eq!(observed.email.as_deref(), Some("ada@example.test"));
    }

    #[test]
    fn the_window_is_the_thirty_whole_days_before_today() {
        let now = DateTime::parse_from_rfc3339("2026-03-31T17:45:00Z")
            .unwrap()
            .with_timezone(&Utc);

        let cursor = first_cursor(now);

        let start = DateTime::from_timestamp_millis(cursor.start_ms).unwrap();
        let end = DateTime::from_timestamp_millis(cursor.end_ms).unwrap();
        assert_eq!(start.to_rfc3339(), "2026-03-01T00:00:00+00:00");
        assert_eq!(end.to_rfc3339(), "2026-03-31T00:00:00+00:00");
    }

    #[test]
    fn an_incremental_pass_reopens_three_days_across_a_year_end() {
        let now = DateTime::parse_from_rfc3339("2027-01-02T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let since = DateTime::parse_from_rfc3339("2027-01-01T23:30:00Z")
            .unwrap()
            .with_timezone(&Utc);

        let cursor = incremental_cursor(since, now);

        let start = DateTime::from_timestamp_millis(cursor.start_ms).unwrap();
        let end = DateTime::from_timestamp_millis(cursor.end_ms).unwrap();
        assert_eq!(start.to_rfc3339(), "2026-12-29T00:00:00+00:00");
        assert_eq!(end.to_rfc3339(), "2027-01-02T00:00:00+00:00");
        let far = incremental_cursor(now - chrono::Duration::days(900), now);
        assert_eq!(
            DateTime::from_timestamp_millis(far.start_ms)
                .unwrap()
                .to_rfc3339(),
            "2026-01-02T00:00:00+00:00",
            "at most a year back"
        );
    }

    #[test]
    fn urns_are_fully_encoded() {
        assert_eq!(
            utf8_percent_encode("urn:li:organization:2414183", URN).to_string(),
            "urn%3Ali%3Aorganization%3A2414183"
        );
    }

    #[test]
    fn versions_are_yyyymm_with_an_optional_patch() {
        assert!(is_version("202603"));
        assert!(is_version("202508.02"));
        assert!(!is_version("2026-03"));
        assert!(!is_version("20260301"));
        assert!(!is_version(""));
    }

    #[test]
    fn statistics_become_records_keyed_by_urn_and_day() {
        let statistic: Statistic = serde_json::from_value(json!({
            "timeRange": {"start": 1_772_323_200_000_i64, "end": 1_772_409_600_000_i64},
            "followerGains": {"organicFollowerGain": -2, "paidFollowerGain": 1},
            "organizationalEntity": "urn:li:organization:7"
        }))
        .unwrap();

        let record = record("urn:li:organization:7", statistic).unwrap();

        assert_eq!(record.external_id, "urn:li:organization:7:2026-03-01");
        assert_eq!(record.payload["organicFollowerGain"], -2);
        assert_eq!(record.payload["paidFollowerGain"], 1);
    }
}
