//! WordPress posts and pages over the core REST API (`wp/v2`).

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use fleet_events::ConnectorId;
use serde::{Deserialize, Serialize};

use crate::{
    Account, Credentials, Error, Page, Record, StreamSpec,
    http::{Http, Reply},
    providers::{
        self, Provider,
        fields::{self, Item},
        wp::{self, Api, Site},
    },
};

/// Records per request: the most `per_page` accepts (101 is a 400).
const PER_PAGE: u64 = 100;

/// How many records each request reads again from the end of the previous
/// one. Finding the last record read among them proves that nothing was
/// skipped; see [`Cursor`].
const OVERLAP: u64 = 5;

/// How often one page may step back further when the overlap does not
/// reach the last record read (more records were deleted before it than
/// the overlap spans) before the pass is reported as having a gap.
const MAX_STEPS_BACK: u32 = 8;

/// How much earlier than the last complete pass an incremental pass starts
/// reading: covers clock skew between the fleet and the site, edits saved
/// while the last pass ran, and `modified` values that tie at the second.
const INCREMENTAL_OVERLAP: TimeDelta = TimeDelta::minutes(10);

/// Format of `modified_gmt`: UTC, but written without an offset.
const GMT_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// The WordPress connector: validates with `users/me`, syncs `posts` and
/// `pages` in id order, whole or changed since a time.
#[derive(Debug)]
pub(crate) struct WordPress {
    id: ConnectorId,
    http: Http,
}

impl WordPress {
    pub(crate) fn new(http: Http) -> Self {
        Self {
            id: ConnectorId::parse("wordpress").expect("a valid connector id"),
            http,
        }
    }
}

/// Where a WordPress pass stands.
///
/// A pass reads the stream in id order with `offset` paging. Ids are
/// unique, so the order is total, and new posts get higher ids than every
/// existing one, so they land after the pass's position. Edits do not move
/// a post in id order. What can move records is removal (deletion,
/// trashing, unpublishing) before the position: every later record shifts
/// to a lower offset, and plain offset or page-number paging would skip as
/// many as were removed. So each request starts [`OVERLAP`] records before
/// the position and must contain the last id read (or a lower one); when
/// it does not, the pass steps back until it does. The records after the
/// last id read are the new ones, whatever shifted.
///
/// An incremental pass (`modified_after`) reads the same way: a post only
/// enters the changed set by being edited, which cannot make the pass skip
/// one, and leaves it only by being removed, which the overlap covers.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Cursor {
    /// Records of the listing up to the end of the last response.
    offset: u64,
    /// The highest id read in this pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_id: Option<u64>,
    /// Only posts modified after this time (UTC): an incremental pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    modified_after: Option<DateTime<Utc>>,
    /// The path of the `?rest_route=` API root, on sites without
    /// `/wp-json/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rest_route: Option<String>,
}

/// The fields a record is keyed and dated by; the rest stays in the payload.
#[derive(Deserialize)]
struct Keys {
    #[serde(deserialize_with = "fields::external_id")]
    id: String,
    #[serde(default)]
    modified_gmt: Option<String>,
}

static STREAMS: [StreamSpec; 2] = [
    StreamSpec {
        name: "posts",
        description: "Published posts, in id order",
        reconcile: true,
    },
    StreamSpec {
        name: "pages",
        description: "Published pages, in id order",
        reconcile: true,
    },
];

impl Provider for WordPress {
    type Cursor = Cursor;
    const STREAMS: &'static [StreamSpec] = &STREAMS;

    fn id(&self) -> &ConnectorId {
        &self.id
    }

    async fn validate(&self, credentials: &Credentials) -> Result<Account, Error> {
        let site = Site::new(&self.id, credentials, self.http.allow_http())?;
        site.account(&self.http).await
    }

    fn first(&self, _stream: &StreamSpec) -> Cursor {
        Cursor::default()
    }

