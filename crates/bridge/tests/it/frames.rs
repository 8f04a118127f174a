//! What a WebSocket client may send: a few KiB before `auth`, a modest
//! message after it; more is refused with 1009, and never buffered.

use std::time::Duration;

use fleet_bridge::close_code;
use fleet_bridge::protocol::ServerMessage;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::helpers::{DEADLINE, TestBridge};

const MIB: u64 = 1024 * 1024;

/// A text frame's opcode.
const TEXT: u8 = 0x1;
/// A continuation frame's opcode.
const CONTINUATION: u8 = 0x0;

#[tokio::test]
async fn a_16_mib_frame_before_auth_is_refused_with_1009_from_its_header() {
    let bridge = TestBridge::start(|_| {}).await;
    let (mut read, mut write) = bridge.raw_socket().await.into_split();

    // The header announces 16 MiB; only 1 KiB of it follows.
    let mut frame = header(TEXT, true, 16 * MIB);
    frame.extend_from_slice(&[b'x'; 1024]);
    write.write_all(&frame).await.unwrap();

    let (code, reason) = close_frame(&mut read).await;
    assert_eq!(code, close_code::MESSAGE_TOO_BIG);
    assert_eq!(reason, "send at most 4096 bytes before authenticating");
}

#[tokio::test]
async fn a_20_mib_message_in_fragments_before_auth_is_refused_with_1009() {
    let bridge = TestBridge::start(|_| {}).await;
    let (mut read, write) = bridge.raw_socket().await.into_split();

    let sending = tokio::spawn(send_fragments(write, 20 * MIB, 1024));

    let (code, reason) = close_frame(&mut read).await;
    assert_eq!(code, close_code::MESSAGE_TOO_BIG);
    assert_eq!(reason, "send at most 4096 bytes before authenticating");
    // The bridge stopped reading: the client could not send it all.
    let sent = tokio::time::timeout(DEADLINE, sending)
        .await
        .unwrap()
        .unwrap();
    assert!(sent < 20 * MIB, "the bridge read all {sent} bytes");
}

#[tokio::test]
async fn a_first_frame_just_over_the_budget_is_refused_with_1009() {
    let bridge = TestBridge::start(|config| config.max_auth_message_bytes = 512).await;
    let (mut read, mut write) = bridge.raw_socket().await.into_split();

    let mut frame = header(TEXT, true, 1024);
    frame.extend_from_slice(&[b' '; 1024]);
    write.write_all(&frame).await.unwrap();

    let (code, reason) = close_frame(&mut read).await;
    assert_eq!(code, close_code::MESSAGE_TOO_BIG);
    assert_eq!(reason, "send at most 512 bytes before authenticating");
}

#[tokio::test]
async fn after_auth_a_message_over_the_limit_is_refused_with_1009() {
    let bridge = TestBridge::start(|config| config.max_message_bytes = 16 * 1024).await;
    let mut client = bridge.connect("acme", None).await;
    assert!(matches!(client.next().await, ServerMessage::Snapshot(_)));

    // A message the size of an auth message is still fine once authenticated.
    client
        .send(json!({"type": "noise", "data": "x".repeat(8 * 1024)}))
        .await;
    client
        .send(json!({"type": "noise", "data": "x".repeat(32 * 1024)}))
        .await;

    let (code, reason) = client.closed().await;
    assert_eq!(code, close_code::MESSAGE_TOO_BIG);
    assert_eq!(reason, "a client message may hold at most 16384 bytes");
}

/// The header of a client frame (masked, with a zero key so that the
/// payload goes as it is) announcing `len` bytes.
fn header(opcode: u8, fin: bool, len: u64) -> Vec<u8> {
    let mut header = vec![if fin { 0x80 } else { 0 } | opcode];
    match len {
        0..=125 => header.push(0x80 | u8::try_from(len).unwrap()),
        126..=0xffff => {
            header.push(0x80 | 126);
            header.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
        }
        _ => {
            header.push(0x80 | 127);
            header.extend_from_slice(&len.to_be_bytes());
        }
    }
    header.extend_from_slice(&[0; 4]);
    header
}

/// Sends one text message of `total` bytes in fragments of `size`, and
/// returns how many bytes of it went out before the bridge stopped taking
/// them (or all of them).
async fn send_fragments(mut write: OwnedWriteHalf, total: u64, size: u64) -> u64 {
    let payload = vec![b'x'; usize::try_from(size).unwrap()];
    let mut sent = 0;
    while sent < total {
        let opcode = if sent == 0 { TEXT } else { CONTINUATION };
        let mut frame = header(opcode, sent + size >= total, size);
        frame.extend_from_slice(&payload);
        let write = tokio::time::timeout(Duration::from_secs(2), write.write_all(&frame)).await;
        if !matches!(write, Ok(Ok(()))) {
            break;
        }
        sent += size;
    }
    sent
}

/// Reads the bridge's frames until its close frame, within the deadline,
/// and returns its code and reason.
async fn close_frame(read: &mut OwnedReadHalf) -> (u16, String) {
    let read = async {
        loop {
            let mut head = [0; 2];
            read.read_exact(&mut head).await.unwrap();
            let len = usize::from(head[1] & 0x7f);
            assert!(len < 126, "the bridge sent a long frame before closing");
            let mut payload = vec![0; len];
            read.read_exact(&mut payload).await.unwrap();
            if head[0] & 0x0f == 0x8 {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                return (code, String::from_utf8(payload[2..].to_vec()).unwrap());
            }
        }
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .expect("a close frame within the deadline")
}
