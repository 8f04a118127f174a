//! A simulator of the provider APIs connector-fleet talks to, for tests and
//! the offline demo.
//!
//! It serves WordPress sites (`wp/v2`: `users/me`, `posts`, `pages`) with
//! the FluentCRM plugin (`fluent-crm/v2`: `subscribers`, `lists`) over
//! HTTP, as the real APIs answer: Basic authentication with application
//! passwords, WordPress's error bodies (`{"code", "message", "data":
//! {"status"}}`), `X-WP-Total`/`X-WP-TotalPages`/`Link` headers, a 400
//! `rest_post_invalid_page_number` past the last page, FluentCRM's nested
//! paginator with numeric ids, its 200-with-empty-data past the end, its
//! advanced filters (`id >`, `updated_at >=`, in site time) and rows that
//! tie on the sort column in no defined order. The REST index (`/wp-json/`)
//! says the site's `gmt_offset`.
//! Each site lives at `{base_url}/sites/{name}`, which is all a connector
//! needs: a site URL.
//!
//! Google lives under `{base_url}/google` ([`SimHandle::google_url`]): the
//! OAuth 2.0 authorize endpoint (auto-consent, or an HTML page with an
//! "Allow" button), the token endpoint (authorization code with PKCE, a
//! refresh token only on a user's first offline consent or one forced with
//! `prompt=consent`, refresh without a new refresh token unless rotation
//! is configured), revocation, OpenID userinfo, the Analytics Admin API's
//! `accountSummaries` and the Data API's `runReport`, with Google's error
//! bodies and paging, days without traffic left out, dates in the user's
//! time zone, and quota 429s that name the quota. The catalog points at
//! real Google; tests override its URLs to these.
//!
//! Trello lives under `{base_url}/trello` ([`SimHandle::trello_url`]):
//! three-legged OAuth 1.0a (request token, an authorize page that approves
//! at once or shows an "Allow" button, access token; form-encoded answers)
//! and the REST routes `/1/members/me`, `/1/members/me/boards`,
//! `/1/boards/{id}/cards` (bare arrays of open cards, `limit` up to 1000
//! and `before`, newest first), `/1/boards/{id}/actions` (the activity
//! every [`TrelloChange`] leaves, `since`/`before`) and `/1/cards/{id}`;
//! a board the member left answers 401 and a deleted one 404. It checks every request's HMAC-SHA1 signature with its
//! own implementation of RFC 5849 and refuses unknown consumer keys, bad
//! signatures, reused nonces and stale timestamps with Trello's plain-text
//! 401s; tokens die after 30 days unless `expiration=never` was asked for
//! ([`SimHandle::trello_token`] shows what was granted); rate limits per
//! token and key answer JSON 429s, and every REST answer carries the
//! lower-case `x-rate-limit-api-*` headers. Members and boards are seeded
//! from a [`TrelloConfig`].
//!
//! Meta lives under `{base_url}/meta` ([`SimHandle::meta_url`]): the
//! Facebook Login dialog (auto-consent or an "Allow" page; the redirect
//! ends in `#_=_`, a denial carries `error_reason=user_denied`), the token
//! endpoint (the code exchange as a GET only, as documented, giving a
//! short-lived token; `fb_exchange_token` trades a still-valid token for a
//! long-lived one; there is no refresh grant) and the Graph API's `/me`,
//! `/me/adaccounts` and `/act_<n>/insights`, with Graph error bodies on
//! HTTP 400 (190/463 for an expired token, 200 for a missing permission,
//! throttling as codes 17 and 80000 with `X-Business-Use-Case-Usage`) and
//! code 1 on HTTP 500 for too many days at once, `appsecret_proof` checked
//! (and required when the app says so), cursor paging whose `next` link
//! is absent on the last page, and metrics as strings. Users and ad
//! accounts come from a [`MetaConfig`].
//!
//! LinkedIn lives under `{base_url}/linkedin` ([`SimHandle::linkedin_url`]):
//! OAuth 2.0 (auto-consent or an "Allow" page, `user_cancelled_authorize`
//! on cancel; 60-day tokens, comma-separated `scope`, refresh tokens only
//! when [`LinkedInConfig::refresh_tokens`] is set), OpenID userinfo, and
//! the versioned `/rest/organizationAcls` and
//! `/rest/organizationalEntityFollowerStatistics`, which require
//! `LinkedIn-Version` (400 `VERSION_MISSING`, 426 `NONEXISTENT_VERSION`
//! outside the configured window) and Rest.li 2.0 query syntax, and
//! answer LinkedIn's `{"status", "serviceErrorCode", "code", "message"}`
//! errors, 429 without `Retry-After` included; a dead refresh token is
//! refused with `invalid_request`.
//!
//! Acme lives under `{base_url}/acme/{tenant}` ([`SimHandle::acme_url`]),
//! and at `http://{tenant}.acme.test:{port}` for a client that resolves
//! that name to the simulator ([`SimHandle::acme_host_url`]):
//! a standards-compliant OAuth 2.0 server (PKCE, refresh, revocation)
//! whose app requires what an [`AcmeConfig`] says of token requests
//! (HTTP Basic or body client authentication and never both, form or JSON
//! bodies, extra parameters), answers with the tenant's `instance_url`
//! and an `account` object, and serves `{instance_url}/userinfo`. Every
//! token request is kept for tests to read
//! ([`SimHandle::acme_token_requests`]).
//!
//! Lago's events API lives under `{base_url}/lago` ([`SimHandle::lago_url`],
//! key [`LAGO_API_KEY`]), for the demo's usage metering: it checks each
//! event's shape, keeps transaction ids unique as Lago does, and lists what
//! it stored at `GET /_sim/lago/events`.
//!
//! Sites are seeded deterministically from counts in a [`SiteConfig`], so
//! tests can page through 250 posts. [`SiteChange`] and [`TrelloChange`]
//! change content as editors and colleagues do, at once or just before a
//! given request while a sync pages. Faults ([`Fault`]: 429 with
//! `Retry-After`, 503, slow answers, redirects, a stripped `Authorization`
//! header) and password revocation are driven through the [`SimHandle`],
//! or over HTTP under `/_sim/` by other processes.
//!
//! # Layout
//!
//! - `providers/` holds one module per provider, `providers/{wordpress,
//!   fluentcrm,google,meta,linkedin,trello}.rs`, each with its routes and
//!   state; a provider with several parts has a folder of the same name
//!   for them (`google/analytics.rs`, `meta/insights.rs`,
//!   `linkedin/rest.rs`, `trello/boards.rs`, and each OAuth provider's
//!   `oauth.rs`).
//! - `oauth` is the one OAuth 2.0 authorization server of Google, Meta
//!   and LinkedIn: authorize and consent, single-use codes (`redirect_uri`
//!   and PKCE checks, expiry), the token endpoint (code exchange, refresh,
//!   rotation, Meta's long-lived exchange), revocation and the token
//!   lookup of their APIs. What differs between them (token names and
//!   lifetimes, which checks the authorize endpoint makes, redirect
//!   encoding and denial parameters, grant types and methods, when a
//!   refresh token comes, answer and error shapes, faults) is each
//!   provider's `Quirks` value in its `oauth.rs`. Trello's OAuth 1.0a is a
//!   different protocol and lives in `providers/trello/oauth1.rs`.
//! - `state` is the in-memory world behind one lock (sites, provider
//!   state, faults, scheduled changes), `fault` the fault queue, `content`
//!   the changes editors make, `control` the `/_sim/` routes, `config` the
//!   seeding configuration, and `html` the consent and error pages.
//!
//! What it does not do: TLS (real application passwords need HTTPS;
//! connectors accept the simulator's `http://` only when told to), writes,
//! or any route the connectors do not use.
//!
//! Start from [`Sim::start`], [`Config`], [`SiteConfig`], [`GoogleConfig`],
//! [`TrelloConfig`], [`MetaConfig`], [`LinkedInConfig`], [`SimHandle`] and
//! [`Fault`].
//!
//! ```no_run
//! use fleet_sim::{Config, Fault, Sim, SiteConfig, UserConfig};
//!
//! # async fn demo() -> Result<(), fleet_sim::Error> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let site = SiteConfig::new("acme")
//!     .user(UserConfig::administrator("bob", "abcd efgh ijkl mnop qrst uvwx"))
//!     .posts(250)
//!     .fluentcrm(230, 4);
//! let sim = Sim::start(listener, &Config::default().site(site))?;
//! sim.inject_site("acme", Fault::RateLimited { retry_after_secs: 1 }, 1);
//! println!("WordPress at {}", sim.site_url("acme"));
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod config;
mod content;
mod control;
mod fault;
mod html;
mod lago;
mod oauth;
mod providers;
mod state;

