//! A bridge on real servers, status events to publish, and WebSocket and
//! SSE clients that wait on messages with deadlines.

use std::time::Duration;

use async_nats::jetstream;
use fleet_auth::{Claims, Verifier};
use fleet_bridge::protocol::{Position, ServerMessage};
use fleet_bridge::{Bridge, Handle};
use fleet_bus::{Definitions, Publisher};
use fleet_events::{
    ConnectionId, ConnectionStatus, ConnectorId, CorrelationId, Envelope, StatusChanged, TenantId,
};
use fleet_harness::Servers;
use fleet_store::{NewConnection, StatusUpdate, Store};
use futures::{SinkExt as _, StreamExt as _};
use serde_json::json;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// Wait limit for anything the tests expect to happen.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

const KEY: &str = "test key of at least thirty-two bytes";

/// A bridge over its own nats-server (streams provisioned) and database.
pub(crate) struct TestBridge {
    _servers: Servers,
    pub(crate) js: jetstream::Context,
    pub(crate) store: Store,
    pub(crate) config: fleet_bridge::Config,
    auth: fleet_auth::Config,
    pub(crate) handle: Handle,
    pub(crate) addr: std::net::SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), fleet_bridge::Error>>,
}

impl TestBridge {
    /// Starts the servers and a bridge with short timeouts, changed by `customise`.
    pub(crate) async fn start(customise: impl FnOnce(&mut fleet_bridge::Config)) -> Self {
        Self::start_with_auth(customise, auth_config()).await
    }

    /// As [`start`](Self::start), checking tokens with `auth`.
    pub(crate) async fn start_with_auth(
        customise: impl FnOnce(&mut fleet_bridge::Config),
        auth: fleet_auth::Config,
    ) -> Self {
        let servers = Servers::builder()
            .provision(Definitions::builtin())
            .start()
            .await;
        let (js, store) = (servers.js.clone(), servers.store.clone());
        let mut config = fleet_bridge::Config {
            auth_timeout_seconds: 1,
            ..fleet_bridge::Config::default()
        };
        customise(&mut config);
        let (addr, handle, shutdown, task) = launch(&config, &auth, &js, &store).await;
        Self {
            _servers: servers,
            js,
            store,
            config,
            auth,
            handle,
            addr,
            shutdown,
            task,
        }
    }

    /// Stops the bridge (as on SIGTERM) and starts a new one on another port.
    pub(crate) async fn restart(&mut self) {
        self.shutdown.cancel();
        (&mut self.task).await.unwrap().unwrap();
        (self.addr, self.handle, self.shutdown, self.task) =
            launch(&self.config, &self.auth, &self.js, &self.store).await;
    }

    /// A token for all of `tenant`'s connections.
    pub(crate) fn token(&self, tenant: &str) -> String {
        verifier().issue(&claims(tenant))
    }

    /// Opens a WebSocket without authenticating.
    pub(crate) async fn socket(&self) -> WsClient {
        let url = format!("ws://{}/ws", self.addr);
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        WsClient { ws }
    }

    /// Opens a WebSocket and authenticates as `tenant`, from `since` if given.
    pub(crate) async fn connect(&self, tenant: &str, since: Option<&Position>) -> WsClient {
        let mut client = self.socket().await;
        client
            .send(json!({"type": "auth", "token": self.token(tenant), "since": since}))
            .await;
        client
    }

    /// Opens a WebSocket and authenticates with `token`.
    pub(crate) async fn connect_with(&self, token: &str) -> WsClient {
        let mut client = self.socket().await;
        client.send(json!({"type": "auth", "token": token})).await;
        client
    }

    /// Opens a WebSocket and gives back its TCP stream, to write frames
    /// by hand.
    pub(crate) async fn raw_socket(&self) -> TcpStream {
        let client = self.socket().await;
        match client.ws.into_inner() {
            MaybeTlsStream::Plain(stream) => stream,
            _ => unreachable!("the test bridge serves plain TCP"),
        }
    }

