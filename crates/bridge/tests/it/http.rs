//! Connections that never finish a request are closed: a client trickling
//! its headers, and one that sends nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
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
        .map(|_| tokio::spawn(trickle_until_closed(bridge.addr)))
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
    until_closed(&mut read).await;

    assert!(started.elapsed() >= Duration::from_millis(900));
}

/// Opens a connection, sends a request line, then one header line every
/// 100 ms and never the blank line that ends them. Returns how many
/// header lines went out and how long the connection stayed open.
async fn trickle_until_closed(addr: SocketAddr) -> (usize, Duration) {
    let (mut read, write) = TcpStream::connect(addr).await.unwrap().into_split();
    let opened = Instant::now();
    let lines = Arc::new(AtomicUsize::new(0));
    let writer = tokio::spawn(trickle(write, Arc::clone(&lines)));
    until_closed(&mut read).await;
    let open_for = opened.elapsed();
    writer.abort();
    (lines.load(Ordering::Relaxed), open_for)
}

/// Sends a request line, then a header line every 100 ms, counting them
/// in `sent`, until a write fails.
async fn trickle(mut write: OwnedWriteHalf, sent: Arc<AtomicUsize>) -> std::io::Result<()> {
    write.write_all(b"GET /events HTTP/1.1\r\n").await?;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        write.write_all(b"X-Trickle: 1\r\n").await?;
        sent.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reads (and drops) whatever comes until the peer closes the connection,
/// within the deadline.
pub(crate) async fn until_closed(read: &mut OwnedReadHalf) {
    let mut buffer = [0; 1024];
    let closed = async {
        loop {
            match read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(DEADLINE, closed)
        .await
        .expect("the bridge closes the connection within the deadline");
}