use std::{io, net::Ipv4Addr, sync::Arc};

use chrono::{DateTime, NaiveDateTime, Utc};

use axum::{
    Router,
    routing::{any, get},
};
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};

pub use config::{AcmeClientAuth, AcmeConfig};
pub use config::{
    Config, FluentCrmConfig, GoogleConfig, GoogleUserConfig, Role, SiteConfig, UserConfig,
};
pub use config::{LinkedInConfig, LinkedInUserConfig, MetaConfig, MetaUserConfig};
pub use config::{TrelloBoardConfig, TrelloConfig, TrelloMemberConfig};
pub use content::{Collection, SiteChange, TrelloChange};
pub use fault::Fault;
pub use lago::API_KEY as LAGO_API_KEY;
pub use oauth::TokenRequest;
pub use providers::keyed::{
    KEYED_API_KEY, KEYED_API_TOKEN, KEYED_CLIENT_ID, KEYED_CLIENT_SECRET, KEYED_PASSWORD,
    KEYED_SIGNING_KEY, KEYED_USERNAME, KEYED_VERSION,
};
pub use providers::trello::TrelloToken;

use oauth::Provider;
use providers::{acme, fluentcrm, google, keyed, linkedin, meta, trello, wordpress};

use state::State;

/// Why the simulator could not start or take a site.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listener's address could not be read.
    #[error("failed to read the simulator's listening address")]
    Listener(#[from] io::Error),
    /// A site name is not a single URL path segment.
    #[error("site name '{name}' must be 1 to 64 letters, digits, '-' or '_'")]
    SiteName {
        /// The rejected name.
        name: String,
    },
}

