//! The bounded, coalescing queue between the stream reader and one session.
//!
//! The reader pushes without waiting; the session pops. A progress event
//! (state `syncing`) replaces a progress event of the same connection that
//! is still queued, so a slow client gets the latest progress rather than
//! every step. When the queue is full and nothing coalesces, it overflows:
//! it drops what it holds, takes nothing more, and the session closes (an
//! SSE session's connection is cut at once, see [`Queue::cut_on_overflow`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::ws::Utf8Bytes;
use chrono::{DateTime, SubsecRound as _, Utc};
use fleet_events::{
    ConnectionId, ConnectionStatus, Envelope, EventId, HealthChanged, StatusChanged,
};
use tokio::sync::Notify;

use crate::connection::Peer;
use crate::protocol::{Position, ServerMessage};

/// One status event, rendered once and shared by every session it goes to.
#[derive(Debug)]
pub(crate) struct Event {
    /// Its stream sequence.
    pub(crate) seq: u64,
    /// The connection it is about.
    pub(crate) connection: ConnectionId,
    /// Whether it reports sync progress, and so may be superseded.
    pub(crate) progress: bool,
    /// Its `(occurred_at, id)`: the order in which the status writer
    /// applies events to Postgres, with the time in whole microseconds as
    /// Postgres stores it.
    pub(crate) order: (DateTime<Utc>, EventId),
    /// Its position, for SSE ids.
    pub(crate) position: Position,
    /// The `event` [`ServerMessage`] as JSON: a WebSocket text frame, or SSE data.
    pub(crate) frame: Utf8Bytes,
    /// A live-only message (a health change): not in the status stream, so
    /// it has no position of its own, is sent whatever the session's
    /// position, and moves it nowhere.
    pub(crate) live: bool,
}

impl Event {
    pub(crate) fn new(position: Position, envelope: Envelope<StatusChanged>) -> Self {
        let progress = matches!(envelope.data.status, ConnectionStatus::Syncing { .. });
        let connection = envelope.connection.clone();
        let order = (envelope.occurred_at.trunc_subsecs(6), envelope.id);
        let seq = position.seq;
        let frame = ServerMessage::Event {
            position: position.clone(),
            event: Box::new(envelope),
        }
        .to_json()
        .into();
        Self {
            seq,
            connection,
            progress,
            order,
            position,
            frame,
            live: false,
        }
    }

    /// A health change of a connection, as a live-only `health` message.
    pub(crate) fn health(envelope: Envelope<HealthChanged>) -> Self {
        let connection = envelope.connection.clone();
        let order = (envelope.occurred_at.trunc_subsecs(6), envelope.id);
        let frame = ServerMessage::Health {
            event: Box::new(envelope),
        }
        .to_json()
        .into();
        Self {
            seq: 0,
            connection,
            progress: false,
            order,
            position: Position {
                epoch: String::new(),
                seq: 0,
            },
            frame,
            live: true,
        }
    }
}

/// What [`Queue::next`] yields.
#[derive(Debug)]
pub(crate) enum Next {
    /// The next event to send.
    Event(Arc<Event>),
    /// The queue overflowed; the session must close as a slow consumer.
    Overflowed,
}

/// What [`Queue::push`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued, or merged into a queued progress event.
    Queued,
    /// This push overflowed the queue.
    Overflowed,
    /// The queue had overflowed before; the event was dropped.
    Closed,
}

#[derive(Debug)]
struct State {
    items: VecDeque<Arc<Event>>,
    overflowed: bool,
    /// Pulled when the queue overflows: ends a connection whose session
    /// may not be polled again (SSE).
    on_overflow: Option<Peer>,
}

/// A bounded single-consumer queue of events; see the module docs.
#[derive(Debug)]
pub(crate) struct Queue {
    capacity: usize,
    state: Mutex<State>,
    ready: Notify,
}

