use fleet_testkit::Postgres;
use sqlx::{Connection, PgConnection};

use crate::helpers::assert_stopped_and_removed;

async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url).await.unwrap()
}

async fn create_connections_table(url: &str) {
    let mut db = connect(url).await;
    sqlx::raw_sql("CREATE TABLE connections (id bigint PRIMARY KEY, provider text NOT NULL)")
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query("INSERT INTO connections (id, provider) VALUES ($1, $2)")
        .bind(1_i64)
        .bind("trello")
        .execute(&mut db)
        .await
        .unwrap();
}

async fn providers(url: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT provider FROM connections ORDER BY id")
        .fetch_all(&mut connect(url).await)
        .await
        .unwrap()
}

#[tokio::test]
async fn fresh_database_creates_inserts_and_selects() {
    let postgres = Postgres::start().await;
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut connect(&postgres.url()).await)
        .await
        .unwrap();
    assert_eq!(one, 1);

    let url = postgres.create_database().await;
    create_connections_table(&url).await;

    assert_eq!(providers(&url).await, ["trello"]);
}

#[tokio::test]
async fn created_databases_are_isolated_from_each_other() {
    let postgres = Postgres::start().await;
    let (first, second) = (
        postgres.create_database().await,
        postgres.create_database().await,
    );

    create_connections_table(&first).await;

    assert_ne!(first, second);
    let table_in_second: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('connections')::text")
            .fetch_one(&mut connect(&second).await)
            .await
            .unwrap();
    assert_eq!(table_in_second, None);
}

#[tokio::test]
async fn data_survives_a_restart() {
    let mut postgres = Postgres::start().await;
    let url = postgres.create_database().await;
    create_connections_table(&url).await;

    postgres.restart().await;

    assert_eq!(providers(&url).await, ["trello"]);
}

#[tokio::test]
async fn committed_data_survives_a_kill() {
    let mut postgres = Postgres::start().await;
    let url = postgres.create_database().await;
    create_connections_table(&url).await;

    postgres.kill();
    postgres.restart().await;

    assert_eq!(providers(&url).await, ["trello"]);
}

#[tokio::test]
async fn dropping_the_server_stops_it_and_removes_its_data() {
    let postgres = Postgres::start().await;
    let (port, dir) = (postgres.port(), postgres.dir().to_path_buf());

    drop(postgres);

    assert_stopped_and_removed(port, &dir);
}
