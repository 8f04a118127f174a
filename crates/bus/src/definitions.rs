//! Stream and consumer definitions from `nats/`, and applying them to a server.
//!
//! The JSON files under `nats/streams` and `nats/consumers/<STREAM>` are in the
//! JetStream API's own format, so the `nats` CLI accepts them too
//! (`nats stream add --config nats/streams/CONNECTOR_STEPS.json`). They are
//! compiled into the binary; [`Definitions::builtin`] parses them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream};
use tracing::info;

use crate::Error;

/// The files under `nats/`, embedded at build time: (path, JSON text).
const STREAM_FILES: &[(&str, &str)] = &[
    (
        "nats/streams/CONNECTOR_STEPS.json",
        include_str!("../../../nats/streams/CONNECTOR_STEPS.json"),
    ),
    (
        "nats/streams/CONNECTOR_STATUS.json",
        include_str!("../../../nats/streams/CONNECTOR_STATUS.json"),
    ),
    (
        "nats/streams/CONNECTOR_DLQ.json",
        include_str!("../../../nats/streams/CONNECTOR_DLQ.json"),
    ),
    (
        "nats/streams/CONNECTOR_HEALTH.json",
        include_str!("../../../nats/streams/CONNECTOR_HEALTH.json"),
    ),
];

const CONSUMER_FILES: &[(&str, &str, &str)] = &[
    (
        "CONNECTOR_STEPS",
        "nats/consumers/CONNECTOR_STEPS/validate.json",
        include_str!("../../../nats/consumers/CONNECTOR_STEPS/validate.json"),
    ),
    (
        "CONNECTOR_STEPS",
        "nats/consumers/CONNECTOR_STEPS/save.json",
        include_str!("../../../nats/consumers/CONNECTOR_STEPS/save.json"),
    ),
    (
        "CONNECTOR_STEPS",
        "nats/consumers/CONNECTOR_STEPS/sync.json",
        include_str!("../../../nats/consumers/CONNECTOR_STEPS/sync.json"),
    ),
    (
        "CONNECTOR_STATUS",
        "nats/consumers/CONNECTOR_STATUS/status.json",
        include_str!("../../../nats/consumers/CONNECTOR_STATUS/status.json"),
    ),
    (
        "CONNECTOR_STATUS",
        "nats/consumers/CONNECTOR_STATUS/meter.json",
        include_str!("../../../nats/consumers/CONNECTOR_STATUS/meter.json"),
    ),
    (
        "CONNECTOR_STATUS",
        "nats/consumers/CONNECTOR_STATUS/webhook.json",
        include_str!("../../../nats/consumers/CONNECTOR_STATUS/webhook.json"),
    ),
];

/// Name of the work-queue stream holding the validate, save and sync steps
/// and the sync schedules.
pub const STEPS_STREAM: &str = "CONNECTOR_STEPS";
/// Name of the limits stream holding every status change.
pub const STATUS_STREAM: &str = "CONNECTOR_STATUS";
/// Name of the dead-letter stream.
pub const DLQ_STREAM: &str = "CONNECTOR_DLQ";
/// Name of the stream of health changes (degraded, recovered).
pub const HEALTH_STREAM: &str = "CONNECTOR_HEALTH";

/// The consumer metadata key that holds how many deliveries a step's
/// handler gets (see [`ConsumerDefinition::attempts`]).
pub const ATTEMPTS_METADATA: &str = "fleet.attempts";

/// [`ConsumerDefinition::attempts`] from a consumer's metadata and
/// `max_deliver`, as the server reports them.
pub(crate) fn attempts_of(
    metadata: &std::collections::HashMap<String, String>,
    max_deliver: i64,
) -> Option<u32> {
    metadata
        .get(ATTEMPTS_METADATA)
        .and_then(|n| n.parse::<u32>().ok())
        .or_else(|| u32::try_from(max_deliver).ok())
        .filter(|&n| n > 0)
}

/// Refuses a consumer definition whose attempts metadata is not a positive
/// whole number, or which lets the server stop delivering a message before
/// the runtime can settle its last attempt.
fn check_attempts(path: &str, config: &pull::Config) -> Result<(), Error> {
    let Some(value) = config.metadata.get(ATTEMPTS_METADATA) else {
        return Ok(());
    };
    let refuse = |reason: String| Error::Definition {
        path: path.to_owned(),
        reason,
    };
    let attempts = value
        .parse::<u32>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            refuse(format!(
                "metadata {ATTEMPTS_METADATA} must be a whole number above 0, not {value:?}"
            ))
        })?;
    if config.max_deliver > 0 {
        return Err(refuse(format!(
            "max_deliver {} can end the deliveries before the worker settles a message whose \
             last attempt never finished (it starts such a message over, or dead-letters it, on \
             a delivery past the {attempts} attempts of {ATTEMPTS_METADATA}); set it to -1",
            config.max_deliver
        )));
    }
    Ok(())
}