/// The simulator; [`Sim::start`] runs one.
#[derive(Debug)]
pub struct Sim;

impl Sim {
    /// Seeds the sites of `config` and serves them on `listener` in a
    /// spawned task, until the last clone of the returned handle is dropped.
    ///
    /// Bind the listener to port 0 for a free port; [`SimHandle::base_url`]
    /// says which one it got.
    ///
    /// # Errors
    ///
    /// [`Error::Listener`] when the listener has no address,
    /// [`Error::SiteName`] for a site name that is not a path segment.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn start(listener: TcpListener, config: &Config) -> Result<SimHandle, Error> {
        let mut address = listener.local_addr()?;
        if address.ip().is_unspecified() {
            address.set_ip(Ipv4Addr::LOCALHOST.into());
        }
        let state = Arc::new(State::new(
            format!("http://{address}"),
            &config.google,
            &config.trello,
            &config.meta,
            &config.linkedin,
            &config.acme,
        ));
        for site in &config.sites {
            state.add_site(site)?;
        }
        let stop = CancellationToken::new();
        // Acme's tenants are also served by host name, which must be read
        // before the routes are: around the router, not inside it.
        let app = Router::new()
            .fallback_service(router(Arc::clone(&state)))
            .layer(axum::middleware::map_request(acme::by_host));
        let server =
            axum::serve(listener, app).with_graceful_shutdown(stop.clone().cancelled_owned());
        tokio::spawn(async move {
            if let Err(error) = server.await {
                tracing::error!(error.message = %error, "The provider simulator stopped serving.");
            }
        });
        let clients = Clients {
            google: config.google.client_id.clone(),
            meta: config.meta.app_id.clone(),
            linkedin: config.linkedin.client_id.clone(),
            trello: config.trello.consumer_key.clone(),
            acme: config.acme.client_id.clone(),
        };
        Ok(SimHandle {
            inner: Arc::new(Inner {
                state,
                clients,
                _stop: stop.drop_guard(),
            }),
        })
    }
}

