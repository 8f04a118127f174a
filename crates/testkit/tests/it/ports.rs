use fleet_testkit::{NatsServer, OpenBao, Postgres, free_port};

use crate::helpers::STANDARD_PORTS;

#[test]
fn free_port_is_never_a_standard_port() {
    for _ in 0..100 {
        assert!(!STANDARD_PORTS.contains(&free_port()));
    }
}

// Spawning the starts also checks that their futures are Send, so tests can start
// servers in parallel.
#[tokio::test(flavor = "multi_thread")]
async fn servers_never_listen_on_standard_ports() {
    let nats = tokio::spawn(NatsServer::start());
    let bao = tokio::spawn(OpenBao::start());
    let postgres = tokio::spawn(Postgres::start());
    let (nats, bao, postgres) = (
        nats.await.unwrap(),
        bao.await.unwrap(),
        postgres.await.unwrap(),
    );

    for port in [nats.port(), bao.port(), postgres.port()] {
        assert!(
            !STANDARD_PORTS.contains(&port),
            "a server listens on {port}"
        );
    }
}
