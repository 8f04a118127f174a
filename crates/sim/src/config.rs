//! What the simulator serves: sites, their users and how much data to seed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The sites a simulator starts with.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Sites served from the start; more can be added through the handle.
    pub sites: Vec<SiteConfig>,
    /// Google's OAuth and Analytics endpoints, under `/google`.
    pub google: GoogleConfig,
    /// Meta's Facebook Login and Graph API endpoints, under `/meta`.
    pub meta: MetaConfig,
    /// LinkedIn's OAuth, userinfo and Community Management endpoints,
    /// under `/linkedin`.
    pub linkedin: LinkedInConfig,
    /// Trello's OAuth 1.0a and REST endpoints, under `/trello`.
    pub trello: TrelloConfig,
    /// Acme's generic OAuth 2.0 server and API, under `/acme/{tenant}`.
    pub acme: AcmeConfig,
}

impl Config {
    /// Adds `site` to the configuration.
    #[must_use]
    pub fn site(mut self, site: SiteConfig) -> Self {
        self.sites.push(site);
        self
    }

    /// Sets Google's OAuth client and users.
    #[must_use]
    pub fn google(mut self, google: GoogleConfig) -> Self {
        self.google = google;
        self
    }

    /// Sets Meta's app and users.
    #[must_use]
    pub fn meta(mut self, meta: MetaConfig) -> Self {
        self.meta = meta;
        self
    }

    /// Sets LinkedIn's app and members.
    #[must_use]
    pub fn linkedin(mut self, linkedin: LinkedInConfig) -> Self {
        self.linkedin = linkedin;
        self
    }

    /// Sets Trello's consumer and members.
    #[must_use]
    pub fn trello(mut self, trello: TrelloConfig) -> Self {
        self.trello = trello;
        self
    }

    /// Sets Acme's app, tenant and users.
    #[must_use]
    pub fn acme(mut self, acme: AcmeConfig) -> Self {
        self.acme = acme;
        self
    }
}

/// The simulated Acme: a standards-compliant OAuth 2.0 provider with one
/// tenant, one app, and the rules that app sets for token requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AcmeConfig {
    /// The only client id the OAuth endpoints accept.
    pub client_id: String,
    /// The client's secret (a test value, not a secret).
    pub client_secret: String,
    /// The tenant served, at `/acme/{tenant}`; other tenants answer 404.
    pub tenant: String,
    /// The users; the first signs in unless `login_hint` names another.
    pub users: Vec<String>,
    /// How the client must authenticate at the token endpoint.
    pub client_auth: AcmeClientAuth,
    /// Code exchanges and refreshes must be JSON bodies (else forms).
    pub json_bodies: bool,
    /// Parameters a code exchange must carry, with their values.
    pub token_params: BTreeMap<String, String>,
    /// Parameters a refresh must carry, with their values.
    pub refresh_params: BTreeMap<String, String>,
    /// The `account.id` of token answers.
    pub account_id: String,
    /// A refresh answers a new refresh token and the old one stops working.
    pub rotate_refresh_tokens: bool,
}

impl Default for AcmeConfig {
    fn default() -> Self {
        Self {
            client_id: "acme-client".to_owned(),
            client_secret: "acme-secret/with+special=chars".to_owned(),
            tenant: "acme".to_owned(),
            users: vec!["ada".to_owned()],
            client_auth: AcmeClientAuth::Basic,
            json_bodies: false,
            token_params: BTreeMap::new(),
            refresh_params: BTreeMap::new(),
            account_id: "acct-1".to_owned(),
            rotate_refresh_tokens: false,
        }
    }
}

