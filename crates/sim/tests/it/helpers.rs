//! A simulator per test, and a plain HTTP client to poke it with.

use fleet_sim::{Config, Sim, SimHandle, SiteConfig, UserConfig};
use reqwest::{Client, RequestBuilder, redirect};

/// The application password of the seeded user `bob`.
pub(crate) const PASSWORD: &str = "abcd efgh ijkl mnop qrst uvwx";

/// Starts a simulator serving `sites` on a free port.
pub(crate) async fn spawn(sites: impl IntoIterator<Item = SiteConfig>) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = sites.into_iter().fold(Config::default(), Config::site);
    Sim::start(listener, &config).unwrap()
}

/// Site `acme` with administrator `bob`, subscriber `sue`, and `posts` posts.
pub(crate) fn acme(posts: u32) -> SiteConfig {
    SiteConfig::new("acme")
        .user(UserConfig::administrator("bob", PASSWORD))
        .user(UserConfig::subscriber("sue", PASSWORD))
        .posts(posts)
}

/// A client that shows redirects instead of following them.
pub(crate) fn client() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

/// GET `path` of site `acme` as `bob`.
pub(crate) fn get_as_bob(sim: &SimHandle, path: &str) -> RequestBuilder {
    client()
        .get(format!("{}{path}", sim.site_url("acme")))
        .basic_auth("bob", Some(PASSWORD))
}
