//! Clients that never finish a request, for the tests of a server's
//! header and idle timeouts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Opens a connection to `addr`, sends the request line `GET path
/// HTTP/1.1`, then one header line every 100 ms and never the blank line
/// that ends them, until the server closes the connection (within
/// `deadline`). Returns how many header lines went out and how long the
/// connection stayed open.
///
/// # Panics
///
/// When the connection cannot be opened or stays open past `deadline`.
pub async fn trickle_until_closed(
    addr: SocketAddr,
    path: &str,
    deadline: Duration,
) -> (usize, Duration) {
    let (mut read, write) = TcpStream::connect(addr)
        .await
        .expect("the server accepts the connection")
        .into_split();
    let opened = Instant::now();
    let lines = Arc::new(AtomicUsize::new(0));
    let writer = tokio::spawn(trickle(
        write,
        format!("GET {path} HTTP/1.1\r\n"),
        Arc::clone(&lines),
    ));
    until_closed(&mut read, deadline).await;
    let open_for = opened.elapsed();
    writer.abort();
    (lines.load(Ordering::Relaxed), open_for)
}

/// Sends `request_line`, then a header line every 100 ms, counting them in
/// `sent`, until a write fails.
async fn trickle(
    mut write: OwnedWriteHalf,
    request_line: String,
    sent: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    write.write_all(request_line.as_bytes()).await?;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        write.write_all(b"X-Trickle: 1\r\n").await?;
        sent.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reads (and drops) whatever comes until the peer closes the connection.
///
/// # Panics
///
/// When the peer keeps it open past `deadline`.
pub async fn until_closed(read: &mut OwnedReadHalf, deadline: Duration) {
    let mut buffer = [0; 1024];
    let closed = async {
        loop {
            match read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(deadline, closed)
        .await
        .expect("the server closes the connection within the deadline");
}
