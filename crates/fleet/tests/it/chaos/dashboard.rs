//! A dashboard as a browser runs one: an SSE session on `fleet bridge`
//! that applies the snapshot and every event to its view, and reconnects
//! with `Last-Event-ID` whenever the stream ends, as `EventSource` does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SubsecRound as _, Utc};
use fleet_bridge::protocol::ServerMessage;
use fleet_events::{ConnectionId, ConnectionStatus, EventId};
use serde::Serialize;
use tokio::task::JoinHandle;

/// What one dashboard shows, and how it got there.
#[derive(Debug, Default)]
pub(crate) struct View {
    pub(crate) statuses: HashMap<ConnectionId, ConnectionStatus>,
    /// The `(occurred_at, id)` of each shown status: a later event older
    /// than it was overtaken, and is not shown (docs/bridge.md).
    shown_at: HashMap<ConnectionId, (DateTime<Utc>, EventId)>,
    pub(crate) counts: Counts,
    last_event_id: Option<String>,
}

/// How a dashboard's session went.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub(crate) struct Counts {
    /// Streams opened, the first included.
    pub(crate) sessions: u64,
    pub(crate) snapshots: u64,
    pub(crate) events: u64,
    /// Times the bridge could not replay what was missed and sent a
    /// fresh snapshot instead.
    pub(crate) resyncs: u64,
    /// Attempts to reconnect that the bridge did not answer with a stream.
    pub(crate) refused: u64,
}

/// A dashboard of one tenant, following the bridge in the background.
pub(crate) struct Dashboard {
    view: Arc<Mutex<View>>,
    task: JoinHandle<()>,
}

impl Dashboard {
    /// Opens the dashboard on the bridge at `base` with `token`.
    pub(crate) fn open(base: &str, token: String) -> Self {
        let view = Arc::new(Mutex::new(View::default()));
        let task = tokio::spawn(follow(format!("{base}/events"), token, Arc::clone(&view)));
        Self { view, task }
    }

    /// Reads what the dashboard shows.
    pub(crate) fn with<T>(&self, read: impl FnOnce(&View) -> T) -> T {
        read(&self.view.lock().unwrap())
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn follow(url: String, token: String, view: Arc<Mutex<View>>) {
    let http = reqwest::Client::new();
    loop {
        let last = view.lock().unwrap().last_event_id.clone();
        let mut request = http.get(&url).bearer_auth(&token);
        if let Some(last) = last {
            request = request.header("Last-Event-ID", last);
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                view.lock().unwrap().counts.sessions += 1;
                read(response, &view).await;
            }
            _ => view.lock().unwrap().counts.refused += 1,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Applies the stream's events to the view until it ends.
async fn read(mut response: reqwest::Response, view: &Mutex<View>) {
    let mut buffer = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            apply(&block, &mut view.lock().unwrap());
        }
    }
}

fn apply(block: &str, view: &mut View) {
    let (mut id, mut data) = (None, String::new());
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("id:") {
            id = Some(value.trim().to_owned());
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push_str(value.trim_start());
        }
    }
    if data.is_empty() {
        return;
    }
    let message: ServerMessage = serde_json::from_str(&data).expect("the bridge's messages decode");
    match message {
        ServerMessage::Snapshot(snapshot) => {
            view.counts.snapshots += 1;
            view.shown_at = snapshot
                .connections
                .iter()
                .filter_map(|c| Some((c.id.clone(), (c.status_at?, c.status_event?))))
                .collect();
            view.statuses = snapshot
                .connections
                .into_iter()
                .map(|c| (c.id, c.status))
                .collect();
        }
        ServerMessage::Event { event, .. } => {
            view.counts.events += 1;
            let at = (event.occurred_at.trunc_subsecs(6), event.id);
            if view
                .shown_at
                .get(&event.connection)
                .is_none_or(|shown| *shown < at)
            {
                view.shown_at.insert(event.connection.clone(), at);
                view.statuses
                    .insert(event.connection.clone(), event.data.status.clone());
            }
        }
        ServerMessage::Resync { .. } => view.counts.resyncs += 1,
        // Health changes say nothing of a connection's status.
        ServerMessage::Health { .. } => {}
    }
    if id.is_some() {
        view.last_event_id = id;
    }
}
