//! WordPress posts and pages over the core REST API (`wp/v2`).

use fleet_events::ConnectorId;
use futures::{FutureExt as _, future::BoxFuture};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    Account, Connector, Credentials, Error, Page, Record, StreamSpec,
    http::Http,
    wp::{self, Api, Item, Reply, Site},
};

/// Records per request: the most `per_page` accepts (101 is a 400).
const PER_PAGE: u64 = 100;

/// Format of `modified_gmt`: UTC, but written without an offset.
const GMT_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// The WordPress connector: validates with `users/me`, syncs `posts` and
/// `pages` in order of modification, oldest first.
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

/// Where a WordPress sync stands.
///
/// A caller may start a stream with `{"page": 1, "modified_after": "…"}`
/// to read only what changed since then. WordPress compares
/// `modified_after` with the site-local `modified` field, not with
/// `modified_gmt`, so take the high-water mark from the payloads'
/// `modified`.
///
/// Paging is by page number, so an item changed during a sync moves to the
/// end of the order (and is read there), and can shift one unchanged item
/// from the next page to the page already read; a later sync picks it up.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    page: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    modified_after: Option<String>,
}

/// The fields a record is keyed and dated by; the rest stays in the payload.
#[derive(Deserialize)]
struct Keys {
    #[serde(deserialize_with = "wp::external_id")]
    id: String,
    #[serde(default)]
    modified_gmt: Option<String>,
}

static STREAMS: [StreamSpec; 2] = [
    StreamSpec {
        name: "posts",
        description: "Published posts, least recently modified first",
    },
    StreamSpec {
        name: "pages",
        description: "Published pages, least recently modified first",
    },
];

impl Connector for WordPress {
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
            let site = Site::new(&self.id, credentials, self.http.allow_http())?;
            site.account(&self.http).await
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

impl WordPress {
    async fn page(
        &self,
        credentials: &Credentials,
        stream: &str,
        cursor: Option<&Value>,
    ) -> Result<Page, Error> {
        let site = Site::new(&self.id, credentials, self.http.allow_http())?;
        let Some(spec) = STREAMS.iter().find(|spec| spec.name == stream) else {
            return Err(Error::UnknownStream {
                connector: self.id.clone(),
                stream: stream.to_owned(),
            });
        };
        let cursor = self.cursor(cursor)?;
        let reply = site
            .get(&self.http, Api::WordPress, spec.name, &cursor.query())
            .await;
        match reply {
            Ok(reply) => Ok(cursor.page(reply)),
            // Past the last page (the stream shrank while it was read).
            Err(Error::Rejected { code, .. }) if code == "rest_post_invalid_page_number" => {
                Ok(Page::finished())
            }
            Err(error) => Err(error),
        }
    }

    fn cursor(&self, cursor: Option<&Value>) -> Result<Cursor, Error> {
        let Some(cursor) = cursor else {
            return Ok(Cursor {
                page: 1,
                modified_after: None,
            });
        };
        Cursor::deserialize(cursor).map_err(|source| Error::InvalidCursor {
            connector: self.id.clone(),
            source,
        })
    }
}

impl Cursor {
    /// The listing parameters of this cursor's page.
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = vec![
            ("per_page", PER_PAGE.to_string()),
            ("page", self.page.to_string()),
            ("orderby", "modified".to_owned()),
            ("order", "asc".to_owned()),
            ("context", "view".to_owned()),
        ];
        if let Some(modified_after) = &self.modified_after {
            query.push(("modified_after", modified_after.clone()));
        }
        query
    }

    /// The page `reply` holds, pointing to the next one unless it was the
    /// last.
    fn page(self, reply: Reply<Vec<Item<Keys>>>) -> Page {
        let more = match wp::header_u64(&reply.headers, "x-wp-totalpages") {
            Some(total_pages) => self.page < total_pages,
            // Some caches drop the headers: a full page may have a next one.
            None => reply.body.len() as u64 == PER_PAGE,
        };
        let next = more.then(|| {
            serde_json::to_value(Self {
                page: self.page + 1,
                modified_after: self.modified_after,
            })
            .expect("a cursor serialises")
        });
        Page {
            total: wp::header_u64(&reply.headers, "x-wp-total"),
            records: reply.body.into_iter().map(record).collect(),
            next,
        }
    }
}

/// A post or page as a record, keyed by `id` and dated by `modified_gmt`.
fn record(Item { keys, payload }: Item<Keys>) -> Record {
    Record {
        external_id: keys.id,
        updated_at: wp::naive_utc(keys.modified_gmt.as_deref(), GMT_FORMAT),
        payload,
    }
}
