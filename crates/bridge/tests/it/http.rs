//! Connections that never finish a request are closed: a client trickling
//! its headers, and one that sends nothing.

use std::time::Duration;

use fleet_testkit::slow_client::{trickle_until_closed, until_closed};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::helpers::{DEADLINE, TestBridge};

/// Sockets trickling at once.
const TRICKLERS: usize = 50;

#[tokio::test]
async fn clients_trickling_their_request_headers_are_disconnected_after_the_header_timeout() {
    let bridge = TestBridge::start(|config| {
        config.header_read_timeout_seconds = 1;
        config.idle_timeout_seconds = 60;
    })
    .await;

    let started = Instant::now();
    let trickling: Vec<_> = (0..TRICKLERS)
        .map(|_| tokio::spawn(trickle_until_closed(bridge.addr, "/events", DEADLINE)))
        .collect();

    for trickler in trickling {
        let (lines, open_for) = trickler.await.unwrap();
        assert!(lines >= 5, "only {lines} header lines went out");
        assert!(open_for >= Duration::from_millis(900), "{open_for:?}");
    }
    assert!(started.elapsed() < DEADLINE);
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_idle_timeout() {
    let bridge = TestBridge::start(|config| {
        config.header_read_timeout_seconds = 60;
        config.idle_timeout_seconds = 1;
    })
    .await;
    let (mut read, _write) = TcpStream::connect(bridge.addr).await.unwrap().into_split();

    let started = Instant::now();
    until_closed(&mut read, DEADLINE).await;

    assert!(started.elapsed() >= Duration::from_millis(900));
}
