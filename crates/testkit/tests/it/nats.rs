use std::time::Duration;

use async_nats::ConnectOptions;
use async_nats::jetstream::{self, stream};
use fleet_testkit::{NatsCluster, NatsServer};

use crate::helpers::assert_stopped_and_removed;

async fn create_orders_stream(jetstream: &jetstream::Context) {
    jetstream
        .create_stream(stream::Config {
            name: "ORDERS".to_owned(),
            subjects: vec!["orders.>".to_owned()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn acked_message_survives_a_restart() {
    let mut nats = NatsServer::start().await;
    let jetstream = nats.jetstream().await;
    create_orders_stream(&jetstream).await;
    let ack = jetstream
        .publish("orders.created", "order 1".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.sequence, 1);

    nats.restart().await;

    let stream = nats.jetstream().await.get_stream("ORDERS").await.unwrap();
    let message = stream.get_raw_message(ack.sequence).await.unwrap();
    assert_eq!(message.payload, "order 1");
}

#[tokio::test]
async fn acked_messages_survive_a_kill() {
    let mut nats = NatsServer::start().await;
    let jetstream = nats.jetstream().await;
    create_orders_stream(&jetstream).await;
    let mut last_acked = 0;
    for n in 1..=50 {
        let payload = format!("order {n}");
        let ack = jetstream.publish("orders.created", payload.into()).await;
        last_acked = ack.unwrap().await.unwrap().sequence;
    }

    nats.kill();
    nats.restart().await;

    let mut stream = nats.jetstream().await.get_stream("ORDERS").await.unwrap();
    let state = &stream.info().await.unwrap().state;
    assert_eq!(state.messages, 50);
    assert_eq!(state.last_sequence, last_acked);
}

#[tokio::test]
async fn config_file_reads_env_vars_while_the_guard_keeps_its_port() {
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("nats.conf");
    std::fs::write(
        &config,
        "port: 4222\n\
         jetstream {}\n\
         authorization { user: worker, password: $WORKER_PASSWORD }\n",
    )
    .unwrap();

    let nats = NatsServer::start_with_config(&config, [("WORKER_PASSWORD", "s3cret")]).await;

    assert_ne!(nats.port(), 4222);
    let worker = ConnectOptions::with_user_and_password("worker".to_owned(), "s3cret".to_owned())
        .connect(nats.url())
        .await
        .unwrap();
    jetstream::new(worker).query_account().await.unwrap();
    assert!(async_nats::connect(nats.url()).await.is_err());
}

#[tokio::test]
async fn dropping_the_server_stops_it_and_removes_its_data() {
    let nats = NatsServer::start().await;
    let (port, dir) = (nats.port(), nats.dir().to_path_buf());

    drop(nats);

    assert_stopped_and_removed(port, &dir);
}

#[tokio::test]
async fn a_cluster_keeps_a_three_replica_stream_through_one_node_stopping() {
    let mut cluster = NatsCluster::start().await;
    let js = jetstream::new(cluster.client().await);
    js.create_stream(stream::Config {
        name: "R3".to_owned(),
        subjects: vec!["r3.>".to_owned()],
        num_replicas: 3,
        ..Default::default()
    })
    .await
    .unwrap();
    js.publish("r3.a", "before".into())
        .await
        .unwrap()
        .await
        .unwrap();

    // The stream's leader goes: the other two elect another and keep a quorum.
    let leader = leader_of(&js, "R3").await;
    cluster.node_named(&leader).stop();
    let ack = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            // The id makes a retry after a lost ack a duplicate, not a second message.
            let message = jetstream::message::PublishMessage::build()
                .payload("during".into())
                .message_id("during");
            match js.send_publish("r3.a", message).await {
                Ok(pending) => match pending.await {
                    Ok(ack) => return ack,
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                },
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await
    .expect("a two-node quorum takes writes");
    assert_eq!(ack.sequence, 2);
    assert_ne!(leader_of(&js, "R3").await, leader, "another node leads");

    cluster.node_named(&leader).restart().await;
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let mut stream = js.get_stream("R3").await.unwrap();
            let info = stream.info().await.unwrap();
            let replicas = &info.cluster.as_ref().expect("clustered").replicas;
            if replicas.len() == 2 && replicas.iter().all(|r| r.current && !r.offline) {
                assert_eq!(info.state.messages, 2);
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the node rejoins and catches up");
}

/// The server name of `stream`'s leader.
async fn leader_of(js: &jetstream::Context, stream: &str) -> String {
    let mut stream = js.get_stream(stream).await.unwrap();
    let info = stream.info().await.unwrap();
    info.cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .expect("the stream has a leader")
}
