//! `fleet sim`: the offline demo provider, serving simulated WordPress and
//! FluentCRM sites, Google Analytics, Meta, LinkedIn and Trello (consent
//! pages and APIs) so the fleet can be tried without any real account.
//!
//! With `--catalog-dir`, it also writes catalog overrides that point the
//! OAuth connectors at itself; give that directory to the workers and the
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
    let config = fleet_sim::Config::default()
        .site(site)
        .google(google)
        .meta(meta)
        .linkedin(linkedin)
        .trello(trello);
    let sim = Sim::start(listener, &config)?;
    if let Some(dir) = &args.catalog_dir {
        write_catalog(dir, &sim)
            .with_context(|| format!("failed to write the demo catalog to {}", dir.display()))?;
        info!(dir = %dir.display(), "Demo catalog overrides written.");
    }
    info!(site = %sim.site_url("demo"), user = DEMO_USER, google = %sim.google_url(),
        "Demo provider serving.");
    shutdown.cancelled().await;
    Ok(())
}

/// Writes one override per simulated OAuth provider into `dir`, each file
/// replaced atomically so a reader never sees half of one.
fn write_catalog(dir: &std::path::Path, sim: &fleet_sim::SimHandle) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let google = sim.google_url();
    let graph = format!("{}/v22.0", sim.meta_url());
    let linkedin = sim.linkedin_url();
    let trello = sim.trello_url();
    let header = "# Written by `fleet sim`: served by the demo provider.";
    let files = [
        (
            "google-analytics",
            format!(
                "{header}\n[api_base_urls]\nadmin = \"{google}/analyticsadmin\"\ndata = \"{google}/analyticsdata\"\n\
                 [oauth2]\nauthorize_url = \"{google}/o/oauth2/v2/auth\"\ntoken_url = \"{google}/token\"\n\
                 revoke_url = \"{google}/revoke\"\nuserinfo_url = \"{google}/v1/userinfo\"\n\
                 client_id = \"{DEMO_CLIENT_ID}\"\n"
            ),
        ),
        (
            "meta",
            format!(
                "{header}\n[api_base_urls]\ngraph = \"{graph}\"\n\
                 [oauth2]\nauthorize_url = \"{graph}/dialog/oauth\"\ntoken_url = \"{graph}/oauth/access_token\"\n\
                 userinfo_url = \"{graph}/me\"\nclient_id = \"{DEMO_CLIENT_ID}\"\n"
            ),
        ),
        (
            "linkedin",
            format!(
                "{header}\n[api_base_urls]\napi = \"{linkedin}\"\n\
                 [oauth2]\nauthorize_url = \"{linkedin}/oauth/v2/authorization\"\n\
                 token_url = \"{linkedin}/oauth/v2/accessToken\"\nuserinfo_url = \"{linkedin}/v2/userinfo\"\n\
                 client_id = \"{DEMO_CLIENT_ID}\"\n"
            ),
        ),
        (
            "trello",
            format!(
                "{header}\n[api_base_urls]\napi = \"{trello}/1\"\n\
                 [oauth1]\nrequest_token_url = \"{trello}/1/OAuthGetRequestToken\"\n\
                 authorize_url = \"{trello}/1/OAuthAuthorizeToken\"\n\
                 access_token_url = \"{trello}/1/OAuthGetAccessToken\"\n\
                 revoke_url = \"{trello}/1/tokens/{{token}}\"\nclient_id = \"{DEMO_TRELLO_KEY}\"\n"
            ),
        ),
    ];
    for (id, text) in files {
        let path = dir.join(format!("{id}.toml"));
        let partial = dir.join(format!(".{id}.toml.partial"));
        std::fs::write(&partial, text)?;
        std::fs::rename(&partial, &path)?;
    }
    Ok(())
}