    fn incremental(&self, _stream: &StreamSpec, since: DateTime<Utc>) -> Option<Cursor> {
        Some(Cursor {
            modified_after: Some(since - INCREMENTAL_OVERLAP),
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
        self.pass(&site, stream.name, cursor).await
    }
}

/// One response of a listing, decoded.
type Listing = Reply<Vec<Item<Keys>>>;

impl WordPress {
    /// The page of `stream` at `cursor`.
    async fn pass(&self, site: &Site<'_>, stream: &str, cursor: Cursor) -> Result<Page, Error> {
        if let Some(path) = &cursor.rest_route {
            site.use_query_root(path);
        }
        let mut bytes = 0;
        let mut start = cursor.offset.saturating_sub(OVERLAP);
        let mut steps_back = 0;
        let (listing, gap) = loop {
            let listing = self.list(site, stream, &cursor, start).await?;
            bytes += listing.bytes;
            let reaches_back = match (cursor.last_id, listing.body.first()) {
                // The first page, or the last id read is among (or before)
                // the records returned: nothing between was skipped.
                (None, _) => true,
                (Some(last), Some(first)) => id_of(first).is_some_and(|id| id <= last),
                // Past the end: the listing may have shrunk below the
                // position, with new records before it.
                (Some(_), None) => false,
            };
            if reaches_back || start == 0 {
                break (listing, None);
            }
            if steps_back == MAX_STEPS_BACK {
                let gap = format!(
                    "more {stream} were removed from the site during the sync than it could follow; \
                     some may be missing until the next sync"
                );
                break (listing, Some(gap));
            }
            steps_back += 1;
            start = match fields::header_u64(&listing.headers, "x-wp-total") {
                // Past the end of a listing that shrank: read its end.
                Some(total) if listing.body.is_empty() => {
                    total.saturating_sub(OVERLAP).min(start.saturating_sub(1))
                }
                _ => start.saturating_sub(PER_PAGE - OVERLAP),
            };
        };
        let received = listing.body.len() as u64;
        let total = fields::header_u64(&listing.headers, "x-wp-total");
        let last_id = cursor.last_id;
        let mut highest = last_id;
        let records: Vec<Record> = listing
            .body
            .into_iter()
            .filter(|item| {
                let id = id_of(item);
                highest = highest.max(id);
                last_id.is_none_or(|last| id.is_none_or(|id| id > last))
            })
            .map(record)
            .collect();
        // A full page may have a next one; a short one is the end.
        let more = received == PER_PAGE;
        // A short page while the site counts more (a plugin dropped items
        // after the query, or some are not readable to this user): the
        // pass cannot promise it saw everything, so it deletes nothing.
        let gap = match total {
            Some(total) if gap.is_none() && !more && start + received < total => Some(format!(
                "WordPress counts {total} {stream} but listed {} of them",
                start + received
            )),
            _ => gap,
        };
        let next = Cursor {
            offset: start + received,
            last_id: highest,
            modified_after: cursor.modified_after,
            rest_route: site.query_root_path(),
        };
        let total = match (more, cursor.modified_after) {
            // What the whole stream holds, for the caller to compare with
            // what it stored: an incremental pass's totals count only the
            // changes, so ask once more, for one id.
            (false, Some(_)) => {
                let whole = Cursor {
                    modified_after: None,
                    ..Cursor::default()
                };
                let listing = self.list_ids(site, stream, &whole).await?;
                bytes += listing.bytes;
                fields::header_u64(&listing.headers, "x-wp-total")
            }
            _ => total,
        };
        Ok(Page {
            records,
            next: more.then(|| providers::encode(&next)),
            total,
            gap,
            bytes,
            requests: 0,
            ..Page::finished()
        })
    }

    /// Up to [`PER_PAGE`] records of `stream` from `offset` in id order.
    async fn list(
        &self,
        site: &Site<'_>,
        stream: &str,
        cursor: &Cursor,
        offset: u64,
    ) -> Result<Listing, Error> {
        let mut query = cursor.query();
        query.push(("per_page", PER_PAGE.to_string()));
        query.push(("offset", offset.to_string()));
        site.get(&self.http, Api::WordPress, stream, &query).await
    }

    /// One id of `stream`, for the stream's total in `X-WP-Total`.
    async fn list_ids(
        &self,
        site: &Site<'_>,
        stream: &str,
        cursor: &Cursor,
    ) -> Result<Listing, Error> {
        let mut query = cursor.query();
        query.push(("per_page", "1".to_owned()));
        query.push(("_fields", "id".to_owned()));
        site.get(&self.http, Api::WordPress, stream, &query).await
    }
}

impl Cursor {
    /// The listing parameters every request of this pass shares.
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = vec![
            ("orderby", "id".to_owned()),
            ("order", "asc".to_owned()),
            ("context", "view".to_owned()),
        ];
        if let Some(after) = self.modified_after {
            // With an offset, WordPress converts the time to the site's
            // timezone before comparing it with the local `modified`.
            query.push((
                "modified_after",
                after.to_rfc3339_opts(SecondsFormat::Secs, true),
            ));
        }
        query
    }
}

/// The numeric id of a listed item; WordPress ids are integers.
fn id_of(item: &Item<Keys>) -> Option<u64> {
    item.keys.id.parse().ok()
}

/// A post or page as a record, keyed by `id` and dated by `modified_gmt`.
fn record(Item { keys, payload }: Item<Keys>) -> Record {
    Record {
        external_id: keys.id,
        updated_at: wp::naive_utc(keys.modified_gmt.as_deref(), GMT_FORMAT),
        payload,
    }
}
