//! The gateway served over HTTP closes the connections of clients that
//! never finish a request: trickling headers, sending nothing, or keeping
//! an idle keep-alive connection.

use std::time::Duration;

use fleet_testkit::slow_client::{trickle_until_closed, until_closed};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::helpers::{DEADLINE, TestGateway, gateway_config};

/// Sockets trickling at once.
const TRICKLERS: usize = 50;

async fn gateway(header_read_timeout_secs: u64, idle_timeout_secs: u64) -> TestGateway {
    TestGateway::start_with(fleet_gateway::Config {
        header_read_timeout_secs,
        idle_timeout_secs,
        ..gateway_config()
    })
    .await
}

#[tokio::test]
async fn clients_trickling_their_request_headers_are_disconnected_after_the_header_timeout() {
    let gateway = gateway(1, 60).await;
    let served = gateway.serve().await;

    let trickling: Vec<_> = (0..TRICKLERS)
        .map(|_| {
            tokio::spawn(trickle_until_closed(
                served.addr,
                "/api/connectors",
                DEADLINE,
            ))
        })
        .collect();

    for trickler in trickling {
        let (lines, open_for) = trickler.await.unwrap();
        assert!(lines >= 5, "only {lines} header lines went out");
        assert!(open_for >= Duration::from_millis(900), "{open_for:?}");
    }
    gateway.stop().await;
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_idle_timeout() {
    let gateway = gateway(60, 1).await;
    let served = gateway.serve().await;
    let (mut read, _write) = TcpStream::connect(served.addr).await.unwrap().into_split();

    let started = Instant::now();
    until_closed(&mut read, DEADLINE).await;

    assert!(started.elapsed() >= Duration::from_millis(900));
    gateway.stop().await;
}

#[tokio::test]
async fn a_keep_alive_connection_waiting_for_its_next_request_is_closed_after_the_header_timeout() {
    let gateway = gateway(1, 60).await;
    let served = gateway.serve().await;
    let (mut read, mut write) = TcpStream::connect(served.addr).await.unwrap().into_split();

    write
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0; 12];
    read.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    let answered = Instant::now();
    until_closed(&mut read, DEADLINE).await;

    assert!(answered.elapsed() >= Duration::from_millis(900));
    gateway.stop().await;
}

/// On shutdown idle and silent connections close at once: the server stops
/// long before either would time out by itself.
#[tokio::test]
async fn shutdown_stops_the_server_while_clients_hold_connections_open() {
    let gateway = gateway(30, 60).await;
    let served = gateway.serve().await;
    let _silent = TcpStream::connect(served.addr).await.unwrap();
    // reqwest keeps this connection open in its pool, idle.
    let client = reqwest::Client::new();
    let ok = client
        .get(format!("http://{}/healthz", served.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    served.shutdown.cancel();

    tokio::time::timeout(Duration::from_secs(3), served.task)
        .await
        .expect("the server stops at once, not after a connection's timeout")
        .unwrap()
        .unwrap();
    drop(client);
    gateway.stop().await;
}