impl Queue {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            state: Mutex::new(State {
                items: VecDeque::new(),
                overflowed: false,
                on_overflow: None,
            }),
            ready: Notify::new(),
        }
    }

    /// Adds `event` without waiting.
    pub(crate) fn push(&self, event: Arc<Event>) -> Pushed {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.overflowed {
            return Pushed::Closed;
        }
        if event.progress {
            let last_of_connection = state
                .items
                .iter()
                .rposition(|queued| queued.connection == event.connection);
            if let Some(index) = last_of_connection.filter(|&i| state.items[i].progress) {
                state.items.remove(index);
            }
        }
        let mut cut = None;
        let pushed = if state.items.len() < self.capacity {
            state.items.push_back(event);
            Pushed::Queued
        } else {
            state.items.clear();
            state.overflowed = true;
            cut = state.on_overflow.take();
            Pushed::Overflowed
        };
        drop(state);
        self.ready.notify_one();
        if let Some(cut) = cut {
            cut.cut();
        }
        pushed
    }

    /// Cuts `connection` when the queue overflows (at once if it has).
    pub(crate) fn cut_on_overflow(&self, connection: Peer) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.overflowed {
            drop(state);
            connection.cut();
        } else {
            state.on_overflow = Some(connection);
        }
    }

    /// Waits for the next event, or for the overflow.
    pub(crate) async fn next(&self) -> Next {
        loop {
            {
                let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                if state.overflowed {
                    return Next::Overflowed;
                }
                if let Some(event) = state.items.pop_front() {
                    return Next::Event(event);
                }
            }
            self.ready.notified().await;
        }
    }

    /// Waits for events and takes up to `max` of them, oldest first;
    /// `None` once the queue has overflowed.
    pub(crate) async fn next_batch(&self, max: usize) -> Option<Vec<Arc<Event>>> {
        loop {
            {
                let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                if state.overflowed {
                    return None;
                }
                if !state.items.is_empty() {
                    let take = state.items.len().min(max.max(1));
                    return Some(state.items.drain(..take).collect());
                }
            }
            self.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use fleet_events::{ConnectorId, CorrelationId, TenantId};

    use super::*;

    fn event(seq: u64, connection: &str, status: ConnectionStatus) -> Arc<Event> {
        let envelope = Envelope::new(
            TenantId::parse("acme").unwrap(),
            ConnectionId::parse(connection).unwrap(),
            ConnectorId::parse("wordpress").unwrap(),
            CorrelationId::new(),
            StatusChanged { status },
        );
        let position = Position {
            epoch: "1".into(),
            seq,
        };
        Arc::new(Event::new(position, envelope))
    }

    fn syncing(seq: u64, connection: &str) -> Arc<Event> {
        let status = ConnectionStatus::Syncing {
            records: seq,
            pages: seq,
            stream: None,
        };
        event(seq, connection, status)
    }

    fn drain(queue: &Queue) -> Vec<u64> {
        let mut seqs = Vec::new();
        let mut state = queue.state.lock().unwrap();
        while let Some(event) = state.items.pop_front() {
            seqs.push(event.seq);
        }
        seqs
    }

    #[test]
    fn progress_of_one_connection_coalesces_to_the_latest() {
        let queue = Queue::new(8);
        for seq in 1..=5 {
            assert_eq!(queue.push(syncing(seq, "c-1")), Pushed::Queued);
        }

        assert_eq!(drain(&queue), [5]);
    }

    #[test]
    fn coalescing_keeps_stream_order_across_connections() {
        let queue = Queue::new(8);
        queue.push(syncing(1, "c-1"));
        queue.push(syncing(2, "c-2"));
        queue.push(syncing(3, "c-1"));

        assert_eq!(drain(&queue), [2, 3]);
    }

    #[test]
    fn progress_never_replaces_a_state_change_queued_after_it() {
        let queue = Queue::new(8);
        queue.push(syncing(1, "c-1"));
        queue.push(event(2, "c-1", ConnectionStatus::Pending));
        queue.push(syncing(3, "c-1"));

        assert_eq!(drain(&queue), [1, 2, 3]);
    }

    #[test]
    fn a_full_queue_overflows_once_and_then_drops_everything() {
        let queue = Queue::new(2);
        queue.push(event(1, "c-1", ConnectionStatus::Pending));
        queue.push(event(2, "c-2", ConnectionStatus::Pending));

        assert_eq!(
            queue.push(event(3, "c-3", ConnectionStatus::Pending)),
            Pushed::Overflowed
        );
        assert_eq!(
            queue.push(event(4, "c-3", ConnectionStatus::Pending)),
            Pushed::Closed
        );
        assert!(drain(&queue).is_empty());
    }

    #[test]
    fn progress_still_coalesces_in_a_full_queue() {
        let queue = Queue::new(2);
        queue.push(syncing(1, "c-1"));
        queue.push(syncing(2, "c-2"));

        assert_eq!(queue.push(syncing(3, "c-1")), Pushed::Queued);
        assert_eq!(drain(&queue), [2, 3]);
    }

    #[tokio::test]
    async fn a_batch_takes_what_is_queued_up_to_its_size_oldest_first() {
        let queue = Queue::new(8);
        for seq in 1..=5 {
            queue.push(event(seq, "c-1", ConnectionStatus::Pending));
        }

        let first = queue.next_batch(3).await.unwrap();
        let rest = queue.next_batch(3).await.unwrap();

        assert_eq!(first.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(rest.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5]);
        queue.push(event(6, "c-1", ConnectionStatus::Pending));
        for seq in 7..=15 {
            queue.push(event(seq, "c-1", ConnectionStatus::Pending));
        }
        assert!(
            queue.next_batch(3).await.is_none(),
            "the overflow ends the batches"
        );
    }

    #[tokio::test]
    async fn next_waits_for_a_push_and_reports_an_overflow() {
        let queue = Arc::new(Queue::new(1));
        let waiter = tokio::spawn({
            let queue = Arc::clone(&queue);
            async move { queue.next().await }
        });
        queue.push(event(7, "c-1", ConnectionStatus::Pending));

        let Next::Event(first) = waiter.await.unwrap() else {
            panic!("expected an event");
        };
        assert_eq!(first.seq, 7);
        queue.push(event(8, "c-1", ConnectionStatus::Pending));
        queue.push(event(9, "c-1", ConnectionStatus::Pending));
        assert!(matches!(queue.next().await, Next::Overflowed));
    }
}
