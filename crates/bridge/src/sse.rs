//! `GET /events`: the same feed as Server-Sent Events.

use std::convert::Infallible;

use axum::Extension;
use axum::extract::{Query, State as Shared};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse as _, Response};
use fleet_events::ConnectionId;
use futures::{Stream, StreamExt as _, stream};
use serde::Deserialize;
use tokio::time::{Instant, sleep_until};
use tracing::error;

use crate::State;
use crate::admission::Full;
use crate::bridge::{Item, Opening, Refusal};
use crate::connection::Peer;
use crate::protocol::Position;
use crate::queue::Next;
use crate::ws::TOKEN_EXPIRED_REASON;

/// The `Retry-After` of a 429, in seconds: sessions end at any moment, so
/// this is only a pause before trying again.
const RETRY_AFTER_SECONDS: &str = "10";

/// The query of `GET /events`.
#[derive(Debug, Deserialize)]
pub(crate) struct Params {
    /// Comma-separated connection ids to narrow to.
    connections: Option<String>,
}

/// Authenticates with `Authorization: Bearer`, resumes after
/// `Last-Event-ID` when given, and streams `snapshot`, `status` and
/// `resync` events whose data is the WebSocket message of the same type,
/// until the token expires.
///
/// A client that reads too slowly is dropped when its queue overflows: the
/// connection is cut even though hyper, waiting for the socket to drain,
/// would not poll the stream again (see [`crate::connection`]).
///
/// # Errors
///
/// 401 for a missing or refused token, 400 for malformed parameters, 429
/// when the client address or the token holds its most sessions, 503 when
/// the session cannot be opened.
pub(crate) async fn events(
    Shared(state): Shared<State>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, Response> {
    let peer = peer.map(|Extension(peer)| peer);
    let address = state
        .admit_address(peer.as_ref(), &headers)
        .map_err(too_many)?;
    let token = bearer(&headers).ok_or_else(|| {
        let reason = "send the tenant token as `Authorization: Bearer <token>`";
        refuse(StatusCode::UNAUTHORIZED, reason)
    })?;
    let bad_request = |reason| refuse(StatusCode::BAD_REQUEST, reason);
    let requested = params
        .connections
        .as_deref()
        .map(connections)
        .transpose()
        .map_err(bad_request)?;
    let since = last_event_id(&headers).map_err(bad_request)?;
    let grant = state
        .authorize(token, requested)
        .map_err(|refusal| match refusal {
            Refusal::Token(reason) => refuse(StatusCode::UNAUTHORIZED, reason),
            Refusal::Full(full) => too_many(full),
        })?;
    let opening = state.open(grant.scope, since).await.map_err(|e| {
        error!(error.message = %e, error.cause_chain = ?e, "Could not open a bridge session.");
        let reason = "the bridge could not start the session; reconnect";
        refuse(StatusCode::SERVICE_UNAVAILABLE, reason)
    })?;
    if let Some(peer) = peer {
        opening.subscription.queue.cut_on_overflow(peer);
    }
    let keep_alive = KeepAlive::new().interval(state.config().ping_interval());
    let permits = [address, grant.permit];
    let feed = until_expiry(feed(opening), grant.expires)
        .take_until(state.stop().clone().cancelled_owned())
        .map(move |event| {
            // The session holds its places for as long as it streams.
            let _held = &permits;
            Ok(event)
        });
    Ok(Sse::new(feed).keep_alive(keep_alive))
}

fn refuse(status: StatusCode, reason: impl Into<String>) -> Response {
    (status, reason.into()).into_response()
}

fn too_many(full: Full) -> Response {
    let headers = [(header::RETRY_AFTER, RETRY_AFTER_SECONDS)];
    (StatusCode::TOO_MANY_REQUESTS, headers, full.reason()).into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::trim)
}

/// The ids of `?connections=`, or why they are malformed.
fn connections(list: &str) -> Result<Vec<ConnectionId>, String> {
    list.split(',')
        .map(|id| ConnectionId::parse(id.trim()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("`connections`: {e}"))
}

/// The position of `Last-Event-ID`, or why it is malformed.
fn last_event_id(headers: &HeaderMap) -> Result<Option<Position>, String> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|value| value.parse().ok())
        .map(Some)
        .ok_or_else(|| "Last-Event-ID must be a position, <epoch>:<seq>".to_owned())
}

/// `feed` until `expires`, then a comment saying why the stream ends.
fn until_expiry(
    feed: impl Stream<Item = SseEvent> + Send,
    expires: Instant,
) -> impl Stream<Item = SseEvent> + Send {
    let state = (Box::pin(feed), Box::pin(sleep_until(expires)), false);
    stream::unfold(state, |(mut feed, mut expiry, expired)| async move {
        if expired {
            return None;
        }
        tokio::select! {
            biased;
            () = &mut expiry => {
                let notice = SseEvent::default().comment(TOKEN_EXPIRED_REASON);
                Some((notice, (feed, expiry, true)))
            }
            event = feed.next() => event.map(|event| (event, (feed, expiry, false))),
        }
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
                Next::Event(event) if event.live => {
                    return Some((Item::Event(event), (subscription, last)));
                }
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
