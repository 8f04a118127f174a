//! FluentCRM contacts and lists over the plugin's REST API (`fluent-crm/v2`).

use chrono::{DateTime, TimeDelta, Utc};
use fleet_events::ConnectorId;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

use crate::{
    Account, Credentials, Error, Page, Record, StreamSpec,
    http::Http,
    providers::{
        self, Provider,
        fields::{self, Item},
        wp::{self, Api, Site},
    },
};

/// Records per request. FluentCRM's default is 15; 100 keeps a page
/// within a second or two of PHP time on a modest host.
const PER_PAGE: u64 = 100;

/// Format of `created_at`/`updated_at`: the site's local time without an
/// offset. The connector reads it as UTC, so on a site whose timezone is
/// not UTC, `updated_at` is off by the site's UTC offset; it orders
/// records of one site correctly, which is what it is used for.
const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// How much earlier than the last complete pass an incremental pass
/// starts reading: clock skew between the fleet and the site, contacts
/// saved while the last pass ran, `updated_at` values that tie at the
/// second, and an hour for a daylight-saving change between the two
/// passes (FluentCRM stores site-local times, converted here with the
/// site's current offset).
const INCREMENTAL_OVERLAP: TimeDelta = TimeDelta::minutes(70);

/// The FluentCRM connector: validates with `users/me` and one `lists`
/// call, syncs `subscribers` (contacts) by id and `lists` by page.
#[derive(Debug)]
pub(crate) struct FluentCrm {
    id: ConnectorId,
    http: Http,
}

impl FluentCrm {
    pub(crate) fn new(http: Http) -> Self {
        Self {
            id: ConnectorId::parse("fluentcrm").expect("a valid connector id"),
            http,
        }
    }
}

/// The contacts' stream, read by key where the site can.
const SUBSCRIBERS: &str = "subscribers";

static STREAMS: [StreamSpec; 2] = [
    StreamSpec {
        name: SUBSCRIBERS,
        description: "Contacts, in id order",
        reconcile: true,
    },
    StreamSpec {
        name: "lists",
        description: "Mailing lists, in id order",
        reconcile: true,
    },
];

/// Where a FluentCRM pass stands.
///
/// `subscribers` is read by key: each request asks, through FluentCRM's
/// advanced filters, for the contacts with an id above the highest one
/// read (`id > after_id`, sorted by id), so contacts removed or added
/// during the pass shift nothing, and contacts that tie on `updated_at`
/// cannot straddle a page boundary. An incremental pass adds
/// `updated_at >= updated_after` to the same filter. A site that ignores
/// the filters (answers ids it was asked to skip) is read by page number
/// instead.
///
/// `lists` (a handful of records, and no filters) is read by page
/// number, as `subscribers` on such sites: a list removed during the pass
/// before its position shifts the later ones a place back, and one of them
/// can fall between two pages. The cursor keeps the stream's total at the
/// start of the pass: if it fell by the end, the pass says it may have a
/// gap. New ones get higher ids and land after the position, so they
/// cannot cause one.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Cursor {
    /// The next page number when reading by page; 0 when reading by key.
    #[serde(default, skip_serializing_if = "is_zero")]
    page: u64,
    /// The stream's total when a read by page started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    total_at_start: Option<u64>,
    /// The highest id read by key in this pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after_id: Option<u64>,
    /// An incremental pass: contacts changed at or after this time (UTC,
    /// overlap included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    changed_since: Option<DateTime<Utc>>,
    /// `changed_since` in the site's time, as FluentCRM compares it, once
    /// the site's offset is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated_after: Option<String>,
    /// The path of the site's `?rest_route=` API root, once discovered, so
    /// that later pages skip the discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rest_route: Option<String>,
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero(page: &u64) -> bool {
    *page == 0
}

/// The fields a record is keyed and dated by; the rest stays in the payload.
#[derive(Deserialize)]
struct Keys {
    #[serde(deserialize_with = "fields::external_id")]
    id: String,
    #[serde(default)]
    updated_at: Option<String>,
}

/// A listing body: `{"subscribers": {paginator}}`, or `{"lists":
/// {paginator} | [lists], "pagination": {"total"}}`.
#[derive(Deserialize)]
struct Body {
    #[serde(rename = "subscribers", alias = "lists")]
    listing: Listing,
    /// `/lists`' separate total.
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Deserialize)]
struct Pagination {
    #[serde(default, deserialize_with = "optional_number")]
    total: Option<u64>,
}

