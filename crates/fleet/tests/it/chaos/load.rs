//! Setup chains started the way the gateway starts them, a watch on every
//! status event, and the final accounting of what each chain stored.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull};
use chrono::{DateTime, SubsecRound as _, Utc};
use fleet_bus::Publisher;
use fleet_connectors::Credentials;
use fleet_events::{
    ConnectionId, ConnectionState, ConnectionStatus, ConnectorId, CorrelationId, Envelope, EventId,
    StatusChanged, SyncRequested, SyncTrigger, TenantId, ValidateRequested, subject,
};
use fleet_secrets::Version;
use futures::{StreamExt as _, TryStreamExt as _};
use tokio::task::JoinHandle;

use super::report::{Lost, Report};
use crate::helpers::{World, holds_within};

/// One setup chain: the connection it creates and what its sync must store.
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    pub(crate) tenant: TenantId,
    pub(crate) connection: ConnectionId,
    pub(crate) staged: Version,
    pub(crate) expected_records: u64,
}

/// A chain whose credentials are staged and whose connection is recorded,
/// with the request that starts it.
pub(crate) struct Prepared {
    chain: Chain,
    request: Envelope<ValidateRequested>,
}

/// What the status stream said about each connection.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    /// Each connection's newest status in the status writer's order,
    /// `(occurred_at, id)`: a redelivered step's late report can reach the
    /// stream after a newer status.
    last: HashMap<ConnectionId, ((DateTime<Utc>, EventId), ConnectionStatus)>,
    synced: HashMap<ConnectionId, u32>,
    /// `retrying` statuses seen.
    pub(crate) retries: u64,
    /// Their distinct reasons.
    pub(crate) retry_reasons: BTreeSet<String>,
    next_sequence: u64,
}

impl Watch {
    /// How many times `connection` has reported `synced`.
    pub(crate) fn synced(&self, connection: &ConnectionId) -> u32 {
        self.synced.get(connection).copied().unwrap_or(0)
    }

    /// How many connections have reported `synced` at least `times` times.
    pub(crate) fn count_synced(&self, times: u32) -> usize {
        self.synced.values().filter(|&&n| n >= times).count()
    }
}

/// Chains started on a world, and the watch that follows them.
pub(crate) struct Load {
    pub(crate) chains: Vec<Chain>,
    watch: Arc<Mutex<Watch>>,
    follower: JoinHandle<()>,
}

impl Load {
    /// Starts following the status stream from its first event.
    pub(crate) fn watch(js: &jetstream::Context) -> Self {
        let watch = Arc::new(Mutex::new(Watch {
            next_sequence: 1,
            ..Watch::default()
        }));
        let follower = tokio::spawn(follow(js.clone(), Arc::clone(&watch)));
        Self {
            chains: Vec::new(),
            watch,
            follower,
        }
    }

    /// Starts `count` setup chains spread over `tenants`, as the gateway
    /// does (stage the credentials, record the connection, publish the
    /// validate request), 16 at a time. `credentials(i)` gives chain `i`'s
    /// credentials and the records its sync must store.
    pub(crate) async fn start(
        &mut self,
        world: &World,
        tenants: &[TenantId],
        count: usize,
        credentials: impl Fn(usize) -> (Credentials, u64),
    ) {
        let prepared = Self::prepare(world, tenants, count, credentials).await;
        self.launch(world, prepared).await;
    }

    /// The first half of [`start`](Self::start): stages the credentials
    /// and records the connections.
    pub(crate) async fn prepare(
        world: &World,
        tenants: &[TenantId],
        count: usize,
        credentials: impl Fn(usize) -> (Credentials, u64),
    ) -> Vec<Prepared> {
        let wordpress = ConnectorId::parse("wordpress").unwrap();
        futures::stream::iter(0..count)
            .map(|i| {
                let tenant = tenants[i % tenants.len()].clone();
                let (credentials, expected_records) = credentials(i);
                let wordpress = wordpress.clone();
                async move {
                    let setup = fleet_harness::Setup {
                        secrets: &world.secrets,
                        store: &world.store,
                    };
                    let request = setup
                        .stage(&tenant, &wordpress, "chaos", &credentials)
                        .await;
                    let connection = request.connection.clone();
                    let staged = Version::new(request.data.staged_version);
                    Prepared {
                        chain: Chain {
                            tenant,
                            connection,
                            staged,
                            expected_records,
                        },
                        request,
                    }
                }
            })
            .buffer_unordered(16)
            .collect()
            .await
    }

