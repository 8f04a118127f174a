//! The dead-letter stream as operators work with it: list and read dead
//! letters by tenant, connection, step and reason, replay them to the step
//! that gave up, and delete them.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer::pull, stream::Stream};
use chrono::{DateTime, Utc};
use fleet_events::{ConnectionId, DeadLetter, Envelope, Step, TenantId};
use futures::StreamExt as _;

use crate::{DLQ_STREAM, EVENT_TYPE_HEADER};

/// What went wrong reading or changing the dead-letter stream.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The stream could not be opened or read.
    #[error("failed to {action} the dead-letter stream {DLQ_STREAM}")]
    Stream {
        /// What was being done.
        action: &'static str,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The replayed message was not stored.
    #[error("failed to replay dead letter {sequence} to {subject}")]
    Replay {
        /// The dead letter's sequence.
        sequence: u64,
        /// Where it was sent.
        subject: String,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    fn stream(
        action: &'static str,
    ) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> Self {
        move |source| Self::Stream { action, source }
    }
}

/// Which dead letters a command applies to; every field that is set must
/// match.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// The tenant of the original message.
    pub tenant: Option<TenantId>,
    /// Its connection.
    pub connection: Option<ConnectionId>,
    /// The step that gave up.
    pub step: Option<Step>,
    /// Text the reason contains, ignoring case.
    pub reason: Option<String>,
    /// Only these dead-letter sequences; all when empty.
    pub sequences: Vec<u64>,
}

impl Filter {
    /// The subject filter that selects the tenant, connection and step on
    /// the server: `connector.dlq.<step|*>.<tenant|*>.<connection|*>`.
    fn subject(&self) -> String {
        let part = |value: Option<&str>| value.unwrap_or("*").to_owned();
        format!(
            "connector.dlq.{}.{}.{}",
            part(self.step.map(Step::as_str)),
            part(self.tenant.as_ref().map(TenantId::as_str)),
            part(self.connection.as_ref().map(ConnectionId::as_str)),
        )
    }

    fn matches(&self, entry: &Entry) -> bool {
        let reason = self.reason.as_ref().is_none_or(|text| {
            entry.letter.as_ref().is_some_and(|letter| {
                letter
                    .data
                    .reason
                    .to_lowercase()
                    .contains(&text.to_lowercase())
            })
        });
        let sequence = self.sequences.is_empty() || self.sequences.contains(&entry.sequence);
        reason && sequence
    }
}

/// One dead letter as stored.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its sequence in the dead-letter stream: its id for `show`, `replay`
    /// and `purge`.
    pub sequence: u64,
    /// When the stream stored it.
    pub stored_at: DateTime<Utc>,
    /// Its subject, `connector.dlq.<step>.<tenant>.<connection>`.
    pub subject: String,
    /// The dead letter, or `None` when the stored bytes are not one.
    pub letter: Option<Envelope<DeadLetter>>,
}

/// What a replay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replayed {
    /// The original was published again and the dead letter deleted.
    Sent {
        /// The original's new sequence in its stream.
        sequence: u64,
    },
    /// The stream had the replay already (a replay interrupted before it
    /// deleted the dead letter); the dead letter is deleted now.
    AlreadySent,
}

/// The dead-letter stream.
#[derive(Debug, Clone)]
pub struct DeadLetters {
    js: jetstream::Context,
    stream: Stream,
}

impl DeadLetters {
    /// Opens the dead-letter stream.
    ///
    /// # Errors
    ///
    /// [`Error::Stream`] when it does not exist or cannot be read.
    pub async fn open(js: jetstream::Context) -> Result<Self, Error> {
        let stream = js
            .get_stream(DLQ_STREAM)
            .await
            .map_err(|e| Error::stream("open")(e.into()))?;
        Ok(Self { js, stream })
    }

