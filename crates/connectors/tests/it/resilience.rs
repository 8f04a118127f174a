use std::time::{Duration, Instant};

use fleet_connectors::{Config, Credentials, Error, ErrorClass};
use fleet_sim::{Fault, SiteConfig, UserConfig};

use crate::helpers::{PASSWORD, acme, bob, config, connector, spawn, sync_all};

#[tokio::test]
async fn rate_limited_call_waits_for_retry_after_and_succeeds() {
    let sim = spawn([acme(3)]).await;
    sim.inject_site(
        "acme",
        Fault::RateLimited {
            retry_after_secs: 1,
        },
        1,
    );
    let started = Instant::now();

    let synced = sync_all(&*connector(&config(), "wordpress"), &bob(&sim), "posts").await;

    assert_eq!(synced.records.len(), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(sim.requests("acme"), 2);
}

#[tokio::test]
async fn retry_after_beyond_the_cap_is_handed_back_at_once() {
    let sim = spawn([acme(3)]).await;
    sim.inject_site(
        "acme",
        Fault::RateLimited {
            retry_after_secs: 120,
        },
        1,
    );
    let started = Instant::now();

    let error = connector(&config(), "wordpress")
        .sync_page(&bob(&sim), "posts", None)
        .await
        .unwrap_err();

    assert_eq!(
        error.class(),
        ErrorClass::Retryable {
            retry_after: Some(Duration::from_secs(120))
        }
    );
    assert!(matches!(error, Error::RateLimited { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(sim.requests("acme"), 1);
}

#[tokio::test]
async fn persistent_503_ends_as_retryable_after_three_attempts() {
    let sim = spawn([acme(3)]).await;
    sim.inject_site(
        "acme",
        Fault::Unavailable {
            retry_after_secs: None,
        },
        10,
    );

    let error = connector(&config(), "wordpress")
        .sync_page(&bob(&sim), "posts", None)
        .await
        .unwrap_err();

    assert_eq!(error.class(), ErrorClass::Retryable { retry_after: None });
    assert!(
        error.to_string().contains("is unavailable (HTTP 503)"),
        "{error}"
    );
    assert_eq!(sim.requests("acme"), 3);
}

#[tokio::test]
async fn slow_site_times_out_as_retryable() {
    let sim = spawn([acme(3)]).await;
    sim.inject_site("acme", Fault::Slow { delay_ms: 2_000 }, 3);
    let config = Config {
        request_timeout: Duration::from_millis(200),
        ..config()
    };

    let error = connector(&config, "wordpress")
        .validate(&bob(&sim))
        .await
        .unwrap_err();

    assert_eq!(error.class(), ErrorClass::Retryable { retry_after: None });
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    assert_eq!(sim.requests("acme"), 3);
}

#[tokio::test]
async fn redirect_is_refused_and_not_followed() {
    let sim = spawn([
        acme(3),
        SiteConfig::new("moved").user(UserConfig::administrator("bob", PASSWORD)),
    ])
    .await;
    let target = format!("{}/wp-json/wp/v2/users/me?token=abc", sim.site_url("moved"));
    sim.inject_site("acme", Fault::Redirect { location: target }, 1);

    let error = connector(&config(), "wordpress")
        .validate(&bob(&sim))
        .await
        .unwrap_err();

    assert_eq!(error.class(), ErrorClass::Permanent);
    let Error::Redirected {
        location, status, ..
    } = &error
    else {
        panic!("expected Redirected, got {error:?}");
    };
    assert_eq!(*status, 301);
    assert_eq!(
        location,
        &format!("{}/wp-json/wp/v2/users/me", sim.site_url("moved"))
    );
    assert!(!error.to_string().contains("token"), "{error}");
    assert_eq!(sim.requests("moved"), 0);
}

#[tokio::test]
async fn http_site_is_refused_unless_allow_http() {
    let sim = spawn([acme(0)]).await;
    let production = Config::default();

    let error = connector(&production, "wordpress")
        .validate(&bob(&sim))
        .await
        .unwrap_err();
    let allowed = connector(&config(), "wordpress").validate(&bob(&sim)).await;

    assert_eq!(error.class(), ErrorClass::Permanent);
    assert!(matches!(error, Error::SiteUrl { .. }), "{error:?}");
    assert!(error.to_string().contains("must use https"), "{error}");
    assert!(allowed.is_ok(), "{allowed:?}");
    assert_eq!(sim.requests("acme"), 1);
}

#[tokio::test]
async fn unreachable_site_is_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let credentials = Credentials::app_password(format!("http://{address}"), "bob", PASSWORD);

    let error = connector(&config(), "wordpress")
        .validate(&credentials)
        .await
        .unwrap_err();

    assert_eq!(error.class(), ErrorClass::Retryable { retry_after: None });
    assert!(
        error
            .to_string()
            .starts_with("the request to WordPress at http://"),
        "{error}"
    );
}

#[tokio::test]
async fn a_retry_after_of_years_is_capped_at_a_day() {
    let sim = spawn([acme(3)]).await;
    sim.inject_site(
        "acme",
        Fault::RateLimited {
            retry_after_secs: 10 * 365 * 24 * 3600,
        },
        1,
    );

    let error = connector(&config(), "wordpress")
        .sync_page(&bob(&sim), "posts", None)
        .await
        .unwrap_err();

    assert_eq!(
        error.class(),
        ErrorClass::Retryable {
            retry_after: Some(fleet_connectors::MAX_RETRY_AFTER)
        }
    );
}