fn router(state: Arc<State>) -> Router {
    let site = "/sites/{site}/wp-json";
    Router::new()
        .route("/sites/{site}/", get(wordpress::front))
        .route("/sites/{site}/wp-json", get(wordpress::index))
        .route("/sites/{site}/wp-json/", get(wordpress::index))
        .route(&format!("{site}/wp/v2/users/me"), get(wordpress::me))
        .route(
            &format!("{site}/wp/v2/{{collection}}"),
            get(wordpress::collection),
        )
        .route(
            &format!("{site}/fluent-crm/v2/subscribers"),
            get(fluentcrm::subscribers),
        )
        .route(
            &format!("{site}/fluent-crm/v2/lists"),
            get(fluentcrm::lists),
        )
        .route(&format!("{site}/{{*route}}"), any(wordpress::no_route))
        .nest("/google", google::router())
        .nest("/meta", meta::router())
        .nest("/linkedin", linkedin::router())
        .nest("/acme/{tenant}", acme::router(Arc::clone(&state)))
        .nest("/keyed", keyed::router())
        .nest(trello::PREFIX, trello::router())
        .merge(control::router())
        .merge(lago::router())
        .with_state(state)
}

/// Controls a running simulator. Cheap to clone; the server stops when the
/// last clone is dropped.
#[derive(Debug, Clone)]
pub struct SimHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: Arc<State>,
    clients: Clients,
    /// Stops the server when the last handle goes.
    _stop: DropGuard,
}

/// The OAuth client ids the simulated providers accept.
#[derive(Debug)]
struct Clients {
    google: String,
    meta: String,
    linkedin: String,
    trello: String,
    acme: String,
}

impl SimHandle {
    /// Catalog override files (`<catalog id>.toml` contents, by id) that
    /// point Google Analytics, Meta, LinkedIn and Trello at this simulator,
    /// with the client id each accepts. Give them to the connectors'
    /// `catalog_dir` with the matching client secrets; see
    /// [`write_catalog`](Self::write_catalog).
    pub fn catalog_overrides(&self) -> [(&'static str, String); 4] {
        let clients = &self.inner.clients;
        let google = self.google_url();
        let graph = format!("{}/v22.0", self.meta_url());
        let linkedin = self.linkedin_url();
        let trello = self.trello_url();
        [
            (
                "google-analytics",
                format!(
                    "[api_base_urls]\nadmin = \"{google}/analyticsadmin\"\ndata = \"{google}/analyticsdata\"\n\
                     [oauth2]\nauthorize_url = \"{google}/o/oauth2/v2/auth\"\ntoken_url = \"{google}/token\"\n\
                     revoke_url = \"{google}/revoke\"\nuserinfo_url = \"{google}/v1/userinfo\"\n\
                     client_id = \"{}\"\n",
                    clients.google
                ),
            ),
            (
                "meta",
                format!(
                    "[api_base_urls]\ngraph = \"{graph}\"\n\
                     [oauth2]\nauthorize_url = \"{graph}/dialog/oauth\"\ntoken_url = \"{graph}/oauth/access_token\"\n\
                     userinfo_url = \"{graph}/me\"\nclient_id = \"{}\"\n",
                    clients.meta
                ),
            ),
            (
                "linkedin",
                format!(
                    "[api_base_urls]\napi = \"{linkedin}\"\n\
                     [oauth2]\nauthorize_url = \"{linkedin}/oauth/v2/authorization\"\n\
                     token_url = \"{linkedin}/oauth/v2/accessToken\"\nuserinfo_url = \"{linkedin}/v2/userinfo\"\n\
                     client_id = \"{}\"\n",
                    clients.linkedin
                ),
            ),
            (
                "trello",
                format!(
                    "[api_base_urls]\napi = \"{trello}/1\"\n\
                     [oauth1]\nrequest_token_url = \"{trello}/1/OAuthGetRequestToken\"\n\
                     authorize_url = \"{trello}/1/OAuthAuthorizeToken\"\n\
                     access_token_url = \"{trello}/1/OAuthGetAccessToken\"\n\
                     revoke_url = \"{trello}/1/tokens/{{token}}\"\nclient_id = \"{}\"\n",
                    clients.trello
                ),
            ),
        ]
    }

    /// The catalog file of `acme`, a provider the catalog does not have:
    /// Acme's tenant as the setting `tenant`, in every URL; HTTP Basic
    /// client authentication; the `instance_url` of token answers kept
    /// and used to reach the API (`{instance_url}/userinfo`), held by a
    /// pattern to this simulator's Acme. Its client id is the one Acme
    /// accepts; give it the client secret of the [`AcmeConfig`].
    pub fn acme_catalog_entry(&self) -> String {
        let acme = self.acme_url("{tenant}");
        let instance = format!("{}/acme/", self.base_url()).replace('.', "\\\\.");
        format!(
            "display_name = \"Acme\"\nauth = \"oauth2\"\n\
             docs_url = \"https://developer.acme.example/oauth\"\n\
             default_sync_interval_secs = 3600\n\n\
             [[settings]]\nname = \"tenant\"\nlabel = \"Acme tenant\"\n\
             help = \"The name before .acme.example in your Acme address: lowercase letters, digits and -\"\n\
             example = \"demo\"\npattern = \"[a-z0-9][a-z0-9-]{{0,30}}\"\n\n\
             [oauth2]\nauthorize_url = \"{acme}/oauth/authorize\"\ntoken_url = \"{acme}/oauth/token\"\n\
             revoke_url = \"{acme}/oauth/revoke\"\nuserinfo_url = \"{{instance_url}}/userinfo\"\n\
             client_auth = \"client_secret_basic\"\nscopes = [\"read\"]\npkce = true\n\
             client_id = \"{client}\"\n\n\
             [[oauth2.token_values]]\nname = \"instance_url\"\n\
             pattern = \"{instance}[a-z0-9-]+/api\"\nrequired = true\n",
            client = self.inner.clients.acme,
        )
    }

    /// Writes [`catalog_overrides`](Self::catalog_overrides),
    /// [`acme_catalog_entry`](Self::acme_catalog_entry),
    /// [`keyed_catalog_entry`](Self::keyed_catalog_entry),
    /// [`keyed_basic_catalog_entry`](Self::keyed_basic_catalog_entry) and
    /// [`keyed_service_catalog_entry`](Self::keyed_service_catalog_entry) into `dir`
    /// (created if missing) as `<id>.toml`, each file replaced atomically
    /// so a reader never sees half of one. Trello's is written last.
    ///
    /// # Errors
    ///
    /// When the directory or a file cannot be written.
    pub fn write_catalog(&self, dir: &std::path::Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let acme = ("acme", self.acme_catalog_entry());
        let keyed = ("keyed", self.keyed_catalog_entry());
        let basic = ("keyed-basic", self.keyed_basic_catalog_entry());
        let service = ("keyed-service", self.keyed_service_catalog_entry());
        for (id, text) in [acme, keyed, basic, service]
            .into_iter()
            .chain(self.catalog_overrides())
        {
            let partial = dir.join(format!(".{id}.toml.partial"));
            std::fs::write(&partial, text)?;
            std::fs::rename(&partial, dir.join(format!("{id}.toml")))?;
        }
        Ok(())
    }

    /// `http://host:port`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.inner.state.base_url
    }