/// How Acme's app requires clients to authenticate at its token
/// endpoint; it refuses the other method, and both at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AcmeClientAuth {
    /// `client_secret_basic`: an `Authorization: Basic` header.
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` parameters.
    Post,
}

/// The simulated Google: one OAuth client and its users.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct GoogleConfig {
    /// The only client id the OAuth endpoints accept.
    pub client_id: String,
    /// The client's secret (a test value, not a secret).
    pub client_secret: String,
    /// The Google users, in the order the consent page lists them; the
    /// first consents unless the authorize URL names another in
    /// `login_hint`.
    pub users: Vec<GoogleUserConfig>,
    /// Refresh responses carry a new refresh token and the old one stops
    /// working (Google itself never rotates: its refresh responses have no
    /// `refresh_token`).
    pub rotate_refresh_tokens: bool,
    /// The authorize endpoint shows an HTML consent page with an "Allow"
    /// button instead of redirecting at once (also per request with
    /// `consent=page`), for browser tests.
    pub consent_page: bool,
}

impl Default for GoogleConfig {
    fn default() -> Self {
        Self {
            client_id: "sim-client.apps.googleusercontent.com".to_owned(),
            client_secret: "sim-client-secret".to_owned(),
            users: Vec::new(),
            rotate_refresh_tokens: false,
            consent_page: false,
        }
    }
}

impl GoogleConfig {
    /// Adds a user.
    #[must_use]
    pub fn user(mut self, user: GoogleUserConfig) -> Self {
        self.users.push(user);
        self
    }
}

/// A Google user and the Analytics data they can see.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GoogleUserConfig {
    /// The login name; the e-mail address is `{name}@example.test`.
    pub name: String,
    /// Analytics accounts the user can see.
    #[serde(default)]
    pub accounts: u32,
    /// GA4 properties in each account. Every property has one row of
    /// traffic per day up to today, except the days without traffic.
    #[serde(default)]
    pub properties_per_account: u32,
    /// The reporting time zone of the user's properties, as minutes east
    /// of UTC: report dates, `today` and `NdaysAgo` are days of that zone.
    /// Real zones lie within −720 and +840; ±1440 (a whole day) is allowed
    /// so that tests see a property whose today is UTC's yesterday or
    /// tomorrow at any hour.
    #[serde(default)]
    pub utc_offset_minutes: i32,
    /// Every `no_traffic_every`th day of each property has no traffic, so
    /// reports leave it out (0: every day has traffic).
    #[serde(default)]
    pub no_traffic_every: u32,
}

impl GoogleUserConfig {
    /// A user named `name` with `accounts` Analytics accounts of
    /// `properties_per_account` properties each, in UTC, with traffic
    /// every day.
    pub fn new(name: impl Into<String>, accounts: u32, properties_per_account: u32) -> Self {
        Self {
            name: name.into(),
            accounts,
            properties_per_account,
            utc_offset_minutes: 0,
            no_traffic_every: 0,
        }
    }

    /// Puts the user's properties in the time zone `minutes` east of UTC.
    #[must_use]
    pub fn utc_offset_minutes(mut self, minutes: i32) -> Self {
        self.utc_offset_minutes = minutes;
        self
    }

    /// Leaves every `days`th day of each property without traffic.
    #[must_use]
    pub fn no_traffic_every(mut self, days: u32) -> Self {
        self.no_traffic_every = days;
        self
    }
}

/// One WordPress site, served at `{base_url}/sites/{name}`.
///
/// Its content is seeded deterministically from the counts: the same
/// configuration always gives the same ids, titles and timestamps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SiteConfig {
    /// The site's path segment: 1 to 64 of `[A-Za-z0-9_-]`.
    pub name: String,
    /// The site's timezone as minutes east of UTC (WordPress's
    /// `gmt_offset`). It shifts the site-local `date` and `modified`
    /// fields; the `*_gmt` fields stay UTC.
    #[serde(default)]
    pub utc_offset_minutes: i32,
    /// The site's users.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// Published posts to seed.
    #[serde(default)]
    pub posts: u32,
    /// Published pages to seed.
    #[serde(default)]
    pub pages: u32,
    /// FluentCRM's data; `None` means the plugin is inactive and its routes
    /// answer `rest_no_route`.
    #[serde(default)]
    pub fluentcrm: Option<FluentCrmConfig>,
    /// Plain permalinks: `/wp-json/` is not routed (it redirects to the
    /// front page), and the REST API answers at `/?rest_route=/...`, as the
    /// front page's `Link` header says.
    #[serde(default)]
    pub plain_permalinks: bool,
}

impl SiteConfig {
    /// An empty site named `name`, in UTC, without users or FluentCRM.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            utc_offset_minutes: 0,
            users: Vec::new(),
            posts: 0,
            pages: 0,
            fluentcrm: None,
            plain_permalinks: false,
        }
    }

    /// Serves the REST API only at `/?rest_route=`, as a site with plain
    /// permalinks does.
    #[must_use]
    pub fn plain_permalinks(mut self) -> Self {
        self.plain_permalinks = true;
        self
    }

    /// Adds a user.
    #[must_use]
    pub fn user(mut self, user: UserConfig) -> Self {
        self.users.push(user);
        self
    }

    /// Seeds `count` posts.
    #[must_use]
    pub fn posts(mut self, count: u32) -> Self {
        self.posts = count;
        self
    }

    /// Seeds `count` pages.
    #[must_use]
    pub fn pages(mut self, count: u32) -> Self {
        self.pages = count;
        self
    }

    /// Activates FluentCRM with `subscribers` contacts and `lists` lists.
    #[must_use]
    pub fn fluentcrm(mut self, subscribers: u32, lists: u32) -> Self {
        self.fluentcrm = Some(FluentCrmConfig { subscribers, lists });
        self
    }

    /// Sets the site's timezone, in minutes east of UTC.
    #[must_use]
    pub fn utc_offset_minutes(mut self, minutes: i32) -> Self {
        self.utc_offset_minutes = minutes;
        self
    }
}

/// A WordPress user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserConfig {
    /// The login name; the e-mail address is `{username}@example.test`.
    pub username: String,
    /// What the user may do.
    #[serde(default)]
    pub role: Role,
    /// The user's application passwords, as WordPress shows them (spaces are
    /// ignored when checking). These are test values, not secrets.
    #[serde(default)]
    pub application_passwords: Vec<String>,
}

impl UserConfig {
    /// An administrator named `username` with one application password.
    pub fn administrator(
        username: impl Into<String>,
        application_password: impl Into<String>,
    ) -> Self {
        Self {
            username: username.into(),
            role: Role::Administrator,
            application_passwords: vec![application_password.into()],
        }
    }

    /// A subscriber (may read public content, not the CRM) named
    /// `username` with one application password.
    pub fn subscriber(
        username: impl Into<String>,
        application_password: impl Into<String>,
    ) -> Self {
        Self {
            role: Role::Subscriber,
            ..Self::administrator(username, application_password)
        }
    }
}

/// A WordPress role, reduced to what the simulated routes check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// May do everything, including reading FluentCRM and `context=edit`.
    #[default]
    Administrator,
    /// May read public content and its own profile only.
    Subscriber,
}

impl Role {
    /// The role's slug, as in `roles`.
    pub(crate) fn slug(self) -> &'static str {
        match self {
            Self::Administrator => "administrator",
            Self::Subscriber => "subscriber",
        }
    }
}

/// How much FluentCRM data a site has.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct FluentCrmConfig {
    /// Contacts to seed.
    pub subscribers: u32,
    /// Lists to seed.
    pub lists: u32,
}

/// The simulated Trello: one OAuth 1.0a consumer (an API key and its
/// secret), its members, and its rate limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TrelloConfig {
    /// The only consumer key (Trello's API key) the endpoints accept.
    pub consumer_key: String,
    /// The consumer's secret (a test value, not a secret).
    pub consumer_secret: String,
    /// The members, in order; the first approves authorize requests.
    pub members: Vec<TrelloMemberConfig>,
    /// The authorize endpoint shows an HTML page with an "Allow" button
    /// instead of redirecting at once (also per request with
    /// `consent=page`), for browser tests.
    pub consent_page: bool,
    /// Requests one token may make per window (Trello: 100 per 10 s).
    pub token_limit: u32,
    /// Requests one API key may make per window (Trello: 300 per 10 s).
    pub key_limit: u32,
    /// The length of a rate-limit window, in milliseconds.
    pub limit_window_ms: u64,
}

impl Default for TrelloConfig {
    fn default() -> Self {
        Self {
            consumer_key: "5e1f0c0ffee5e1f0c0ffee5e1f0c0ffe".to_owned(),
            consumer_secret: "sim-trello-consumer-secret".to_owned(),
            members: Vec::new(),
            consent_page: false,
            token_limit: 100,
            key_limit: 300,
            limit_window_ms: 10_000,
        }
    }
}

impl TrelloConfig {
    /// Adds a member.
    #[must_use]
    pub fn member(mut self, member: TrelloMemberConfig) -> Self {
        self.members.push(member);
        self
    }
}

/// A Trello member and their boards.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrelloMemberConfig {
    /// The username; the full name is the username capitalised.
    pub username: String,
    /// The member's boards, in creation order.
    #[serde(default)]
    pub boards: Vec<TrelloBoardConfig>,
}

impl TrelloMemberConfig {
    /// A member named `username` without boards.
    pub fn new(username: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            boards: Vec::new(),
        }
    }

    /// Adds an open board with `cards` cards.
    #[must_use]
    pub fn board(mut self, cards: u32) -> Self {
        self.boards.push(TrelloBoardConfig {
            cards,
            closed: false,
        });
        self
    }

    /// Adds a closed (archived) board with `cards` cards.
    #[must_use]
    pub fn closed_board(mut self, cards: u32) -> Self {
        self.boards.push(TrelloBoardConfig {
            cards,
            closed: true,
        });
        self
    }
}

/// A Trello board.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct TrelloBoardConfig {
    /// Cards to seed, each created a minute after the previous one.
    pub cards: u32,
    /// Whether the board is closed (archived).
    #[serde(default)]
    pub closed: bool,
}

/// The simulated Meta: one app and its Facebook users.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MetaConfig {
    /// The only app id (OAuth client id) the endpoints accept.
    pub app_id: String,
    /// The app's secret (a test value, not a secret).
    pub app_secret: String,
    /// The users; the first one logs in.
    pub users: Vec<MetaUserConfig>,
    /// The OAuth dialog shows an HTML consent page with an "Allow" button
    /// instead of redirecting at once (also per request with
    /// `consent=page`), for browser tests.
    pub consent_page: bool,
    /// The app's "Require App Secret" setting: Graph calls without
    /// `appsecret_proof` are refused (an invalid proof always is).
    pub require_appsecret_proof: bool,
}

impl Default for MetaConfig {
    fn default() -> Self {
        Self {
            app_id: "100000000000001".to_owned(),
            app_secret: "sim-meta-app-secret".to_owned(),
            users: Vec::new(),
            consent_page: false,
            require_appsecret_proof: false,
        }
    }
}

impl MetaConfig {
    /// Adds a user.
    #[must_use]
    pub fn user(mut self, user: MetaUserConfig) -> Self {
        self.users.push(user);
        self
    }
}

/// A Facebook user and the ad accounts they can read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetaUserConfig {
    /// The user's name; the e-mail address is `{name}@example.test`.
    pub name: String,
    /// Ad accounts the user can read. Each delivered every day from
    /// 2024-01-01 to today, except the idle ones.
    #[serde(default)]
    pub ad_accounts: u32,
    /// How many of the last ad accounts never delivered: their insights
    /// have no rows, only (empty) pages.
    #[serde(default)]
    pub idle_ad_accounts: u32,
    /// The most days one insights request of the user's ad accounts may
    /// span: a longer one fails with code 1, "Please reduce the amount of
    /// data you're asking for" (HTTP 500). 0 makes every request fail;
    /// `None` accepts any range.
    #[serde(default)]
    pub insights_day_limit: Option<u32>,
}

impl MetaUserConfig {
    /// A user named `name` with `ad_accounts` ad accounts, all delivering.
    pub fn new(name: impl Into<String>, ad_accounts: u32) -> Self {
        Self {
            name: name.into(),
            ad_accounts,
            idle_ad_accounts: 0,
            insights_day_limit: None,
        }
    }

    /// Refuses insights requests for more than `days` days (0: all).
    #[must_use]
    pub fn insights_day_limit(mut self, days: u32) -> Self {
        self.insights_day_limit = Some(days);
        self
    }

    /// Makes the last `count` ad accounts idle.
    #[must_use]
    pub fn idle(mut self, count: u32) -> Self {
        self.idle_ad_accounts = count;
        self
    }
}

/// The simulated LinkedIn: one app and its members.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LinkedInConfig {
    /// The only client id the OAuth endpoints accept.
    pub client_id: String,
    /// The client's secret (a test value, not a secret).
    pub client_secret: String,
    /// The members; the first one signs in.
    pub users: Vec<LinkedInUserConfig>,
    /// The app is approved for programmatic refresh tokens: code exchanges
    /// also return a refresh token (365 days). LinkedIn approves few apps,
    /// so the default is no.
    pub refresh_tokens: bool,
    /// The authorize endpoint shows an HTML consent page with an "Allow"
    /// button instead of redirecting at once (also per request with
    /// `consent=page`), for browser tests.
    pub consent_page: bool,
    /// The oldest `LinkedIn-Version` (`YYYYMM`) still served; older ones
    /// are sunset and answered with 426 `NONEXISTENT_VERSION`.
    pub oldest_version: String,
    /// The newest `LinkedIn-Version` released; later ones do not exist yet
    /// (426 as well).
    pub newest_version: String,
}

impl Default for LinkedInConfig {
    fn default() -> Self {
        Self {
            client_id: "sim-linkedin-client".to_owned(),
            client_secret: "sim-linkedin-secret".to_owned(),
            users: Vec::new(),
            refresh_tokens: false,
            consent_page: false,
            oldest_version: "202511".to_owned(),
            newest_version: "202611".to_owned(),
        }
    }
}

impl LinkedInConfig {
    /// Adds a member.
    #[must_use]
    pub fn user(mut self, user: LinkedInUserConfig) -> Self {
        self.users.push(user);
        self
    }
}

/// A LinkedIn member and the organizations they administer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkedInUserConfig {
    /// The member's name; the e-mail address is `{name}@example.test`.
    pub name: String,
    /// Organizations the member administers (approved `ADMINISTRATOR`
    /// roles), each with follower gains every day.
    #[serde(default)]
    pub organizations: u32,
}

impl LinkedInUserConfig {
    /// A member named `name` administering `organizations` organizations.
    pub fn new(name: impl Into<String>, organizations: u32) -> Self {
        Self {
            name: name.into(),
            organizations,
        }
    }
}