/// What a stream's key holds. Newer FluentCRM versions answer `/lists`
/// with the page's items as a bare array (and the total in
/// `pagination`) instead of a paginator.
#[derive(Deserialize)]
#[serde(untagged)]
enum Listing {
    Paginated(Paginator),
    Items(Vec<Item<Keys>>),
}

impl Listing {
    /// The paginator of this page: a bare array becomes one, with the
    /// `total` from `pagination` (without one, the array is the whole
    /// stream).
    fn paginator(self, page: u64, total: Option<u64>) -> Paginator {
        match self {
            Self::Paginated(paginator) => paginator,
            Self::Items(data) => {
                let total = total.unwrap_or((page - 1) * PER_PAGE + data.len() as u64);
                Paginator {
                    current_page: page,
                    last_page: total.div_ceil(PER_PAGE).max(1),
                    total: Some(total),
                    data,
                }
            }
        }
    }
}

/// Laravel's length-aware paginator. Its numbers may come as strings.
#[derive(Deserialize)]
struct Paginator {
    #[serde(deserialize_with = "number")]
    current_page: u64,
    #[serde(deserialize_with = "number")]
    last_page: u64,
    #[serde(default, deserialize_with = "optional_number")]
    total: Option<u64>,
    data: Vec<Item<Keys>>,
}

impl Paginator {
    /// This page of `stream` read by number, pointing to the next one
    /// unless it was the last; `cursor` is where the read by number stands.
    fn numbered_page(self, stream: &str, cursor: &Cursor, bytes: u64) -> Page {
        // Past the end is a 200 with empty data, not an error.
        let more = self.current_page < self.last_page && !self.data.is_empty();
        let total_at_start = cursor.total_at_start.or(self.total);
        let shrank = matches!(
            (total_at_start, self.total),
            (Some(start), Some(now)) if now < start
        );
        let gap = (!more && shrank).then(|| {
            format!(
                "{stream} were removed in FluentCRM during the sync, which can shift one past the \
                 page boundary; some may be missing until the next sync"
            )
        });
        // The page after the one asked for, whatever page the answer says
        // it is: a server that ignored `page` must not keep the pass on
        // the same page.
        let next = Cursor {
            page: cursor.page.max(1) + 1,
            total_at_start,
            ..Cursor::default()
        };
        Page {
            records: self.data.into_iter().map(record).collect(),
            next: more.then(|| providers::encode(&next)),
            total: self.total,
            gap,
            bytes,
            requests: 0,
            ..Page::finished()
        }
    }
}

impl Provider for FluentCrm {
    type Cursor = Cursor;
    const STREAMS: &'static [StreamSpec] = &STREAMS;

    fn id(&self) -> &ConnectorId {
        &self.id
    }

    async fn validate(&self, credentials: &Credentials) -> Result<Account, Error> {
        let site = Site::new(&self.id, credentials, self.http.allow_http())?;
        let account = site.account(&self.http).await?;
        // Proves the plugin is active and the user may read the CRM.
        let query = [("per_page", "1".to_owned())];
        site.get::<Value>(&self.http, Api::FluentCrm, "lists", &query)
            .await?;
        Ok(account)
    }

    fn first(&self, _stream: &StreamSpec) -> Cursor {
        Cursor::default()
    }

    /// Contacts changed since `since`, by FluentCRM's `updated_at`; lists
    /// (a handful) are read whole every time.
    fn incremental(&self, stream: &StreamSpec, since: DateTime<Utc>) -> Option<Cursor> {
        (stream.name == SUBSCRIBERS).then(|| Cursor {
            changed_since: Some(since - INCREMENTAL_OVERLAP),
            ..Cursor::default()
        })
    }

    async fn page(
        &self,
        credentials: &Credentials,
        stream: &StreamSpec,
        cursor: Cursor,
    ) -> Result<Page, Error> {
        let site = Site::new(&self.id, credentials, self.http.allow_http())?;
        if let Some(path) = &cursor.rest_route {
            site.use_query_root(path);
        }
        let mut page = match stream.name {
            SUBSCRIBERS if cursor.page == 0 => self.subscribers_by_key(&site, cursor).await,
            // The sort direction is `sort_type` on /subscribers but
            // `sort_order` on /lists.
            SUBSCRIBERS => {
                self.numbered(&site, SUBSCRIBERS, "sort_type", &cursor)
                    .await
            }
            lists => self.numbered(&site, lists, "sort_order", &cursor).await,
        }?;
        // Every next cursor, however it was built, carries the API root.
        if let (Some(Value::Object(next)), Some(root)) = (&mut page.next, site.query_root_path()) {
            next.insert("rest_route".to_owned(), Value::String(root));
        }
        Ok(page)
    }
}

