//! The streams a scenario creates and deletes, so scenarios do not see each
//! other's messages and the bench never touches streams it did not create.

use async_nats::jetstream;
use futures::TryStreamExt as _;
use tracing::warn;

use crate::Error;

/// Streams claimed by one scenario: they did not exist before it, and
/// [`Claimed::release`] deletes them.
#[derive(Debug)]
pub(crate) struct Claimed {
    js: jetstream::Context,
    names: Vec<String>,
}

impl Claimed {
    /// Claims `names`, which the caller then creates.
    ///
    /// # Errors
    ///
    /// [`Error::StreamExists`] when one exists already.
    pub(crate) async fn claim(js: &jetstream::Context, names: Vec<String>) -> Result<Self, Error> {
        let existing: Vec<String> = js
            .stream_names()
            .try_collect()
            .await
            .map_err(|e| Error::jetstream("list streams", e))?;
        if let Some(name) = names.iter().find(|name| existing.contains(name)) {
            return Err(Error::StreamExists { name: name.clone() });
        }
        Ok(Self {
            js: js.clone(),
            names,
        })
    }

    /// Deletes the streams and their consumers. A stream that cannot be
    /// deleted is logged, not returned: the scenario's result matters more.
    pub(crate) async fn release(self) {
        for name in &self.names {
            if let Err(e) = self.js.delete_stream(name).await {
                warn!(stream = %name, error.message = %e, "Could not delete a bench stream.");
            }
        }
    }
}