/// A durable consumer and the stream it reads.
#[derive(Debug, Clone)]
pub struct ConsumerDefinition {
    /// Stream name.
    pub stream: String,
    /// Consumer configuration; `durable_name` is always set.
    pub config: pull::Config,
}

impl ConsumerDefinition {
    /// How many deliveries of a message the step's handler gets: the
    /// consumer's [`ATTEMPTS_METADATA`], else its `max_deliver`; `None` when
    /// neither limits them.
    ///
    /// The fleet's consumers set the attempts and leave `max_deliver`
    /// unlimited. A delivery that never settles (its worker was killed, or lost
    /// the server for longer than the ack wait) is then delivered again even
    /// after the last attempt, and the runtime settles it instead of the
    /// handler: it starts the message over a bounded number of times, then
    /// dead-letters it with a status. With `max_deliver` as the only limit,
    /// JetStream keeps such a message and tells no one.
    pub fn attempts(&self) -> Option<u32> {
        attempts_of(&self.config.metadata, self.config.max_deliver)
    }
}

/// Every stream and consumer the fleet needs.
#[derive(Debug, Clone)]
pub struct Definitions {
    /// Stream configurations.
    pub streams: Vec<stream::Config>,
    /// Durable pull consumers.
    pub consumers: Vec<ConsumerDefinition>,
}

impl Definitions {
    /// The definitions shipped in `nats/`.
    ///
    /// # Panics
    ///
    /// Never in a released binary: the embedded files are parsed by this
    /// crate's tests, so a file that does not parse fails the build's tests.
    pub fn builtin() -> Self {
        Self::parse_embedded().expect("the nats/ definitions embedded in fleet-bus parse")
    }

