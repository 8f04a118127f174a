//! In-memory fan-out of the stream reader's events to sessions, by tenant.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use fleet_events::{ConnectionId, TenantId};

use crate::queue::{Event, Pushed, Queue};

/// Which events a session gets.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    /// Its tenant.
    pub(crate) tenant: TenantId,
    /// Only these connections; `None` for all of the tenant's.
    pub(crate) connections: Option<HashSet<ConnectionId>>,
}

impl Scope {
    pub(crate) fn allows(&self, connection: &ConnectionId) -> bool {
        self.connections
            .as_ref()
            .is_none_or(|allowed| allowed.contains(connection))
    }
}

/// Counters shared with [`Handle`](crate::Handle).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) sessions: AtomicUsize,
    pub(crate) closed_slow: AtomicU64,
}

#[derive(Debug)]
struct Subscriber {
    id: u64,
    scope: Scope,
    queue: Arc<Queue>,
}

#[derive(Debug, Default)]
struct State {
    /// Sequence of the last message the reader handed over.
    position: u64,
    next_id: u64,
    tenants: HashMap<TenantId, Vec<Subscriber>>,
}

/// The sessions of one bridge process, by tenant, and the reader's position.
#[derive(Debug)]
pub(crate) struct Hub {
    state: Mutex<State>,
    queue_size: usize,
    pub(crate) counters: Arc<Counters>,
}

impl Hub {
    pub(crate) fn new(position: u64, queue_size: usize) -> Self {
        Self {
            state: Mutex::new(State {
                position,
                ..State::default()
            }),
            queue_size,
            counters: Arc::default(),
        }
    }

    /// Registers a session: every event after the returned
    /// [`Subscription::start`] goes to its queue.
    pub(crate) fn subscribe(self: &Arc<Self>, scope: Scope) -> Subscription {
        let queue = Arc::new(Queue::new(self.queue_size));
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        let start = state.position;
        state
            .tenants
            .entry(scope.tenant.clone())
            .or_default()
            .push(Subscriber {
                id,
                scope: scope.clone(),
                queue: Arc::clone(&queue),
            });
        drop(state);
        self.counters.sessions.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("fleet_bridge_sessions").increment(1.0);
        Subscription {
            hub: Arc::clone(self),
            id,
            scope,
            start,
            queue,
        }
    }

    /// The sequence of the last message read.
    pub(crate) fn position(&self) -> u64 {
        self.lock().position
    }

    /// Moves the position to `seq`, a message that goes to no session.
    pub(crate) fn skip(&self, seq: u64) {
        self.lock().position = seq;
    }

    /// Moves the position to the event's and queues it for the sessions of
    /// `tenant` that may see it. Never waits on a session.
    pub(crate) fn publish(&self, tenant: &TenantId, event: &Arc<Event>) {
        let mut state = self.lock();
        state.position = event.seq;
        let Some(subscribers) = state.tenants.get(tenant) else {
            return;
        };
        let (mut queued, mut overflowed) = (0_u64, 0_u64);
        for subscriber in subscribers {
            if !subscriber.scope.allows(&event.connection) {
                continue;
            }
            match subscriber.queue.push(Arc::clone(event)) {
                Pushed::Queued => queued += 1,
                Pushed::Overflowed => overflowed += 1,
                Pushed::Closed => {}
            }
        }
        drop(state);
        self.counters
            .closed_slow
            .fetch_add(overflowed, Ordering::Relaxed);
        metrics::counter!("fleet_bridge_slow_closes_total").increment(overflowed);
        metrics::counter!("fleet_bridge_events_queued_total").increment(queued);
    }

    /// Queues a live-only event for the sessions of `tenant` that may see
    /// its connection, leaving the position as it is. Never waits on a
    /// session.
    pub(crate) fn notify(&self, tenant: &TenantId, event: &Arc<Event>) {
        let state = self.lock();
        let Some(subscribers) = state.tenants.get(tenant) else {
            return;
        };
        let mut overflowed = 0_u64;
        for subscriber in subscribers {
            if subscriber.scope.allows(&event.connection)
                && subscriber.queue.push(Arc::clone(event)) == Pushed::Overflowed
            {
                overflowed += 1;
            }
        }
        drop(state);
        self.counters
            .closed_slow
            .fetch_add(overflowed, Ordering::Relaxed);
        metrics::counter!("fleet_bridge_slow_closes_total").increment(overflowed);
    }

    fn unsubscribe(&self, tenant: &TenantId, id: u64) {
        let mut state = self.lock();
        if let Some(subscribers) = state.tenants.get_mut(tenant) {
            subscribers.retain(|s| s.id != id);
            if subscribers.is_empty() {
                state.tenants.remove(tenant);
            }
        }
        drop(state);
        self.counters.sessions.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("fleet_bridge_sessions").decrement(1.0);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A session's registration with the [`Hub`]; dropping it unregisters.
#[derive(Debug)]
pub(crate) struct Subscription {
    hub: Arc<Hub>,
    id: u64,
    /// What the session sees.
    pub(crate) scope: Scope,
    /// The reader's position when the session registered: its queue gets
    /// every event after it.
    pub(crate) start: u64,
    /// The session's queue.
    pub(crate) queue: Arc<Queue>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(&self.scope.tenant, self.id);
    }
}
