use fleet_store::{Config, Error, Store};
use fleet_testkit::Postgres;
use secrecy::SecretString;
use sqlx::PgPool;

use crate::helpers::{config, spawn_store};

#[tokio::test]
async fn connecting_again_to_a_migrated_database_succeeds() {
    let test = spawn_store().await;

    let again = Store::connect(&config(&test.url)).await;

    assert!(again.is_ok(), "{:?}", again.err());
}

#[tokio::test]
async fn processes_starting_at_once_all_migrate_without_error() {
    let postgres = Postgres::start().await;
    let url = postgres.create_database().await;
    let config = config(&url);

    let connects = (0..4).map(|_| Store::connect(&config));
    let results = futures::future::join_all(connects).await;

    for result in results {
        assert!(result.is_ok(), "{:?}", result.err());
    }
}

#[tokio::test]
async fn no_column_is_named_like_a_credential() {
    let test = spawn_store().await;
    let pool = PgPool::connect(&test.url).await.unwrap();

    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT table_name || '.' || column_name FROM information_schema.columns \
         WHERE table_schema = 'public' AND column_name ~ '(secret|password|token|credential|key)'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();

    assert_eq!(columns, Vec::<String>::new());
}

#[tokio::test]
async fn an_unreachable_database_is_a_transient_error_that_does_not_quote_the_password() {
    // Port 1 on loopback: nothing listens there, so the connection is refused.
    let config = Config::new(SecretString::from(
        "postgres://fleet:hunter2@127.0.0.1:1/fleet",
    ));

    let err = Store::connect(&config).await.unwrap_err();

    assert!(matches!(err, Error::Connect(_)), "{err:?}");
    assert!(err.is_transient());
    assert_no_password(&err);
}

#[tokio::test]
async fn a_malformed_url_is_a_permanent_error_that_does_not_quote_the_password() {
    let config = Config::new(SecretString::from("postgres://fleet:hunter2@[::1/fleet"));

    let err = Store::connect(&config).await.unwrap_err();

    assert!(matches!(err, Error::InvalidUrl(_)), "{err:?}");
    assert!(!err.is_transient());
    assert_no_password(&err);
}

/// Neither the error's `Debug` nor any message of its chain shows the password.
fn assert_no_password(err: &Error) {
    let mut messages = vec![format!("{err:?}")];
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(error) = source {
        messages.push(error.to_string());
        source = error.source();
    }
    for message in messages {
        assert!(!message.contains("hunter2"), "{message}");
    }
}