impl FluentCrm {
    /// The page of `stream` numbered `cursor.page` (from 1), in id order.
    async fn numbered(
        &self,
        site: &Site<'_>,
        stream: &str,
        order_param: &'static str,
        cursor: &Cursor,
    ) -> Result<Page, Error> {
        let page = cursor.page.max(1);
        let query = [
            ("per_page", PER_PAGE.to_string()),
            ("page", page.to_string()),
            ("sort_by", "id".to_owned()),
            (order_param, "ASC".to_owned()),
        ];
        let reply = site
            .get::<Body>(&self.http, Api::FluentCrm, stream, &query)
            .await?;
        let total = reply.body.pagination.and_then(|p| p.total);
        let cursor = Cursor {
            page,
            total_at_start: cursor.total_at_start,
            ..Cursor::default()
        };
        Ok(reply
            .body
            .listing
            .paginator(page, total)
            .numbered_page(stream, &cursor, reply.bytes))
    }

    /// The next contacts after `cursor.after_id` (changed since
    /// `cursor.changed_since` in an incremental pass), in id order.
    async fn subscribers_by_key(&self, site: &Site<'_>, mut cursor: Cursor) -> Result<Page, Error> {
        let mut bytes = 0;
        if let (Some(since), None) = (cursor.changed_since, &cursor.updated_after) {
            let (offset, read) = site.utc_offset(&self.http).await?;
            bytes += read;
            let local = (since + offset).naive_utc();
            cursor.updated_after = Some(local.format(TIME_FORMAT).to_string());
        }
        let filtered = cursor.after_id.is_some() || cursor.updated_after.is_some();
        let paginator = self.filtered(site, &cursor, PER_PAGE, &mut bytes).await?;
        let received = paginator.data.len() as u64;
        let highest = paginator.data.iter().filter_map(id_of).max();
        // The paginator's total counts what matches the filter, this page
        // included: more than this page holds means another page.
        let more = received > 0
            && paginator
                .total
                .map_or(received == PER_PAGE, |matching| matching > received);
        let ignored = paginator.data.iter().any(|item| {
            let id = id_of(item);
            let updated = item.keys.updated_at.as_deref();
            cursor.after_id.is_some_and(|after| id.is_none_or(|id| id <= after))
                || matches!((&cursor.updated_after, updated), (Some(after), Some(at)) if at < after.as_str())
        });
        let Some(highest) = highest.filter(|_| !ignored).or((!more).then_some(0)) else {
            // This FluentCRM does not know advanced filters (it answered
            // the first page of all contacts), or its ids are not numbers
            // to continue after: read the contacts by page number.
            tracing::info!("FluentCRM cannot filter contacts by id; reading them by page number.");
            let cursor = Cursor {
                page: 1,
                ..Cursor::default()
            };
            return Ok(paginator.numbered_page("subscribers", &cursor, bytes));
        };
        let records: Vec<Record> = paginator.data.into_iter().map(record).collect();
        if more {
            let next = Cursor {
                after_id: Some(highest),
                ..cursor
            };
            return Ok(Page {
                records,
                next: Some(providers::encode(&next)),
                bytes,
                requests: 0,
                ..Page::finished()
            });
        }
        // The last page: what the whole stream holds, for the caller to
        // compare with what it stored. Unfiltered, this page's total is
        // that; else ask once more, for one contact.
        let total = if filtered {
            let whole = Cursor::default();
            self.filtered(site, &whole, 1, &mut bytes).await?.total
        } else {
            paginator.total
        };
        Ok(Page {
            records,
            total,
            bytes,
            requests: 0,
            ..Page::finished()
        })
    }

