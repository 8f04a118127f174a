//! The provider interface every connector implements, and what it returns.

use std::fmt;

use chrono::{DateTime, Utc};
use fleet_events::{AccountInfo, ConnectorId};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::{Credentials, Error, StreamSchema, text};

/// One provider: how to check credentials and how to read its data.
///
/// Workers hold connectors as `Arc<dyn Connector>` from the
/// [`Registry`](crate::Registry), so the async methods return boxed futures.
/// Every call is independent: a connector keeps no per-connection state, and
/// the cursor carries everything a sync needs to resume.
pub trait Connector: Send + Sync + fmt::Debug {
    /// The catalog id, such as `wordpress`.
    fn id(&self) -> &ConnectorId;

    /// The streams [`sync_page`](Connector::sync_page) can read.
    fn streams(&self) -> &[StreamSpec];

    /// Checks `credentials` with one cheap authenticated call and says whose
    /// account they open.
    ///
    /// # Errors
    ///
    /// Any [`Error`]; [`Error::class`] says whether to retry or to ask the
    /// user for new credentials.
    fn validate<'a>(
        &'a self,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Account, Error>>;

    /// Reads one page of `stream`: the first page when `cursor` is `None`,
    /// else the page that `cursor` (a previous [`Page::next`]) points to.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownStream`] and [`Error::InvalidCursor`] for bad
    /// arguments, else any provider [`Error`].
    fn sync_page<'a>(
        &'a self,
        credentials: &'a Credentials,
        stream: &'a str,
        cursor: Option<&'a serde_json::Value>,
    ) -> BoxFuture<'a, Result<Page, Error>>;

    /// The first cursor of an incremental pass over `stream`: one that
    /// reads only what changed since `since` (the start of the last
    /// complete pass, by the caller's clock), widened by the provider's
    /// safety overlap for clock skew, equal timestamps and data the
    /// provider revises after the fact. `None` when the stream cannot be
    /// read incrementally: the caller reads it whole.
    ///
    /// The pages of an incremental pass say nothing about deletions; the
    /// caller finds those with a full pass (see [`StreamSpec::reconcile`]).
    fn incremental_start(&self, stream: &str, since: DateTime<Utc>) -> Option<serde_json::Value> {
        let _ = (stream, since);
        None
    }

    /// The JSON Schema of the payloads `stream` stores; `None` for a
    /// stream this connector does not have.
    fn stream_schema(&self, stream: &str) -> Option<&'static StreamSchema> {
        let _ = stream;
        None
    }
}

/// A stream a connector can sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StreamSpec {
    /// The name passed to [`Connector::sync_page`], such as `posts`.
    pub name: &'static str,
    /// What the stream holds, for people.
    pub description: &'static str,
    /// Whether a full pass reads every record the stream holds, so that a
    /// stored record the pass did not see was deleted at the provider (or
    /// left the stream's definition: trashed, unpublished, archived). A
    /// report over a moving date window is not: its older rows stay.
    pub reconcile: bool,
}

/// The provider account that credentials open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The provider's id of the account; for WordPress sites, the site URL.
    pub id: String,
    /// A name to show the user.
    pub name: String,
}

impl Account {
    /// The account `id` named `name`, both as a provider sent them: cut to
    /// a length the fleet stores ([`text::MAX_ID_CHARS`],
    /// [`text::MAX_NAME_CHARS`]), and named by its id when the name is
    /// blank.
    pub(crate) fn new(id: &str, name: &str) -> Self {
        let id = text::cap(id.trim(), text::MAX_ID_CHARS);
        let name = match name.trim() {
            "" => text::cap(&id, text::MAX_NAME_CHARS),
            name => text::cap(name, text::MAX_NAME_CHARS),
        };
        Self { id, name }
    }
}

impl From<Account> for AccountInfo {
    fn from(account: Account) -> Self {
        Self {
            id: account.id,
            name: account.name,
        }
    }
}

/// One page of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The records, in the provider's order.
    pub records: Vec<Record>,
    /// The cursor of the next page; `None` when the stream is finished.
    /// Opaque to callers: store it and hand it back.
    pub next: Option<serde_json::Value>,
    /// How many records the whole stream holds, when the provider says.
    /// On the last page of a pass it is the provider's count of the whole
    /// stream (not only of the changes an incremental pass read), which the
    /// caller compares with what it has stored.
    pub total: Option<u64>,
    /// Set when the pass may have missed records, with the reason: the
    /// provider changed in a way the paging could not follow, or a
    /// provider object could not be read. A pass with a gap is not a
    /// complete picture of the stream.
    pub gap: Option<String>,
    /// Bytes of the response bodies read for this page.
    pub bytes: u64,
    /// HTTP requests sent to the provider for this page, retries and
    /// token renewals within it included: what the page cost in API calls.
    /// Counted by the connector runtime; a provider's own value is replaced.
    pub requests: u64,
    /// External ids of records the provider reports removed from the
    /// stream since the pass began (deleted, archived, moved away), for the
    /// caller to mark deleted at once instead of at the next full pass.
    pub removed: Vec<String>,
}

impl Page {
    /// A page with no records that finishes the stream.
    pub(crate) fn finished() -> Self {
        Self {
            records: Vec::new(),
            next: None,
            total: None,
            gap: None,
            bytes: 0,
            requests: 0,
            removed: Vec::new(),
        }
    }
}

/// One item of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The provider's id of the item, unique within its stream: the key for
    /// idempotent upserts.
    pub external_id: String,
    /// The item as the provider sent it.
    pub payload: serde_json::Value,
    /// When the provider last changed the item, if it says.
    pub updated_at: Option<DateTime<Utc>>,
}
