//! The provider interface every connector implements, and what it returns.

use std::fmt;

use chrono::{DateTime, Utc};
use fleet_events::{AccountInfo, ConnectorId};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::{Credentials, Error};

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
}

/// A stream a connector can sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StreamSpec {
    /// The name passed to [`Connector::sync_page`], such as `posts`.
    pub name: &'static str,
    /// What the stream holds, for people.
    pub description: &'static str,
}

/// The provider account that credentials open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The provider's id of the account; for WordPress sites, the site URL.
    pub id: String,
    /// A name to show the user.
    pub name: String,
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
    pub total: Option<u64>,
}

impl Page {
    /// A page with no records that finishes the stream.
    pub(crate) fn finished() -> Self {
        Self {
            records: Vec::new(),
            next: None,
            total: None,
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