    /// `GET /events` as `tenant`, with `Last-Event-ID: since` if given.
    pub(crate) async fn sse(&self, tenant: &str, since: Option<&Position>) -> SseClient {
        let mut request = reqwest::Client::new()
            .get(format!("http://{}/events", self.addr))
            .bearer_auth(self.token(tenant));
        if let Some(since) = since {
            request = request.header("Last-Event-ID", since.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        SseClient::new(response)
    }

    /// `GET /events` with `token` and the extra `headers`, answered or not.
    pub(crate) async fn sse_request(
        &self,
        token: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .get(format!("http://{}/events", self.addr))
            .bearer_auth(token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    /// Records a connection of `tenant` in Postgres.
    pub(crate) async fn create_connection(&self, tenant: &str, connection: &str) {
        self.store
            .create_connection(NewConnection {
                tenant: &TenantId::parse(tenant).unwrap(),
                id: &ConnectionId::parse(connection).unwrap(),
                connector: &ConnectorId::parse("wordpress").unwrap(),
                display_name: "Blog",
                sync_interval: None,
            })
            .await
            .unwrap();
    }

    /// Publishes a status event and returns its stream sequence.
    pub(crate) async fn publish(
        &self,
        tenant: &str,
        connection: &str,
        status: ConnectionStatus,
    ) -> u64 {
        publish(&self.js, tenant, connection, status).await
    }

    /// Publishes a status event and stores it in Postgres, as the status
    /// writer does a moment later; returns its stream sequence.
    pub(crate) async fn publish_stored(
        &self,
        tenant: &str,
        connection: &str,
        status: ConnectionStatus,
    ) -> u64 {
        self.publish_stored_event(&event(tenant, connection, status))
            .await
    }

    /// Publishes `event` and stores it in Postgres; returns its stream
    /// sequence.
    pub(crate) async fn publish_stored_event(&self, event: &Envelope<StatusChanged>) -> u64 {
        let seq = publish_event(&self.js, event).await;
        let applied = self.store.apply_status(StatusUpdate::from(event)).await;
        assert_eq!(
            applied.unwrap(),
            fleet_store::Applied::Applied,
            "the status is newer than the stored one"
        );
        seq
    }

    /// Waits until the bridge has `count` sessions.
    pub(crate) async fn await_sessions(&self, count: usize) {
        let reached = fleet_testkit::within(DEADLINE, || async {
            (self.handle.stats().sessions == count).then_some(())
        })
        .await;
        assert!(
            reached.is_some(),
            "the bridge still has {:?}, expected {count} sessions",
            self.handle.stats()
        );
    }
}

async fn launch(
    config: &fleet_bridge::Config,
    auth: &fleet_auth::Config,
    js: &jetstream::Context,
    store: &Store,
) -> (
    std::net::SocketAddr,
    Handle,
    CancellationToken,
    JoinHandle<Result<(), fleet_bridge::Error>>,
) {
    let (bridge, handle) = Bridge::build(config.clone(), auth, js, store.clone())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(bridge.run(listener, shutdown.clone()));
    (addr, handle, shutdown, task)
}

/// The test bridge's token settings: HS256 with the test key.
pub(crate) fn auth_config() -> fleet_auth::Config {
    fleet_auth::Config::new(KEY.into())
}

pub(crate) fn verifier() -> Verifier {
    Verifier::new(&auth_config()).unwrap()
}

pub(crate) fn claims(tenant: &str) -> Claims {
    Claims::for_tenant(TenantId::parse(tenant).unwrap(), Duration::from_secs(600))
}

/// Publishes a status event and returns its stream sequence.
pub(crate) async fn publish(
    js: &jetstream::Context,
    tenant: &str,
    connection: &str,
    status: ConnectionStatus,
) -> u64 {
    publish_event(js, &event(tenant, connection, status)).await
}

/// A status event of a `wordpress` connection, occurred now.
pub(crate) fn event(
    tenant: &str,
    connection: &str,
    status: ConnectionStatus,
) -> Envelope<StatusChanged> {
    Envelope::new(
        TenantId::parse(tenant).unwrap(),
        ConnectionId::parse(connection).unwrap(),
        ConnectorId::parse("wordpress").unwrap(),
        CorrelationId::new(),
        StatusChanged { status },
    )
}

pub(crate) async fn publish_event(js: &jetstream::Context, event: &Envelope<StatusChanged>) -> u64 {
    Publisher::new(js.clone())
        .publish(event, &event.id.to_string())
        .await
        .unwrap()
        .sequence
}

/// A status of about `kib` KiB, so that socket buffers fill quickly.
pub(crate) fn bulky(kib: usize) -> ConnectionStatus {
    ConnectionStatus::Failed {
        reason: "x".repeat(kib * 1024),
        retryable: true,
    }
}

/// A progress status whose record count tells events apart.
pub(crate) fn syncing(records: u64) -> ConnectionStatus {
    ConnectionStatus::Syncing {
        records,
        pages: 1,
        stream: None,
    }
}

/// A terminal status whose record count tells events apart.
pub(crate) fn synced(records: u64) -> ConnectionStatus {
    ConnectionStatus::Synced {
        records,
        counts: fleet_events::SyncCounts::default(),
        duration_ms: 1,
        last_sync_at: chrono::Utc::now(),
        run_id: None,
    }
}

/// The stream sequence of an `event` message.
pub(crate) fn seq_of(message: &ServerMessage) -> u64 {
    match message {
        ServerMessage::Event { position, .. } => position.seq,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// A WebSocket client of the bridge.
pub(crate) struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    pub(crate) async fn send(&mut self, message: serde_json::Value) {
        self.ws
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }

    /// The next protocol message, within the deadline.
    pub(crate) async fn next(&mut self) -> ServerMessage {
        loop {
            let frame = tokio::time::timeout(DEADLINE, self.ws.next())
                .await
                .expect("a message within the deadline")
                .expect("the socket is open")
                .unwrap();
            match frame {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next `event`, within the deadline.
    pub(crate) async fn next_event(&mut self) -> (Position, Envelope<StatusChanged>) {
        match self.next().await {
            ServerMessage::Event { position, event } => (position, *event),
            other => panic!("expected an event, got {other:?}"),
        }
    }

    /// Reads until the bridge closes the socket and returns the close code
    /// and reason, skipping any messages before it.
    pub(crate) async fn closed(&mut self) -> (u16, String) {
        loop {
            let frame = tokio::time::timeout(DEADLINE, self.ws.next())
                .await
                .expect("a close within the deadline")
                .expect("a close frame before the end of the stream")
                .unwrap();
            if let Message::Close(frame) = frame {
                let frame = frame.expect("a close code");
                return (frame.code.into(), frame.reason.to_string());
            }
        }
    }
}

/// A Server-Sent Events client of the bridge.
pub(crate) struct SseClient {
    response: reqwest::Response,
    buffer: String,
}

/// One SSE event: its type, id and data.
#[derive(Debug)]
pub(crate) struct SseEvent {
    pub(crate) kind: String,
    pub(crate) id: Option<String>,
    pub(crate) message: ServerMessage,
}

impl SseClient {
    /// The stream of an answered `GET /events`.
    pub(crate) fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), 200);
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// Reads to the end of the stream, within the deadline, and returns the
    /// complete events it still held.
    pub(crate) async fn rest(mut self) -> Vec<SseEvent> {
        loop {
            let chunk = tokio::time::timeout(DEADLINE, self.response.chunk())
                .await
                .expect("the end of the stream within the deadline");
            match chunk {
                Ok(Some(chunk)) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(None) | Err(_) => break,
            }
        }
        let complete = self.buffer.rfind("\n\n").map_or(0, |end| end + 2);
        self.buffer[..complete]
            .split("\n\n")
            .filter_map(parse_block)
            .collect()
    }

    /// The next event (keep-alive comments skipped), within the deadline.
    pub(crate) async fn next(&mut self) -> SseEvent {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse_block(&block) {
                    return event;
                }
                continue;
            }
            let chunk = tokio::time::timeout(DEADLINE, self.response.chunk())
                .await
                .expect("an SSE event within the deadline")
                .unwrap()
                .expect("the stream is open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

fn parse_block(block: &str) -> Option<SseEvent> {
    let (mut kind, mut id, mut data) = (None, None, String::new());
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            kind = Some(value.trim().to_owned());
        } else if let Some(value) = line.strip_prefix("id:") {
            id = Some(value.trim().to_owned());
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push_str(value.trim_start());
        }
    }
    Some(SseEvent {
        kind: kind?,
        id,
        message: serde_json::from_str(&data).unwrap(),
    })
}