    /// The URL of site `name`: what a connection's `site_url` is set to.
    pub fn site_url(&self, name: &str) -> String {
        format!("{}/sites/{name}", self.base_url())
    }

    /// Seeds `site` and serves it, replacing a site of the same name.
    ///
    /// # Errors
    ///
    /// [`Error::SiteName`] for a name that is not a path segment.
    pub fn add_site(&self, site: &SiteConfig) -> Result<(), Error> {
        self.inner.state.add_site(site)
    }

    /// Makes the next `times` requests to site `site` suffer `fault`.
    pub fn inject_site(&self, site: &str, fault: Fault, times: u32) {
        self.inner.state.inject(Some(site), fault, times);
    }

    /// Applies `change` to `site`'s content now; returns the ids it
    /// created or changed (none for an unknown site or id).
    pub fn change_site(&self, site: &str, change: &SiteChange) -> Vec<u64> {
        self.inner.state.change_site(site, change)
    }

    /// Applies `change` to `site`'s content just before the site answers
    /// its `requests`-th request from now (1: the next one), as an editor
    /// working while a sync pages through the site.
    pub fn change_site_on_request(&self, site: &str, requests: u64, change: SiteChange) {
        self.inner
            .state
            .schedule_change(site, requests, state::Change::Site(change));
    }

    /// Applies every change scheduled with `change_*_on_request` now,
    /// whether or not its request came: so that the next sync starts from
    /// a quiet provider.
    pub fn apply_scheduled_changes(&self) {
        self.inner.state.apply_scheduled();
    }

