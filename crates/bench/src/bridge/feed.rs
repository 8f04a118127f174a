//! The scenario's tenants and connections in Postgres, and the status
//! events published about them.

use std::ops::Range;
use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_bus::{Published, Publisher};
use fleet_events::{
    ConnectionId, ConnectionStatus, ConnectorId, CorrelationId, Envelope, StatusChanged, TenantId,
};
use fleet_store::{NewConnection, Store};
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{StreamExt as _, TryStreamExt as _};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::{Shape, Window};
use crate::{BridgeServices, Error};

/// Rows written to Postgres at once while seeding.
const SEED_CONCURRENCY: usize = 16;

/// The tenants of one run and their connections, recorded in Postgres so
/// that each client's snapshot has rows to read.
#[derive(Debug)]
pub(crate) struct Feed {
    pub(crate) tenants: Vec<TenantId>,
    connections: Vec<ConnectionId>,
    connector: ConnectorId,
}

/// What the publisher sent.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    /// Events per tenant, by tenant index.
    per_tenant: Vec<u64>,
    /// Events whose `occurred_at` falls in the window.
    in_window: u64,
}

impl Sent {
    /// Events published for tenant `index`: numbered 1 to this.
    pub(crate) fn count(&self, tenant: usize) -> u64 {
        self.per_tenant.get(tenant).copied().unwrap_or(0)
    }

    /// Every event published.
    pub(crate) fn total(&self) -> u64 {
        self.per_tenant.iter().sum()
    }

    /// Events published inside the measurement window.
    pub(crate) fn in_window(&self) -> u64 {
        self.in_window
    }
}

impl Feed {
    /// Records `shape.connections_per_tenant` connections for each of
    /// `shape.tenants` tenants named after `run`.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when Postgres cannot be reached or a row cannot
    /// be written.
    pub(crate) async fn seed(
        services: &BridgeServices,
        run: &str,
        shape: Shape,
    ) -> Result<Self, Error> {
        let store = Store::connect(&services.database)
            .await
            .map_err(Error::Database)?;
        let tenants: Vec<TenantId> = (0..shape.tenants)
            .map(|t| TenantId::parse(&format!("bridge-{run}-{t:04}")).expect("a valid tenant id"))
            .collect();
        let connections: Vec<ConnectionId> = (0..shape.connections_per_tenant)
            .map(|c| ConnectionId::parse(&format!("c-{c}")).expect("a valid connection id"))
            .collect();
        let feed = Self {
            tenants,
            connections,
            connector: ConnectorId::parse("wordpress").expect("a valid connector id"),
        };
        let started = Instant::now();
        let rows = feed.tenants.iter().flat_map(|tenant| {
            feed.connections
                .iter()
                .map(move |connection| (tenant, connection))
        });
        futures::stream::iter(rows)
            .map(|(tenant, connection)| {
                store.create_connection(NewConnection {
                    tenant,
                    id: connection,
                    connector: &feed.connector,
                    display_name: "Bench site",
                    sync_interval: None,
                })
            })
            .buffer_unordered(SEED_CONCURRENCY)
            .try_for_each(|_| async { Ok(()) })
            .await
            .map_err(Error::Database)?;
        info!(
            rows = feed.tenants.len() * feed.connections.len(),
            seconds = started.elapsed().as_secs_f64(),
            "Connections seeded."
        );
        Ok(feed)
    }

    /// Publishes `shape.events_per_s` events per second, the tenants in
    /// turn, until the window ends; returns once every publish is
    /// acknowledged.
    ///
    /// # Errors
    ///
    /// [`Error::Publish`], or [`Error::Interrupted`] when `stop` is
    /// cancelled.
    pub(crate) async fn publish(
        &self,
        publisher: Publisher,
        shape: Shape,
        window: &Window,
        stop: &CancellationToken,
    ) -> Result<Sent, Error> {
        let mut sent = Sent {
            per_tenant: vec![0; self.tenants.len()],
            in_window: 0,
        };
        let mut ticks = tokio::time::interval(Duration::from_secs(1) / shape.events_per_s.max(1));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut acks: FuturesUnordered<BoxFuture<'static, Result<Published, fleet_bus::Error>>> =
            FuturesUnordered::new();
        for k in 0_usize.. {
            tokio::select! {
                biased;
                () = stop.cancelled() => return Err(Error::Interrupted),
                Some(ack) = acks.next() => {
                    ack.map_err(Error::Publish)?;
                    continue;
                }
                _ = ticks.tick() => {}
            }
            if Instant::now() >= window.end {
                break;
            }
            let event = self.event(k, &mut sent, &window.wall);
            let pending = publisher
                .send(&event, &event.id.to_string())
                .await
                .map_err(Error::Publish)?;
            acks.push(pending.into_future());
        }
        while let Some(ack) = acks.next().await {
            ack.map_err(Error::Publish)?;
        }
        Ok(sent)
    }

    /// Event `k`: the next of its tenant's, numbered by its record count,
    /// occurred now.
    fn event(
        &self,
        k: usize,
        sent: &mut Sent,
        window: &Range<DateTime<Utc>>,
    ) -> Envelope<StatusChanged> {
        let tenant = k % self.tenants.len();
        let connection = &self.connections[(k / self.tenants.len()) % self.connections.len()];
        sent.per_tenant[tenant] += 1;
        let status = ConnectionStatus::Synced {
            records: sent.per_tenant[tenant],
            counts: fleet_events::SyncCounts::default(),
            duration_ms: 0,
            last_sync_at: Utc::now(),
            run_id: None,
        };
        let event = Envelope::new(
            self.tenants[tenant].clone(),
            connection.clone(),
            self.connector.clone(),
            CorrelationId::new(),
            StatusChanged { status },
        );
        if window.contains(&event.occurred_at) {
            sent.in_window += 1;
        }
        event
    }
}