    fn parse_embedded() -> Result<Self, Error> {
        let streams = STREAM_FILES
            .iter()
            .map(|(path, text)| parse(path, text))
            .collect::<Result<Vec<stream::Config>, _>>()?;
        let consumers = CONSUMER_FILES
            .iter()
            .map(|(stream, path, text)| {
                let config: pull::Config = parse(path, text)?;
                check_attempts(path, &config)?;
                if config.durable_name.is_none() {
                    return Err(Error::Definition {
                        path: (*path).to_owned(),
                        reason: "a consumer definition needs a durable_name".to_owned(),
                    });
                }
                Ok(ConsumerDefinition {
                    stream: (*stream).to_owned(),
                    config,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { streams, consumers })
    }

    /// Reads definitions laid out like `nats/`: `streams/*.json` and
    /// `consumers/<STREAM>/*.json` under `dir`. Operators use it to tune
    /// limits or ack waits without a rebuild.
    ///
    /// # Errors
    ///
    /// [`Error::Definition`] for an unreadable directory or file, or one
    /// that does not parse.
    pub fn from_dir(dir: &Path) -> Result<Self, Error> {
        let streams = json_files(&dir.join("streams"))?
            .iter()
            .map(|path| parse(&path.display().to_string(), &read(path)?))
            .collect::<Result<Vec<stream::Config>, _>>()?;
        let mut consumers = Vec::new();
        for config in &streams {
            let stream_dir = dir.join("consumers").join(&config.name);
            if !stream_dir.is_dir() {
                continue;
            }
            for path in json_files(&stream_dir)? {
                let shown = path.display().to_string();
                let consumer: pull::Config = parse(&shown, &read(&path)?)?;
                check_attempts(&shown, &consumer)?;
                if consumer.durable_name.is_none() {
                    return Err(Error::Definition {
                        path: shown,
                        reason: "a consumer definition needs a durable_name".to_owned(),
                    });
                }
                consumers.push(ConsumerDefinition {
                    stream: config.name.clone(),
                    config: consumer,
                });
            }
        }
        Ok(Self { streams, consumers })
    }

    /// The paths of the embedded definition files, relative to the
    /// repository root.
    pub fn embedded_paths() -> impl Iterator<Item = &'static str> {
        STREAM_FILES
            .iter()
            .map(|(path, _)| *path)
            .chain(CONSUMER_FILES.iter().map(|(_, path, _)| *path))
    }

    /// The consumer named `durable`.
    pub fn consumer(&self, durable: &str) -> Option<&ConsumerDefinition> {
        self.consumers
            .iter()
            .find(|c| c.config.durable_name.as_deref() == Some(durable))
    }

    /// The consumer named `durable`, to change.
    fn consumer_mut(&mut self, durable: &str) -> Result<&mut ConsumerDefinition, Error> {
        self.consumers
            .iter_mut()
            .find(|c| c.config.durable_name.as_deref() == Some(durable))
            .ok_or_else(|| Error::UnknownConsumer(durable.to_owned()))
    }

    /// Changes the ack wait of the consumer named `durable` (tests use a
    /// short one to see redelivery after a crash quickly).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownConsumer`] when no consumer has that name.
    pub fn set_ack_wait(&mut self, durable: &str, ack_wait: Duration) -> Result<(), Error> {
        let consumer = self.consumer_mut(durable)?;
        consumer.config.ack_wait = ack_wait;
        Ok(())
    }

    /// Gives the consumer named `durable` `attempts` deliveries per message
    /// (tests use few to see a message given up quickly).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownConsumer`] when no consumer has that name.
    pub fn set_attempts(&mut self, durable: &str, attempts: u32) -> Result<(), Error> {
        let consumer = self.consumer_mut(durable)?;
        consumer
            .config
            .metadata
            .insert(ATTEMPTS_METADATA.to_owned(), attempts.to_string());
        consumer.config.max_deliver = -1;
        Ok(())
    }

    /// Creates every stream and consumer, or updates it when it exists, so a
    /// changed definition takes effect on the next start. Safe to run from
    /// any number of processes at once.
    ///
    /// # Errors
    ///
    /// [`Error::Provision`] when the server refuses a definition (for
    /// instance a change JetStream cannot apply in place, like the retention
    /// policy of an existing stream).
    pub async fn provision(&self, js: &jetstream::Context) -> Result<(), Error> {
        for config in &self.streams {
            js.create_or_update_stream(config.clone())
                .await
                .map_err(|source| Error::Provision {
                    what: format!("stream {}", config.name),
                    source: Box::new(source),
                })?;
        }
        for consumer in &self.consumers {
            let name = consumer.config.durable_name.clone().unwrap_or_default();
            js.create_consumer_on_stream(consumer.config.clone(), &consumer.stream)
                .await
                .map_err(|source| Error::Provision {
                    what: format!("consumer {}/{name}", consumer.stream),
                    source: Box::new(source),
                })?;
        }
        info!(
            streams = self.streams.len(),
            consumers = self.consumers.len(),
            "Provisioned JetStream streams and consumers."
        );
        Ok(())
    }
}

fn json_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let unreadable = |e: std::io::Error| Error::Definition {
        path: dir.display().to_string(),
        reason: e.to_string(),
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        if path.extension().is_some_and(|ext| ext == "json") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error::Definition {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn parse<T: serde::de::DeserializeOwned>(path: &str, text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| Error::Definition {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_definitions_parse() {
        let defs = Definitions::parse_embedded().unwrap();
        assert_eq!(defs.streams.len(), 4);
        assert_eq!(defs.consumers.len(), 6);
    }

    #[test]
    fn every_step_consumer_settles_a_last_attempt_that_never_finished() {
        // Limited attempts with unlimited deliveries: a killed last attempt
        // comes back to be started over or dead-lettered, not kept silently.
        for consumer in Definitions::builtin().consumers {
            let name = consumer.config.durable_name.clone().unwrap_or_default();
            assert_eq!(consumer.config.max_deliver, -1, "{name}");
            if matches!(name.as_str(), "validate" | "save" | "sync" | "status") {
                assert!(consumer.attempts().is_some(), "{name}");
            }
        }
    }

    #[test]
    fn a_consumer_whose_deliveries_end_with_its_attempts_is_refused() {
        let mut config = Definitions::builtin()
            .consumer("sync")
            .expect("a sync consumer")
            .config
            .clone();
        config.max_deliver = 8;
        let error = check_attempts("sync.json", &config)
            .unwrap_err()
            .to_string();
        assert!(error.contains("sync.json"), "{error}");
        assert!(
            error.contains("max_deliver 8 can end the deliveries"),
            "{error}"
        );
        config.max_deliver = -1;
        config
            .metadata
            .insert(ATTEMPTS_METADATA.to_owned(), "many".to_owned());
        let error = check_attempts("sync.json", &config)
            .unwrap_err()
            .to_string();
        assert!(error.contains("whole number above 0"), "{error}");
    }

    #[test]
    fn no_consumer_uses_a_backoff_array() {
        // A consumer backoff array replaces the ack wait and is ignored by a
        // plain Nak; retry delays live in the worker's retry table instead.
        for consumer in Definitions::builtin().consumers {
            assert!(consumer.config.backoff.is_empty(), "{consumer:?}");
        }
    }

    #[test]
    fn work_queue_consumer_filters_never_match_schedule_subjects() {
        // A work-queue consumer matching connector.schedule.* would ack and
        // so delete the schedules.
        for consumer in Definitions::builtin().consumers {
            let filter = &consumer.config.filter_subject;
            assert!(!filter.starts_with("connector.schedule"), "{filter}");
            assert_ne!(filter, ">");
            assert_ne!(filter, "connector.>");
        }
    }
}