    /// The first `per_page` contacts that match `cursor`'s filters, in id
    /// order, adding the bytes read to `bytes`.
    async fn filtered(
        &self,
        site: &Site<'_>,
        cursor: &Cursor,
        per_page: u64,
        bytes: &mut u64,
    ) -> Result<Paginator, Error> {
        let mut query = vec![
            ("per_page", per_page.to_string()),
            ("page", "1".to_owned()),
            ("sort_by", "id".to_owned()),
            ("sort_type", "ASC".to_owned()),
        ];
        let mut filters = Vec::new();
        if let Some(after) = cursor.after_id {
            filters.push(
                json!({"source": ["subscriber", "id"], "operator": ">", "value": after.to_string()}),
            );
        }
        if let Some(after) = &cursor.updated_after {
            filters.push(
                json!({"source": ["subscriber", "updated_at"], "operator": ">=", "value": after}),
            );
        }
        if !filters.is_empty() {
            // One group: its items must all hold.
            query.push(("filter_type", "advanced".to_owned()));
            query.push(("advanced_filters", json!([filters]).to_string()));
        }
        let reply = site
            .get::<Body>(&self.http, Api::FluentCrm, "subscribers", &query)
            .await?;
        *bytes += reply.bytes;
        let total = reply.body.pagination.and_then(|p| p.total);
        Ok(reply.body.listing.paginator(1, total))
    }
}

/// The numeric id of a listed contact or list; FluentCRM's are integers.
fn id_of(item: &Item<Keys>) -> Option<u64> {
    item.keys.id.parse().ok()
}

/// A contact or list as a record, keyed by `id` and dated by `updated_at`.
fn record(Item { keys, payload }: Item<Keys>) -> Record {
    Record {
        external_id: keys.id,
        updated_at: wp::naive_utc(keys.updated_at.as_deref(), TIME_FORMAT),
        payload,
    }
}

/// A number that may be written as a string (`3` or `"3"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Number(u64),
    Text(String),
}

impl Number {
    fn value<E: serde::de::Error>(self) -> Result<u64, E> {
        match self {
            Self::Number(n) => Ok(n),
            Self::Text(text) => text
                .trim()
                .parse()
                .map_err(|_| E::custom(format!("expected a number, got {text:?}"))),
        }
    }
}

fn number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    Number::deserialize(deserializer)?.value()
}

fn optional_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    Option::<Number>::deserialize(deserializer)?
        .map(Number::value)
        .transpose()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn paginator_numbers_may_be_strings() {
        let listing = Listing::deserialize(json!({
            "current_page": "2",
            "last_page": 3,
            "per_page": "100",
            "total": "230",
            "data": [{"id": "101", "updated_at": "2024-01-02 03:04:05"}],
        }))
        .unwrap();

        let Listing::Paginated(paginator) = listing else {
            panic!("expected a paginator");
        };
        assert_eq!(
            (paginator.current_page, paginator.last_page, paginator.total),
            (2, 3, Some(230))
        );
        let record = record(paginator.data.into_iter().next().unwrap());
        assert_eq!(record.external_id, "101");
        assert_eq!(
            record.updated_at.unwrap().to_rfc3339(),
            "2024-01-02T03:04:05+00:00"
        );
    }

    #[test]
    fn a_bare_array_without_a_total_is_the_whole_stream() {
        let listing = Listing::deserialize(json!([{"id": 1}, {"id": "2"}])).unwrap();

        let page = listing
            .paginator(1, None)
            .numbered_page("lists", &Cursor::default(), 0);

        let ids: Vec<_> = page
            .records
            .iter()
            .map(|r| r.external_id.as_str())
            .collect();
        assert_eq!(ids, ["1", "2"]);
        assert_eq!((page.next, page.total), (None, Some(2)));
    }

    #[test]
    fn a_bare_array_with_a_larger_total_has_more_pages() {
        // Newer FluentCRM: `{"lists": [the page's items], "pagination": {"total"}}`.
        let body: Body = serde_json::from_value(json!({
            "lists": (1..=100).map(|id| json!({"id": id})).collect::<Vec<_>>(),
            "pagination": {"total": 130},
        }))
        .unwrap();

        let page = body
            .listing
            .paginator(1, body.pagination.and_then(|p| p.total))
            .numbered_page("lists", &Cursor::default(), 0);

        assert_eq!(page.records.len(), 100);
        assert_eq!(page.total, Some(130));
        assert_eq!(page.next, Some(json!({"page": 2, "total_at_start": 130})));
    }

    #[test]
    fn a_non_numeric_page_number_is_an_error() {
        let result = Listing::deserialize(json!({
            "current_page": "one", "last_page": 1, "data": [],
        }));

        assert!(result.is_err());
    }
}