    /// The dead letters `filter` selects, oldest first, at most `limit`.
    ///
    /// # Errors
    ///
    /// [`Error::Stream`] when the stream cannot be read.
    pub async fn list(&self, filter: &Filter, limit: usize) -> Result<Vec<Entry>, Error> {
        let consumer = self
            .stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: filter.subject(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::stream("read")(e.into()))?;
        let mut consumer = consumer;
        let pending = consumer
            .info()
            .await
            .map_err(|e| Error::stream("read")(e.into()))?
            .num_pending;
        let mut entries = Vec::new();
        if pending == 0 || limit == 0 {
            return Ok(entries);
        }
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| Error::stream("read")(e.into()))?;
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| Error::stream("read")(e.into()))?;
            let info = message
                .info()
                .map_err(|e| Error::stream("read")(e.to_string().into()))?;
            let (sequence, left) = (info.stream_sequence, info.pending);
            let stored_at = DateTime::from_timestamp_nanos(
                i64::try_from(info.published.unix_timestamp_nanos()).unwrap_or(i64::MAX),
            );
            let entry = Entry {
                sequence,
                stored_at,
                subject: message.subject.to_string(),
                letter: Envelope::<DeadLetter>::decode(&message.payload).ok(),
            };
            if filter.matches(&entry) {
                entries.push(entry);
            }
            if left == 0 || entries.len() >= limit {
                break;
            }
        }
        Ok(entries)
    }

    /// The dead letter with sequence `sequence`, or `None` when there is no
    /// such message.
    ///
    /// # Errors
    ///
    /// [`Error::Stream`] when the stream cannot be read.
    pub async fn get(&self, sequence: u64) -> Result<Option<Entry>, Error> {
        match self.stream.get_raw_message(sequence).await {
            Ok(message) => Ok(Some(Entry {
                sequence,
                stored_at: DateTime::from_timestamp_nanos(
                    i64::try_from(message.time.unix_timestamp_nanos()).unwrap_or(i64::MAX),
                ),
                subject: message.subject.to_string(),
                letter: Envelope::<DeadLetter>::decode(&message.payload).ok(),
            })),
            Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => {
                Ok(None)
            }
            Err(e) => Err(Error::stream("read")(e.into())),
        }
    }

    /// Publishes the original message of `entry` again on its original
    /// subject, as a new message (its deliveries start over), then deletes
    /// the dead letter. The deduplication id is `replay:<sequence>`: a
    /// replay interrupted between the two is not published twice when run
    /// again, while a message dead-lettered again after a replay gets a new
    /// sequence, and so can be replayed again.
    ///
    /// # Errors
    ///
    /// [`Error::Replay`] when the original cannot be published,
    /// [`Error::Stream`] when the dead letter cannot be deleted.
    pub async fn replay(&self, entry: &Entry) -> Result<Replayed, Error> {
        let Some(letter) = &entry.letter else {
            return Err(Error::Replay {
                sequence: entry.sequence,
                subject: entry.subject.clone(),
                source: "the stored message is not a dead letter".into(),
            });
        };
        let subject = letter.data.original_subject.clone();
        if let Some(reason) = not_replayable(entry, letter) {
            return Err(Error::Replay {
                sequence: entry.sequence,
                subject,
                source: reason.into(),
            });
        }
        let mut headers = HeaderMap::new();
        // The type names the event; a body that is not one gets no header
        // (and a value no header may hold is not one).
        if let Ok(kind) = fleet_events::peek_type(&letter.data.original)
            && let Ok(value) = kind.parse::<async_nats::HeaderValue>()
        {
            headers.insert(EVENT_TYPE_HEADER, value);
        }
        let message = jetstream::message::PublishMessage::build()
            .payload(letter.data.original.clone().into())
            .headers(headers)
            .message_id(format!("replay:{}", entry.sequence));
        let replay_error = |source: Box<dyn std::error::Error + Send + Sync>| Error::Replay {
            sequence: entry.sequence,
            subject: subject.clone(),
            source,
        };
        let ack = self
            .js
            .send_publish(subject.clone(), message)
            .await
            .map_err(|e| replay_error(e.into()))?
            .await
            .map_err(|e| replay_error(e.into()))?;
        self.delete(entry.sequence).await?;
        Ok(if ack.duplicate {
            Replayed::AlreadySent
        } else {
            Replayed::Sent {
                sequence: ack.sequence,
            }
        })
    }

    /// Deletes the dead letter `sequence`; `false` when there was none.
    ///
    /// # Errors
    ///
    /// [`Error::Stream`] when the server refuses.
    pub async fn delete(&self, sequence: u64) -> Result<bool, Error> {
        match self.stream.delete_message(sequence).await {
            Ok(deleted) => Ok(deleted),
            // The server answers "no message found" for a sequence already
            // gone; any other refusal leaves the message there.
            Err(e) => match self.get(sequence).await? {
                None => Ok(false),
                Some(_) => Err(Error::stream("delete from")(e.into())),
            },
        }
    }
}

/// Why `letter` may not be replayed where it says it came from: only to
/// a subject of the step that gave up, of the tenant and connection the
/// dead letter is filed under. Dead letters keep what any publisher sent,
/// so a replay must not become a way to publish anywhere else.
fn not_replayable(entry: &Entry, letter: &Envelope<DeadLetter>) -> Option<String> {
    let original = &letter.data.original_subject;
    let Ok(target) = fleet_events::subject::parse(original) else {
        return Some(format!("{original} is not one of the fleet's subjects"));
    };
    let filed = fleet_events::subject::parse(&entry.subject).ok()?;
    if target.family != fleet_events::Family::from(letter.data.step) {
        return Some(format!("{original} is not a {} subject", letter.data.step));
    }
    if (&target.tenant, &target.connection) != (&filed.tenant, &filed.connection) {
        return Some(format!(
            "{original} names another connection than the dead letter ({})",
            entry.subject
        ));
    }
    None
}
