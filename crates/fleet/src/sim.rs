//! `fleet sim`: the offline demo provider, serving simulated WordPress and
//! FluentCRM sites, Google Analytics, Meta, LinkedIn, Trello and Acme, a
//! generic OAuth 2.0 provider whose connections name their tenant
//! (consent pages and APIs), so the fleet can be tried without any real
//! account.
//!
//! With `--catalog-dir`, it also writes catalog overrides that point the
//! OAuth connectors at itself, and the entry of `acme` (tenant `demo`);
//! give that directory to the workers and the
//! gateway as `FLEET_CONNECTORS__CATALOG_DIR`, with the demo OAuth client
//! ([`DEMO_CLIENT_ID`], [`DEMO_CLIENT_SECRET`]; Trello's key is
//! [`DEMO_TRELLO_KEY`]).

use anyhow::Context as _;
use fleet_sim::{Sim, SiteConfig, UserConfig};
use tokio_util::sync::CancellationToken;
use tracing::info;

/// The demo site's user and application password, printed by `scripts/up`.
pub(crate) const DEMO_USER: &str = "demo";
/// Not a secret: it opens only the simulator's made-up site.
pub(crate) const DEMO_PASSWORD: &str = "demo DEMO demo DEMO demo DEMO";

/// The demo OAuth client the simulated providers accept.
pub(crate) const DEMO_CLIENT_ID: &str = "demo-client";
/// Not a secret: the simulator accepts it and nothing else does.
pub(crate) const DEMO_CLIENT_SECRET: &str = "demo-client-secret";

/// The demo Trello API key (Trello's keys are 32 hex digits).
pub(crate) const DEMO_TRELLO_KEY: &str = "de770000de770000de770000de770000";

/// What `fleet sim` was asked to run.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:18090")]
    listen: std::net::SocketAddr,
    /// Write catalog overrides pointing the OAuth connectors at this
    /// simulator into this directory (created if missing).
    #[arg(long)]
    catalog_dir: Option<std::path::PathBuf>,
}

/// Serves one site, `demo` (WordPress with FluentCRM), and user `demo` at
/// Google (one Analytics account with two properties), Meta (three ad
/// accounts), LinkedIn (two organizations) and Trello (two boards), each
/// behind a consent page, until `shutdown`.
pub(crate) async fn run(args: Args, shutdown: CancellationToken) -> anyhow::Result<()> {
    let site = SiteConfig::new("demo")
        .user(UserConfig::administrator(DEMO_USER, DEMO_PASSWORD))
        .posts(240)
        .pages(12)
        .fluentcrm(150, 6);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("failed to listen on {}", args.listen))?;
    let google = fleet_sim::GoogleConfig {
        client_id: DEMO_CLIENT_ID.to_owned(),
        client_secret: DEMO_CLIENT_SECRET.to_owned(),
        consent_page: true,
        ..fleet_sim::GoogleConfig::default()
    }
    .user(fleet_sim::GoogleUserConfig::new(DEMO_USER, 1, 2));
    let meta = fleet_sim::MetaConfig {
        app_id: DEMO_CLIENT_ID.to_owned(),
        app_secret: DEMO_CLIENT_SECRET.to_owned(),
        consent_page: true,
        ..fleet_sim::MetaConfig::default()
    }
    .user(fleet_sim::MetaUserConfig::new(DEMO_USER, 3));
    let linkedin = fleet_sim::LinkedInConfig {
        client_id: DEMO_CLIENT_ID.to_owned(),
        client_secret: DEMO_CLIENT_SECRET.to_owned(),
        refresh_tokens: true,
        consent_page: true,
        ..fleet_sim::LinkedInConfig::default()
    }
    .user(fleet_sim::LinkedInUserConfig::new(DEMO_USER, 2));
    let trello = fleet_sim::TrelloConfig {
        consumer_key: DEMO_TRELLO_KEY.to_owned(),
        consumer_secret: DEMO_CLIENT_SECRET.to_owned(),
        consent_page: true,
        ..fleet_sim::TrelloConfig::default()
    }
    .member(
        fleet_sim::TrelloMemberConfig::new(DEMO_USER)
            .board(40)
            .board(12),
    );
    let acme = fleet_sim::AcmeConfig {
        client_id: DEMO_CLIENT_ID.to_owned(),
        client_secret: DEMO_CLIENT_SECRET.to_owned(),
        tenant: DEMO_USER.to_owned(),
        users: vec![DEMO_USER.to_owned()],
        ..fleet_sim::AcmeConfig::default()
    };
    let config = fleet_sim::Config::default()
        .site(site)
        .google(google)
        .meta(meta)
        .linkedin(linkedin)
        .trello(trello)
        .acme(acme);
    let sim = Sim::start(listener, &config)?;
    if let Some(dir) = &args.catalog_dir {
        sim.write_catalog(dir)
            .with_context(|| format!("failed to write the demo catalog to {}", dir.display()))?;
        info!(dir = %dir.display(), "Demo catalog overrides written.");
    }
    info!(site = %sim.site_url("demo"), user = DEMO_USER, google = %sim.google_url(),
        "Demo provider serving.");
    shutdown.cancelled().await;
    Ok(())
}
