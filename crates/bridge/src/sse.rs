//! `GET /events`: the same feed as Server-Sent Events.

use std::convert::Infallible;

use axum::Extension;
use axum::extract::{ConnectInfo, Query, State as Shared};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use fleet_events::ConnectionId;
use futures::{Stream, StreamExt as _, stream};
use serde::Deserialize;
use tracing::error;

use crate::State;
use crate::bridge::{Item, Opening};
use crate::listener::Cut;
use crate::protocol::Position;
use crate::queue::Next;

/// The query of `GET /events`.
#[derive(Debug, Deserialize)]
pub(crate) struct Params {
    /// Comma-separated connection ids to narrow to.
    connections: Option<String>,
}

type Refusal = (StatusCode, String);

/// Authenticates with `Authorization: Bearer`, resumes after
/// `Last-Event-ID` when given, and streams `snapshot`, `status` and
/// `resync` events whose data is the WebSocket message of the same type.
///
/// A client that reads too slowly is dropped when its queue overflows: the
/// connection is cut even though hyper, waiting for the socket to drain,
/// would not poll the stream again (see [`crate::listener`]).
pub(crate) async fn events(
    Shared(state): Shared<State>,
    connection: Option<Extension<ConnectInfo<Cut>>>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, Refusal> {
    let token = bearer(&headers).ok_or_else(|| {
        let reason = "send the tenant token as `Authorization: Bearer <token>`";
        (StatusCode::UNAUTHORIZED, reason.to_owned())
    })?;
    let requested = params.connections.as_deref().map(connections).transpose()?;
    let since = last_event_id(&headers)?;
    let scope = state
        .authorize(token, requested)
        .map_err(|reason| (StatusCode::UNAUTHORIZED, reason))?;
    let opening = state.open(scope, since).await.map_err(|e| {
        error!(error.message = %e, error.cause_chain = ?e, "Could not open a bridge session.");
        let reason = "the bridge could not start the session; reconnect";
        (StatusCode::SERVICE_UNAVAILABLE, reason.to_owned())
    })?;
    if let Some(Extension(ConnectInfo(cut))) = connection {
        opening.subscription.queue.cut_on_overflow(cut);
    }
    let keep_alive = KeepAlive::new().interval(state.config().ping_interval());
    let feed = feed(opening).take_until(state.stop().clone().cancelled_owned());
    Ok(Sse::new(feed.map(Ok)).keep_alive(keep_alive))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::trim)
}

fn connections(list: &str) -> Result<Vec<ConnectionId>, Refusal> {
    list.split(',')
        .map(|id| ConnectionId::parse(id.trim()))
        .collect::<Result<_, _>>()
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("`connections`: {e}")))
}

fn last_event_id(headers: &HeaderMap) -> Result<Option<Position>, Refusal> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|value| value.parse().ok())
        .map(Some)
        .ok_or_else(|| {
            let reason = "Last-Event-ID must be a position, <epoch>:<seq>";
            (StatusCode::BAD_REQUEST, reason.to_owned())
        })
}

/// The opening messages, then live events until the queue overflows.
fn feed(opening: Opening) -> impl Stream<Item = SseEvent> {
    let Opening {
        items,
        subscription,
        last,
    } = opening;
    let live = stream::unfold((subscription, last), |(subscription, last)| async move {
        loop {
            match subscription.queue.next().await {
                Next::Overflowed => return None,
                Next::Event(event) if event.seq <= last => {}
                Next::Event(event) => {
                    let seq = event.seq;
                    return Some((Item::Event(event), (subscription, seq)));
                }
            }
        }
    });
    stream::iter(items).chain(live).map(|item| render(&item))
}

fn render(item: &Item) -> SseEvent {
    let event = SseEvent::default()
        .event(item.sse_type())
        .data(item.frame().as_str());
    match item.position() {
        Some(position) => event.id(position.to_string()),
        None => event,
    }
}