    /// The second half of [`start`](Self::start): publishes the validate
    /// requests, which needs only NATS.
    pub(crate) async fn launch(&mut self, world: &World, prepared: Vec<Prepared>) {
        let publisher = Publisher::new(world.js.clone());
        let chains: Vec<Chain> = futures::stream::iter(prepared)
            .map(|Prepared { chain, request }| {
                let publisher = publisher.clone();
                async move {
                    publisher
                        .publish(&request, &request.id.to_string())
                        .await
                        .unwrap();
                    chain
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        self.chains.extend(chains);
    }

    /// Asks every chain's connection for a sync now, as `Sync now` does.
    pub(crate) async fn sync_all(&self, world: &World) {
        let publisher = Publisher::new(world.js.clone());
        let wordpress = ConnectorId::parse("wordpress").unwrap();
        futures::stream::iter(&self.chains)
            .map(|chain| {
                let (publisher, wordpress) = (publisher.clone(), wordpress.clone());
                async move {
                    let event = Envelope::new(
                        chain.tenant.clone(),
                        chain.connection.clone(),
                        wordpress,
                        CorrelationId::new(),
                        SyncRequested {
                            trigger: SyncTrigger::Manual,
                            streams: None,
                            cursor: None,
                        },
                    );
                    publisher
                        .publish(&event, &event.id.to_string())
                        .await
                        .unwrap();
                }
            })
            .buffer_unordered(16)
            .collect::<()>()
            .await;
    }

    /// The last status the stream carried for `connection`.
    pub(crate) fn last_status(&self, connection: &ConnectionId) -> Option<ConnectionStatus> {
        self.with(|w| w.last.get(connection).map(|(_, status)| status.clone()))
    }

    /// Reads the watch.
    pub(crate) fn with<T>(&self, read: impl FnOnce(&Watch) -> T) -> T {
        read(&self.watch.lock().unwrap())
    }

    /// Waits until every chain has reported `synced` `times` times, or
    /// `deadline` passes; returns whether they all did.
    pub(crate) async fn wait_synced(&self, times: u32, deadline: Duration) -> bool {
        holds_within(deadline, || {
            let done = self.with(|w| w.count_synced(times)) >= self.chains.len();
            async move { done }
        })
        .await
    }

    /// Fills in what every chain ended with: completed or lost (with where
    /// it stopped), records stored against expected, retries and dead
    /// letters.
    pub(crate) async fn account(&self, world: &World, times: u32, report: &mut Report) {
        let dead_letters = dead_letters(&world.js).await;
        report.chains_started = self.chains.len();
        report.dead_letters = dead_letters.values().sum();
        report.set(
            "dead_letter_reasons",
            dead_letter_reasons(&world.js, 5).await,
        );
        let (retries, reasons) = self.with(|w| (w.retries, w.retry_reasons.clone()));
        report.retries = retries;
        report.set("retry_reasons_distinct", reasons.len());
        report.set(
            "retry_reasons",
            reasons.into_iter().take(8).collect::<Vec<_>>(),
        );
        for chain in &self.chains {
            let stored = world
                .store
                .count_records(&chain.tenant, &chain.connection, None)
                .await
                .unwrap();
            report.records_expected += chain.expected_records;
            report.records_stored += stored;
            report.duplicated_records += stored.saturating_sub(chain.expected_records);
            report.missing_records += chain.expected_records.saturating_sub(stored);
            let (synced, last) = self.with(|w| {
                (
                    w.synced(&chain.connection),
                    w.last
                        .get(&chain.connection)
                        .map(|(_, status)| status.clone()),
                )
            });
            if synced >= times {
                report.chains_completed += 1;
                continue;
            }
            let row = world
                .store
                .get_connection(&chain.tenant, &chain.connection)
                .await
                .ok()
                .flatten();
            let suffix = format!(".{}.{}", chain.tenant, chain.connection);
            report.lost.push(Lost {
                tenant: chain.tenant.to_string(),
                connection: chain.connection.to_string(),
                last_status: last.map_or_else(|| "none".to_owned(), |s| describe(&s)),
                stored_status: row.map_or_else(
                    || "no row".to_owned(),
                    |row| format!("{} ({:?})", describe(&row.status), row.last_error),
                ),
                dead_letters: dead_letters
                    .iter()
                    .filter(|(subject, _)| subject.ends_with(&suffix))
                    .map(|(subject, n)| (subject.clone(), *n))
                    .collect(),
                records: (stored, chain.expected_records),
            });
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

/// A status as a person reads it: its state and, for failures, the reason.
fn describe(status: &ConnectionStatus) -> String {
    match status {
        ConnectionStatus::Invalid { reason }
        | ConnectionStatus::Retrying { reason, .. }
        | ConnectionStatus::Failed { reason, .. }
        | ConnectionStatus::ReauthRequired { reason }
        | ConnectionStatus::Partial { reason, .. } => format!("{}: {reason}", status.state()),
        other => other.state().to_string(),
    }
}

/// Follows every status event from the watch's next sequence, starting
/// again where it stopped whenever the consumer fails (a NATS restart).
async fn follow(js: jetstream::Context, watch: Arc<Mutex<Watch>>) {
    loop {
        let start_sequence = watch.lock().unwrap().next_sequence;
        let consumer = js
            .create_consumer_on_stream(
                pull::OrderedConfig {
                    filter_subject: subject::STATUS_ALL.to_owned(),
                    deliver_policy: DeliverPolicy::ByStartSequence { start_sequence },
                    ..Default::default()
                },
                fleet_bus::STATUS_STREAM,
            )
            .await;
        if let Ok(consumer) = consumer
            && let Ok(mut messages) = consumer.messages().await
        {
            // A consumer a server restart left waiting is started again
            // when the stream has moved on without it.
            loop {
                let message =
                    match tokio::time::timeout(Duration::from_secs(2), messages.next()).await {
                        Ok(Some(Ok(message))) => message,
                        Ok(_) => break,
                        Err(_) => {
                            let next = watch.lock().unwrap().next_sequence;
                            let stream = js.get_stream(fleet_bus::STATUS_STREAM).await;
                            match stream {
                                Ok(stream) => match stream.get_info().await {
                                    Ok(info) if info.state.last_sequence >= next => break,
                                    _ => continue,
                                },
                                Err(_) => continue,
                            }
                        }
                    };
                let Ok(info) = message.info() else { continue };
                let sequence = info.stream_sequence;
                let event = Envelope::<StatusChanged>::decode(&message.payload)
                    .expect("status events decode");
                let mut watch = watch.lock().unwrap();
                if sequence < watch.next_sequence {
                    continue;
                }
                watch.next_sequence = sequence + 1;
                let status = event.data.status;
                match &status {
                    ConnectionStatus::Retrying { reason, .. } => {
                        watch.retries += 1;
                        watch.retry_reasons.insert(reason.clone());
                    }
                    s if s.state() == ConnectionState::Synced => {
                        *watch.synced.entry(event.connection.clone()).or_default() += 1;
                    }
                    _ => {}
                }
                let at = (event.occurred_at.trunc_subsecs(6), event.id);
                if watch
                    .last
                    .get(&event.connection)
                    .is_none_or(|(shown, _)| *shown < at)
                {
                    watch.last.insert(event.connection, (at, status));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The subject and reason of the first `count` dead letters.
async fn dead_letter_reasons(js: &jetstream::Context, count: u64) -> Vec<String> {
    let stream = js.get_stream(fleet_bus::DLQ_STREAM).await.unwrap();
    let state = stream.get_info().await.unwrap().state;
    let mut reasons = Vec::new();
    for sequence in state.first_sequence..=state.last_sequence.min(state.first_sequence + count) {
        let Ok(message) = stream.get_raw_message(sequence).await else {
            continue;
        };
        let body: serde_json::Value = serde_json::from_slice(&message.payload).unwrap_or_default();
        reasons.push(format!(
            "{}: {}",
            message.subject,
            body["data"]["reason"].as_str().unwrap_or("?")
        ));
    }
    reasons
}

/// Dead letters by subject.
pub(crate) async fn dead_letters(js: &jetstream::Context) -> BTreeMap<String, u64> {
    let stream = js.get_stream(fleet_bus::DLQ_STREAM).await.unwrap();
    stream
        .info_with_subjects(subject::DLQ_ALL)
        .await
        .unwrap()
        .map_ok(|(subject, count)| (subject, count as u64))
        .try_collect()
        .await
        .unwrap()
}
