//! `fleet_bus::connect` with the URL settings operators write.

use fleet_testkit::NatsServer;

use crate::helpers::DEADLINE;

#[tokio::test]
async fn a_comma_separated_url_list_reaches_a_server_that_answers() {
    let server = NatsServer::start().await;
    // Nothing listens on the first address: the client goes on to the next.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let config = fleet_bus::Config::new(format!("nats://127.0.0.1:{dead_port}, {}", server.url()));
    assert_eq!(config.servers().len(), 2);

    let client = tokio::time::timeout(DEADLINE, fleet_bus::connect(&config))
        .await
        .expect("connects in time")
        .expect("the second server answers");
    client.flush().await.unwrap();
    assert_eq!(
        client.connection_state(),
        async_nats::connection::State::Connected
    );
}
