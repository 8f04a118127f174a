//! FluentCRM contacts and lists over the plugin's REST API (`fluent-crm/v2`).

use fleet_events::ConnectorId;
use futures::{FutureExt as _, future::BoxFuture};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::{
    Account, Connector, Credentials, Error, Page, Record, StreamSpec,
    http::Http,
    wp::{self, Api, Item, Site},
};

/// Records per request. FluentCRM's default is 15; 100 keeps a page
/// within a second or two of PHP time on a modest host.
const PER_PAGE: u64 = 100;

/// Format of `created_at`/`updated_at`: the site's local time without an
/// offset. The connector reads it as UTC, so on a site whose timezone is
/// not UTC, `updated_at` is off by the site's UTC offset; it orders
/// records of one site correctly, which is what it is used for.
const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// The FluentCRM connector: validates with `users/me` and one `lists`
/// call, syncs `subscribers` (contacts) and `lists` in id order.
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

static STREAMS: [StreamSpec; 2] = [
    StreamSpec {
        name: "subscribers",
        description: "Contacts, in id order",
        reconcile: true,
    },
    StreamSpec {
        name: "lists",
        description: "Mailing lists, in id order",
        reconcile: true,
    },
];

/// Where a FluentCRM sync stands.
///
/// FluentCRM pages by number only, so a contact removed during a pass
/// before its position shifts the later ones a place back, and one of them
/// can fall between two pages. The cursor keeps the stream's total at the
/// start of the pass: if it fell by the end, the pass says it may have a
/// gap. New contacts get higher ids and land after the position, so they
/// cannot cause one.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    page: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    total_at_start: Option<u64>,
}

/// The fields a record is keyed and dated by; the rest stays in the payload.
#[derive(Deserialize)]
struct Keys {
    #[serde(deserialize_with = "wp::external_id")]
    id: String,
    #[serde(default)]
    updated_at: Option<String>,
}

/// A listing body: `{"subscribers": {paginator}}` or `{"lists": {paginator},
/// "pagination": {"total"}}`.
#[derive(Deserialize)]
struct Body {
    #[serde(rename = "subscribers", alias = "lists")]
    listing: Listing,
}

/// What a stream's key holds. Some FluentCRM versions answer `/lists` with
/// a bare array instead of a paginator, which is then the whole stream.
#[derive(Deserialize)]
#[serde(untagged)]
enum Listing {
    Paginated(Paginator),
    All(Vec<Item<Keys>>),
}

impl Listing {
    /// Page `cursor.page` of `stream`, pointing to the next one unless it
    /// was the last.
    fn page(self, stream: &str, cursor: &Cursor, bytes: u64) -> Page {
        match self {
            Self::Paginated(paginator) => {
                // Past the end is a 200 with empty data, not an error.
                let more =
                    paginator.current_page < paginator.last_page && !paginator.data.is_empty();
                let total_at_start = cursor.total_at_start.or(paginator.total);
                let shrank = matches!(
                    (total_at_start, paginator.total),
                    (Some(start), Some(now)) if now < start
                );
                let gap = (!more && shrank).then(|| {
                    format!(
                        "{stream} were removed in FluentCRM during the sync, which can shift one \
                         past the page boundary; some may be missing until the next sync"
                    )
                });
                Page {
                    records: paginator.data.into_iter().map(record).collect(),
                    next: more.then(|| {
                        serde_json::to_value(Cursor {
                            page: cursor.page + 1,
                            total_at_start,
                        })
                        .expect("a cursor serialises")
                    }),
                    total: paginator.total,
                    gap,
                    bytes,
                }
            }
            Self::All(items) => Page {
                total: Some(items.len() as u64),
                records: items.into_iter().map(record).collect(),
                next: None,
                gap: None,
                bytes,
            },
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

impl Connector for FluentCrm {
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
            let account = site.account(&self.http).await?;
            // Proves the plugin is active and the user may read the CRM.
            let query = [("per_page", "1".to_owned())];
            site.get::<Value>(&self.http, Api::FluentCrm, "lists", &query)
                .await?;
            Ok(account)
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

impl FluentCrm {
    async fn page(
        &self,
        credentials: &Credentials,
        stream: &str,
        cursor: Option<&Value>,
    ) -> Result<Page, Error> {
        let site = Site::new(&self.id, credentials, self.http.allow_http())?;
        // The sort direction is `sort_type` on /subscribers but `sort_order` on /lists.
        let order_param = match stream {
            "subscribers" => "sort_type",
            "lists" => "sort_order",
            _ => {
                return Err(Error::UnknownStream {
                    connector: self.id.clone(),
                    stream: stream.to_owned(),
                });
            }
        };
        let cursor = self.cursor(cursor)?;
        let query = [
            ("per_page", PER_PAGE.to_string()),
            ("page", cursor.page.to_string()),
            ("sort_by", "id".to_owned()),
            (order_param, "ASC".to_owned()),
        ];
        let reply = site
            .get::<Body>(&self.http, Api::FluentCrm, stream, &query)
            .await?;
        Ok(reply.body.listing.page(stream, &cursor, reply.bytes))
    }

    fn cursor(&self, cursor: Option<&Value>) -> Result<Cursor, Error> {
        let Some(cursor) = cursor else {
            return Ok(Cursor {
                page: 1,
                total_at_start: None,
            });
        };
        Cursor::deserialize(cursor).map_err(|source| Error::InvalidCursor {
            connector: self.id.clone(),
            source,
        })
    }
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
    fn a_bare_array_is_the_whole_stream() {
        let listing = Listing::deserialize(json!([{"id": 1}, {"id": "2"}])).unwrap();

        let Listing::All(items) = listing else {
            panic!("expected a bare array");
        };
        let ids: Vec<_> = items
            .into_iter()
            .map(|item| record(item).external_id)
            .collect();
        assert_eq!(ids, ["1", "2"]);
    }

    #[test]
    fn a_non_numeric_page_number_is_an_error() {
        let result = Listing::deserialize(json!({
            "current_page": "one", "last_page": 1, "data": [],
        }));

        assert!(result.is_err());
    }
}