    /// `site`'s FluentCRM contacts: their ids and `updated_at` (site-local
    /// time, as FluentCRM stores and shows it), by id. What a complete sync
    /// must store.
    pub fn subscribers(&self, site: &str) -> Vec<(u64, NaiveDateTime)> {
        self.inner.state.subscribers(site)
    }

    /// `site`'s FluentCRM lists: their ids and `updated_at` (site-local),
    /// by id.
    pub fn crm_lists(&self, site: &str) -> Vec<(u64, NaiveDateTime)> {
        self.inner.state.crm_lists(site)
    }

    /// The published items of `site`'s `collection`: their ids and
    /// modification times (UTC), by id. What a complete sync must store.
    pub fn published(&self, site: &str, collection: Collection) -> Vec<(u64, NaiveDateTime)> {
        self.inner.state.published(site, collection)
    }

    /// The base URL of the demo's Lago (`{base_url}/lago`): usage events go
    /// to `{lago_url}/api/v1/events` with [`LAGO_API_KEY`].
    pub fn lago_url(&self) -> String {
        format!("{}/lago", self.base_url())
    }

    /// The usage events the demo's Lago stored, oldest first.
    pub fn lago_events(&self) -> Vec<serde_json::Value> {
        self.inner.state.lago_events()
    }

    /// `{base_url}/google`, the root of the simulated Google: authorize at
    /// `/o/oauth2/v2/auth`, tokens at `/token`, revocation at `/revoke`,
    /// OpenID userinfo at `/v1/userinfo`, the Analytics Admin API at
    /// `/analyticsadmin` and the Data API at `/analyticsdata`.
    pub fn google_url(&self) -> String {
        format!("{}/google", self.base_url())
    }

    /// Makes the next `times` requests of Google user `user` (to the token
    /// endpoint or the APIs) suffer `fault`.
    pub fn inject_google(&self, user: &str, fault: Fault, times: u32) {
        self.inner
            .state
            .inject(Some(&Provider::Google.fault_target(user)), fault, times);
    }

    /// How many token and API requests Google user `user` has made,
    /// faulted ones included.
    pub fn google_requests(&self, user: &str) -> u64 {
        self.inner
            .state
            .requests(&Provider::Google.fault_target(user))
    }

    /// `{base_url}/trello`, the root of the simulated Trello: OAuth 1.0a at
    /// `/1/OAuthGetRequestToken`, `/1/OAuthAuthorizeToken` and
    /// `/1/OAuthGetAccessToken`, the REST API at `/1`.
    pub fn trello_url(&self) -> String {
        format!("{}{}", self.base_url(), trello::PREFIX)
    }

    /// Makes the next `times` requests of Trello member `member` (to the
    /// access-token endpoint or the REST API, once their signature is
    /// checked) suffer `fault`.
    pub fn inject_trello(&self, member: &str, fault: Fault, times: u32) {
        self.inner
            .state
            .inject(Some(&trello::fault_target(member)), fault, times);
    }

    /// How many access-token and REST requests with a valid signature
    /// Trello member `member` has made, faulted ones included.
    pub fn trello_requests(&self, member: &str) -> u64 {
        self.inner.state.requests(&trello::fault_target(member))
    }

    /// What Trello knows of access token `token` (its member, scope and
    /// expiration), or `None` for a token it never issued or forgot.
    pub fn trello_token(&self, token: &str) -> Option<TrelloToken> {
        self.inner.state.trello(|trello| trello.token(token))
    }

    /// Revokes Trello access token `token`, as the member would in their
    /// account settings. Returns `false` when it is unknown.
    pub fn revoke_trello_token(&self, token: &str) -> bool {
        self.inner.state.trello(|trello| trello.revoke(token))
    }

    /// Seeds Trello member `member` anew (new boards and cards with new
    /// ids), replacing the member of the same username, or adds them after
    /// the others. Their tokens keep working.
    pub fn set_trello_member(&self, member: &TrelloMemberConfig) {
        self.inner.state.trello(|trello| trello.set_member(member));
    }

    /// Sets how many requests one Trello token and the consumer key may
    /// make per rate-limit window.
    pub fn set_trello_limits(&self, token_limit: u32, key_limit: u32) {
        self.inner
            .state
            .trello(|trello| trello.set_limits(token_limit, key_limit));
    }

