//! What the simulator serves: sites, their users and how much data to seed.

use serde::{Deserialize, Serialize};

/// The sites a simulator starts with.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Sites served from the start; more can be added through the handle.
    pub sites: Vec<SiteConfig>,
    /// Google's OAuth and Analytics endpoints, under `/google`.
    pub google: GoogleConfig,
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
    /// traffic per day up to today.
    #[serde(default)]
    pub properties_per_account: u32,
}

impl GoogleUserConfig {
    /// A user named `name` with `accounts` Analytics accounts of
    /// `properties_per_account` properties each.
    pub fn new(name: impl Into<String>, accounts: u32, properties_per_account: u32) -> Self {
        Self {
            name: name.into(),
            accounts,
            properties_per_account,
        }
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
        }
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
