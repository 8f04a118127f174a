//! What each process's `/readyz` checks, its Prometheus recorder, and
//! `fleet healthcheck`, the probe container health checks run.

use std::time::Duration;

use anyhow::Context as _;
use async_nats::connection::State;
use fleet_events::Step;
use fleet_serve::ops::{Metrics, Readiness};

/// Installs the process's Prometheus recorder.
pub(crate) fn metrics() -> anyhow::Result<Metrics> {
    Metrics::install().context("failed to install the Prometheus recorder")
}

/// Ready while the NATS connection is up.
pub(crate) fn nats(readiness: Readiness, client: &async_nats::Client) -> Readiness {
    let client = client.clone();
    readiness.with("nats", move || {
        let state = client.connection_state();
        async move {
            match state {
                State::Connected => Ok(()),
                other => Err(format!("the NATS connection is {other:?}")),
            }
        }
    })
}

/// Ready while PostgreSQL answers a query.
pub(crate) fn postgres(readiness: Readiness, store: &fleet_store::Store) -> Readiness {
    let store = store.clone();
    readiness.with("postgres", move || {
        let store = store.clone();
        async move { store.ping().await.map_err(|e| error_chain(&e)) }
    })
}

/// Ready while Vault answers and is unsealed.
pub(crate) fn vault(readiness: Readiness, secrets: &fleet_secrets::Client) -> Readiness {
    let secrets = secrets.clone();
    readiness.with("vault", move || {
        let secrets = secrets.clone();
        async move { secrets.health().await.map_err(|e| error_chain(&e)) }
    })
}

/// Ready while the durable consumer of every step in `steps` exists.
pub(crate) fn consumers(
    readiness: Readiness,
    js: &async_nats::jetstream::Context,
    steps: &[Step],
) -> Readiness {
    let (js, steps) = (js.clone(), steps.to_vec());
    readiness.with("consumers", move || {
        let (js, steps) = (js.clone(), steps.clone());
        async move {
            for step in steps {
                let config = fleet_bus::WorkerConfig::for_step(step);
                let stream = js
                    .get_stream(&config.stream)
                    .await
                    .map_err(|e| format!("stream {}: {e}", config.stream))?;
                stream
                    .consumer_info(&config.consumer)
                    .await
                    .map_err(|e| format!("consumer {}: {e}", config.consumer))?;
            }
            Ok(())
        }
    })
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What `fleet healthcheck` was asked to probe.
#[derive(Debug, clap::Args)]
pub(crate) struct HealthcheckArgs {
    /// The URL to GET, such as http://127.0.0.1:8080/readyz.
    url: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    timeout_seconds: u64,
}

/// GETs the URL and succeeds on a 2xx answer: the probe of container health
/// checks, for images without curl.
pub(crate) async fn healthcheck(args: HealthcheckArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout_seconds))
        .no_proxy()
        .build()
        .context("failed to build the HTTP client")?;
    let response = client
        .get(&args.url)
        .send()
        .await
        .with_context(|| format!("{} did not answer", args.url))?;
    let status = response.status();
    anyhow::ensure!(status.is_success(), "{} answered {status}", args.url);
    Ok(())
}
