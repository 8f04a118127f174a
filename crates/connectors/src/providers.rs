//! The providers, and the one [`Connector`] implementation they share.
//!
//! A provider implements [`Provider`]: its streams, its typed cursor,
//! how it validates credentials and reads one page. [`ProviderConnector`]
//! does the rest for all of them: it finds the stream
//! ([`Error::UnknownStream`]), decodes the cursor a caller hands back
//! ([`Error::InvalidCursor`]) or starts a pass, and boxes the futures for
//! `Arc<dyn Connector>`. Every request goes through the HTTP pipeline of
//! [`crate::http`], with the provider's own reading of its error bodies.

use std::{fmt, future::Future};

use chrono::{DateTime, Utc};
use fleet_events::ConnectorId;
use futures::{FutureExt as _, future::BoxFuture};
use serde::{Deserialize as _, Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{Account, Connector, Credentials, Error, Page, StreamSchema, StreamSpec};

mod bearer;
mod fields;
pub(crate) mod fluentcrm;
pub(crate) mod generic_oauth2;
pub(crate) mod google_analytics;
pub(crate) mod linkedin;
pub(crate) mod meta;
pub(crate) mod trello;
mod window;
pub(crate) mod wordpress;
mod wp;

/// What one provider does that no other does.
pub(crate) trait Provider: Send + Sync + fmt::Debug + 'static {
    /// Where a pass over one of its streams stands; the caller stores it
    /// as the opaque [`Page::next`].
    type Cursor: Serialize + DeserializeOwned + Send;

    /// The streams [`page`](Self::page) reads.
    const STREAMS: &'static [StreamSpec];

    /// The catalog id, such as `wordpress`.
    fn id(&self) -> &ConnectorId;

    /// The connector name its streams' schemas are filed under
    /// ([`crate::schemas`]): its catalog id, unless it serves many.
    fn schema_connector(&self) -> &str {
        self.id().as_str()
    }

    /// Checks `credentials` with one cheap authenticated call.
    fn validate(
        &self,
        credentials: &Credentials,
    ) -> impl Future<Output = Result<Account, Error>> + Send;

    /// The cursor of the first page of a full pass over `stream`.
    fn first(&self, stream: &StreamSpec) -> Self::Cursor;

    /// The cursor of the first page of a pass over `stream` that reads
    /// only what changed since `since`; `None` when the stream is read
    /// whole every time (see [`Connector::incremental_start`]).
    fn incremental(&self, stream: &StreamSpec, since: DateTime<Utc>) -> Option<Self::Cursor> {
        let _ = (stream, since);
        None
    }

    /// Reads the page of `stream` (one of [`STREAMS`](Self::STREAMS)) at
    /// `cursor`.
    fn page(
        &self,
        credentials: &Credentials,
        stream: &StreamSpec,
        cursor: Self::Cursor,
    ) -> impl Future<Output = Result<Page, Error>> + Send;
}

/// The [`Connector`] of a [`Provider`].
pub(crate) struct ProviderConnector<P>(P);

impl<P: Provider> ProviderConnector<P> {
    pub(crate) fn new(provider: P) -> Self {
        Self(provider)
    }

    /// The stream named `name`.
    fn stream(&self, name: &str) -> Result<&StreamSpec, Error> {
        P::STREAMS
            .iter()
            .find(|spec| spec.name == name)
            .ok_or_else(|| Error::UnknownStream {
                connector: self.0.id().clone(),
                stream: name.to_owned(),
            })
    }

    /// `cursor` decoded, or the start of a full pass over `stream`.
    fn cursor(&self, stream: &StreamSpec, cursor: Option<&Value>) -> Result<P::Cursor, Error> {
        let Some(cursor) = cursor else {
            return Ok(self.0.first(stream));
        };
        P::Cursor::deserialize(cursor).map_err(|source| Error::InvalidCursor {
            connector: self.0.id().clone(),
            source,
        })
    }
}

impl<P: Provider> fmt::Debug for ProviderConnector<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<P: Provider> Connector for ProviderConnector<P> {
    fn id(&self) -> &ConnectorId {
        self.0.id()
    }

    fn streams(&self) -> &[StreamSpec] {
        P::STREAMS
    }

    fn validate<'a>(
        &'a self,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Account, Error>> {
        self.0.validate(credentials).boxed()
    }

    fn sync_page<'a>(
        &'a self,
        credentials: &'a Credentials,
        stream: &'a str,
        cursor: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<Page, Error>> {
        async move {
            let stream = self.stream(stream)?;
            let cursor = self.cursor(stream, cursor)?;
            let (page, read, requests) =
                crate::http::counting(self.0.page(credentials, stream, cursor)).await;
            // Every body read counts, whether or not the provider added it up.
            page.map(|page| Page {
                bytes: page.bytes.max(read),
                requests,
                ..page
            })
        }
        .boxed()
    }

    fn incremental_start(&self, stream: &str, since: DateTime<Utc>) -> Option<Value> {
        let stream = self.stream(stream).ok()?;
        let cursor = self.0.incremental(stream, since)?;
        Some(encode(&cursor))
    }

    fn stream_schema(&self, stream: &str) -> Option<&'static StreamSchema> {
        crate::schemas::stream_schema(self.0.schema_connector(), stream)
    }
}

/// The most listing pages (ad accounts, organizations, account
/// summaries) one call reads while they come back empty with a next page.
/// A provider may answer empty pages with a link to the next for ever; past
/// this many, the call hands back its position as the page's cursor, so the
/// sync's own limits on pages and time count them.
pub(crate) const MAX_EMPTY_LISTING_PAGES: usize = 20;

/// `cursor` as the [`Page::next`] a caller stores.
pub(crate) fn encode<C: Serialize>(cursor: &C) -> Value {
    serde_json::to_value(cursor).expect("a cursor serialises")
}
