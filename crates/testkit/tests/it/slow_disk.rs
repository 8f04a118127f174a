use std::io::Write as _;
use std::time::{Duration, Instant};

use async_nats::jetstream::stream;
use fleet_testkit::{NatsServer, SlowDisk};

fn mounted(path: &std::path::Path) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|line| line.split_whitespace().nth(1) == Some(&*path.to_string_lossy()))
}

#[tokio::test]
async fn a_slow_disk_keeps_what_is_written_slowly_and_unmounts_on_drop() {
    let disk = SlowDisk::mount(Duration::from_millis(20)).await;
    let path = disk.path().to_owned();
    assert!(mounted(&path));

    let started = Instant::now();
    let mut file = std::fs::File::create(path.join("data")).unwrap();
    for _ in 0..5 {
        file.write_all(b"0123456789").unwrap();
    }
    file.sync_all().unwrap();
    let took = started.elapsed();
    drop(file);

    assert_eq!(std::fs::read(path.join("data")).unwrap().len(), 50);
    // Five writes of 20 ms and an fsync of 80 ms.
    assert!(took >= Duration::from_millis(180), "writing took {took:?}");
    drop(disk);
    assert!(!mounted(&path), "unmounted on drop");
}

#[tokio::test]
async fn nats_keeps_its_store_on_a_slow_disk_across_a_restart() {
    let disk = SlowDisk::mount(Duration::from_millis(5)).await;
    let mut nats = NatsServer::start_with_store(disk.path().join("store")).await;
    let jetstream = nats.jetstream().await;
    jetstream
        .create_stream(stream::Config {
            name: "ORDERS".to_owned(),
            subjects: vec!["orders.>".to_owned()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .unwrap();
    jetstream
        .publish("orders.created", "order 1".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(disk.path().join("store/jetstream").is_dir());

    nats.restart().await;
    let jetstream = nats.jetstream().await;
    let mut orders = jetstream.get_stream("ORDERS").await.unwrap();
    assert_eq!(orders.info().await.unwrap().state.messages, 1);
}