    /// Applies `change` to Trello member `member`'s boards now; returns
    /// the ids of the cards or boards it created or changed (none for an
    /// unknown member, board or card).
    pub fn change_trello(&self, member: &str, change: &TrelloChange) -> Vec<String> {
        self.inner
            .state
            .trello(|trello| trello.change(member, change))
    }

    /// Applies `change` just before Trello answers member `member`'s
    /// `requests`-th REST request from now (1: the next one), as a
    /// colleague working while a sync pages through the boards.
    pub fn change_trello_on_request(&self, member: &str, requests: u64, change: TrelloChange) {
        let change = state::Change::Trello {
            member: member.to_owned(),
            change,
        };
        self.inner
            .state
            .schedule_change(&trello::fault_target(member), requests, change);
    }

    /// Trello member `member`'s open boards: their ids and
    /// `dateLastActivity`, by id. What a complete `boards` sync stores.
    pub fn trello_boards(&self, member: &str) -> Vec<(String, DateTime<Utc>)> {
        self.inner.state.trello(|trello| trello.open_boards(member))
    }

    /// The open cards of Trello member `member`'s open boards: their ids
    /// and `dateLastActivity`, by id. What a complete `cards` sync stores.
    pub fn trello_cards(&self, member: &str) -> Vec<(String, DateTime<Utc>)> {
        self.inner.state.trello(|trello| trello.open_cards(member))
    }

    /// `{base_url}/meta`, the root of the simulated Meta: the OAuth dialog
    /// at `/{version}/dialog/oauth` and the Graph API at `/{version}`
    /// (`/oauth/access_token`, `/me`, `/me/adaccounts`,
    /// `/act_<n>/insights`), for any version such as `v22.0`.
    pub fn meta_url(&self) -> String {
        format!("{}/meta", self.base_url())
    }

    /// Makes the next `times` requests of Meta user `user` (to the token
    /// endpoint or the Graph API) suffer `fault`.
    pub fn inject_meta(&self, user: &str, fault: Fault, times: u32) {
        self.inner
            .state
            .inject(Some(&Provider::Meta.fault_target(user)), fault, times);
    }

    /// How many token and Graph requests Meta user `user` has made,
    /// faulted ones included.
    pub fn meta_requests(&self, user: &str) -> u64 {
        self.inner
            .state
            .requests(&Provider::Meta.fault_target(user))
    }

    /// `{base_url}/linkedin`, the root of the simulated LinkedIn: authorize
    /// at `/oauth/v2/authorization`, tokens at `/oauth/v2/accessToken`,
    /// OpenID userinfo at `/v2/userinfo`, the versioned API at `/rest`.
    pub fn linkedin_url(&self) -> String {
        format!("{}/linkedin", self.base_url())
    }

    /// Makes the next `times` requests of LinkedIn member `user` (to the
    /// token endpoint or the APIs) suffer `fault`.
    pub fn inject_linkedin(&self, user: &str, fault: Fault, times: u32) {
        self.inner
            .state
            .inject(Some(&Provider::LinkedIn.fault_target(user)), fault, times);
    }

    /// How many token and API requests LinkedIn member `user` has made,
    /// faulted ones included.
    pub fn linkedin_requests(&self, user: &str) -> u64 {
        self.inner
            .state
            .requests(&Provider::LinkedIn.fault_target(user))
    }

    /// Makes the next `times` requests to any site or of any Google user
    /// suffer `fault`. A site's or user's own faults come first.
    pub fn inject_global(&self, fault: Fault, times: u32) {
        self.inner.state.inject(None, fault, times);
    }

    /// Forgets every queued fault.
    pub fn clear_faults(&self) {
        self.inner.state.clear_faults();
    }

    /// Revokes every application password of `username` on `site`, as the
    /// user would in their profile. Returns `false` when there is no such
    /// site or user.
    pub fn revoke_passwords(&self, site: &str, username: &str) -> bool {
        self.inner.state.revoke_passwords(site, username)
    }

    /// How many requests site `site` has received, faulted ones included.
    pub fn requests(&self, site: &str) -> u64 {
        self.inner.state.requests(site)
    }
}
