//! `fleet sim`: the offline demo provider, serving simulated WordPress and
//! FluentCRM sites so the fleet can be tried without any real account.

use anyhow::Context as _;
use fleet_sim::{Sim, SiteConfig, UserConfig};
use tokio_util::sync::CancellationToken;
use tracing::info;

/// The demo site's user and application password, printed by `scripts/up`.
pub(crate) const DEMO_USER: &str = "demo";
/// Not a secret: it opens only the simulator's made-up site.
pub(crate) const DEMO_PASSWORD: &str = "demo DEMO demo DEMO demo DEMO";

/// What `fleet sim` was asked to run.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:18090")]
    listen: std::net::SocketAddr,
}

/// Serves one site, `demo` (WordPress with FluentCRM), until `shutdown`.
pub(crate) async fn run(args: Args, shutdown: CancellationToken) -> anyhow::Result<()> {
    let site = SiteConfig::new("demo")
        .user(UserConfig::administrator(DEMO_USER, DEMO_PASSWORD))
        .posts(240)
        .pages(12)
        .fluentcrm(150, 6);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("failed to listen on {}", args.listen))?;
    let sim = Sim::start(listener, &fleet_sim::Config::default().site(site))?;
    info!(site = %sim.site_url("demo"), user = DEMO_USER, "Demo provider serving.");
    shutdown.cancelled().await;
    Ok(())
}
