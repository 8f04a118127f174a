//! What WordPress and FluentCRM share: a site reached through the WordPress
//! REST API with an application password, and WordPress's error bodies.

use std::sync::OnceLock;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use fleet_events::ConnectorId;
use reqwest::{StatusCode, Url, header::LINK};
use secrecy::SecretString;
use serde::{
    Deserialize,
    de::{DeserializeOwned, IgnoredAny},
};
use serde_json::Value;

use crate::{
    Account, Credentials, Error,
    http::{Classify, Failure, Http, Reply},
    text,
};

/// The REST namespaces the connectors call.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Api {
    /// WordPress core, `wp/v2`.
    WordPress,
    /// The FluentCRM plugin, `fluent-crm/v2`.
    FluentCrm,
    /// The REST API's index (`/wp-json/` itself): the site's name and
    /// timezone.
    Index,
}

impl Api {
    fn name(self) -> &'static str {
        match self {
            Self::WordPress | Self::Index => "WordPress",
            Self::FluentCrm => "FluentCRM",
        }
    }

    fn namespace(self) -> &'static str {
        match self {
            Self::WordPress => "wp/v2",
            Self::FluentCrm => "fluent-crm/v2",
            Self::Index => "",
        }
    }
}

/// A WordPress site and the application password to call it with.
pub(crate) struct Site<'a> {
    /// The site URL with a trailing `/`, so routes join below it.
    base: Url,
    /// The `?rest_route=` form of the API root, once the site said (in its
    /// front page's `Link: <...>; rel="https://api.w.org/"`) that
    /// `/wp-json/` is not routed: sites with plain permalinks.
    query_root: OnceLock<Url>,
    /// The site URL as shown in messages and used as the account id.
    display: String,
    username: &'a str,
    password: &'a SecretString,
}

impl<'a> Site<'a> {
    /// Reads application-password credentials and checks the site URL:
    /// `https` (or `http` when allowed), a host, no user info, query or
    /// fragment.
    pub(crate) fn new(
        connector: &ConnectorId,
        credentials: &'a Credentials,
        allow_http: bool,
    ) -> Result<Self, Error> {
        let Credentials::AppPassword {
            site_url,
            username,
            password,
        } = credentials
        else {
            return Err(Error::CredentialsKind {
                connector: connector.clone(),
                expected: "application password",
                found: credentials.kind(),
            });
        };
        let base = parse_site_url(site_url, allow_http)?;
        let display = base.as_str().trim_end_matches('/').to_owned();
        Ok(Self {
            base,
            query_root: OnceLock::new(),
            display,
            username,
            password,
        })
    }

    /// The path of the `?rest_route=` API root, when the site uses one:
    /// for a cursor to carry, so that later pages skip the discovery.
    pub(crate) fn query_root_path(&self) -> Option<String> {
        self.query_root.get().map(|root| root.path().to_owned())
    }

    /// Uses the `?rest_route=` API root at `path` (from
    /// [`query_root_path`](Self::query_root_path)) on this site.
    pub(crate) fn use_query_root(&self, path: &str) {
        let mut root = self.base.clone();
        root.set_path(path);
        let _ = self.query_root.set(root);
    }

    /// Asks `users/me` who the credentials belong to. Every authenticated
    /// route checks the application password, so this is the cheapest
    /// call that proves it.
    pub(crate) async fn account(&self, http: &Http) -> Result<Account, Error> {
        #[derive(Deserialize)]
        struct Me {
            #[serde(default)]
            username: Option<String>,
            name: String,
        }

        let me: Me = self
            .get(
                http,
                Api::WordPress,
                "users/me",
                &[("context", "edit".to_owned())],
            )
            .await?
            .body;
        let user = me.username.unwrap_or(me.name);
        let host = self
            .display
            .split_once("://")
            .map_or(&*self.display, |(_, rest)| rest);
        Ok(Account::new(&self.display, &format!("{user} on {host}")))
    }

    /// The site's offset from UTC, from the `gmt_offset` (hours, written as
    /// a number or a string) of the REST API's index, with the bytes read:
    /// what turns UTC into the site-local times plugins such as FluentCRM
    /// store.
    pub(crate) async fn utc_offset(&self, http: &Http) -> Result<(TimeDelta, u64), Error> {
        #[derive(Deserialize)]
        struct Index {
            #[serde(default)]
            gmt_offset: Value,
        }

        let reply: Reply<Index> = self.get(http, Api::Index, "", &[]).await?;
        let hours = match &reply.body.gmt_offset {
            Value::Number(hours) => hours.as_f64(),
            Value::String(hours) if hours.trim().is_empty() => Some(0.0),
            Value::String(hours) => hours.trim().parse().ok(),
            _ => None,
        };
        // Real offsets lie within -12 and +14 hours; anything else is not
        // an offset, and UTC is the best guess.
        let minutes = hours
            .filter(|hours| (-14.0..=14.0).contains(hours))
            .map_or(0, |hours| (hours * 60.0).round() as i64);
        Ok((TimeDelta::minutes(minutes), reply.bytes))
    }

    /// GETs `route` of `api` with `query`, retrying transient failures,
    /// and decodes the JSON body.
    ///
    /// When `/wp-json/` is not routed (the answer is a redirect or a page
    /// that is not WordPress's), it asks the front page for the API root
    /// and, if that is the `?rest_route=` form, asks again there.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        http: &Http,
        api: Api,
        route: &str,
        query: &[(&str, String)],
    ) -> Result<Reply<T>, Error> {
        let first = self.call(http, api, route, query).await;
        match first {
            Err(Error::Redirected { .. } | Error::NotWordPress { .. })
                if self.query_root.get().is_none() && self.discover(http).await =>
            {
                self.call(http, api, route, query).await
            }
            other => other,
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        http: &Http,
        api: Api,
        route: &str,
        query: &[(&str, String)],
    ) -> Result<Reply<T>, Error> {
        let mut url = self.route(api, route);
        url.query_pairs_mut().extend_pairs(query);
        let answers = Answers { site: self, api };
        let request = || {
            let request = http.get(url.clone());
            Ok(request.basic_auth(self.username, self.password))
        };
        http.fetch(&answers, &url, request).await
    }

    fn route(&self, api: Api, route: &str) -> Url {
        let path = match api.namespace() {
            "" => route.to_owned(),
            namespace => format!("{namespace}/{route}"),
        };
        if let Some(root) = self.query_root.get() {
            let mut url = root.clone();
            url.query_pairs_mut()
                .clear()
                .append_pair("rest_route", &format!("/{path}"));
            return url;
        }
        self.base
            .join(&format!("wp-json/{path}"))
            .expect("a relative path joins any http(s) base URL")
    }

    /// Reads the API root from the front page's `Link` header; `true` when
    /// it is a `?rest_route=` root on this site's origin, which later calls
    /// then use. The front page is asked without credentials, and a root
    /// on another origin is ignored: credentials never leave the site.
    async fn discover(&self, http: &Http) -> bool {
        let Ok(response) = http.get(self.base.clone()).send("WordPress").await else {
            return false;
        };
        let root = response
            .headers()
            .get_all(LINK)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .find_map(api_root_link)
            .and_then(|link| self.base.join(link.trim()).ok());
        let Some(root) = root else {
            return false;
        };
        let same_origin = root.origin() == self.base.origin();
        let query_form = root.query_pairs().any(|(key, _)| key == "rest_route");
        if !(same_origin && query_form) {
            return false;
        }
        tracing::info!(
            site = %self.display,
            "The site has no /wp-json/ route; using its ?rest_route= API root."
        );
        self.use_query_root(root.path());
        true
    }

    /// Maps a failed response to an [`Error`] by WordPress's error `code`
    /// (every REST error body is `{"code", "message", "data": {"status"}}`,
    /// FluentCRM's included).
    fn error(&self, api: Api, failure: &Failure<'_>) -> Error {
        let Failure {
            provider,
            url,
            status,
            body,
            ..
        } = *failure;
        let Ok(WpError { code, message }) = serde_json::from_slice::<WpError>(body) else {
            // Not WordPress's error body: a web server, proxy or firewall
            // answered, or the address is not a WordPress site.
            return self.not_wordpress(api, url);
        };
        let code = text::code(&code);
        let site = self.display.clone();
        let username = self.username.to_owned();
        match (status, code.as_str()) {
            (StatusCode::UNAUTHORIZED, "rest_not_logged_in" | "rest_forbidden") => {
                Error::AuthorizationStripped {
                    site,
                    username,
                    code,
                }
            }
            (
                StatusCode::UNAUTHORIZED,
                "application_passwords_disabled" | "application_passwords_disabled_for_user",
            ) => Error::AppPasswordsUnavailable {
                site,
                username,
                code,
            },
            (StatusCode::UNAUTHORIZED, "invalid_username" | "invalid_email") => {
                Error::AppPasswordRejected {
                    problem: format!("has no user '{username}'"),
                    remedy: "enter the user name or e-mail address the application password \
                             belongs to",
                    site,
                    username,
                    code,
                }
            }
            (StatusCode::UNAUTHORIZED, _) => Error::AppPasswordRejected {
                problem: format!("rejected the application password for user '{username}'"),
                remedy: "check it, or create a new application password and reconnect",
                site,
                username,
                code,
            },
            (StatusCode::FORBIDDEN, _) => Error::Forbidden {
                provider: provider.to_owned(),
                site,
                username,
                code,
                message: text::plain_text(&message),
            },
            (StatusCode::NOT_FOUND, _) => Error::NoRoute {
                provider: provider.to_owned(),
                site,
                route: self.route_name(url),
            },
            _ => Error::Rejected {
                provider: provider.to_owned(),
                url: crate::http::display_url(url),
                status: status.as_u16(),
                code,
                message: text::plain_text(&message),
            },
        }
    }

    /// The error for an answer that is not WordPress's: another server
    /// answered `url`, or the address is not a WordPress site.
    fn not_wordpress(&self, api: Api, url: &Url) -> Error {
        Error::NotWordPress {
            provider: api.name().to_owned(),
            site: self.display.clone(),
            route: self.route_name(url),
        }
    }
}

/// How the answers of one namespace of a site read.
struct Answers<'s, 'a> {
    site: &'s Site<'a>,
    api: Api,
}

impl Classify for Answers<'_, '_> {
    fn provider(&self) -> &str {
        self.api.name()
    }

    fn site(&self, _url: &Url) -> String {
        self.site.display.clone()
    }

    fn reject(&self, failure: &Failure<'_>) -> Error {
        self.site.error(self.api, failure)
    }

    fn undecodable(&self, url: &Url, body: &[u8], source: &serde_json::Error) -> Error {
        // JSON of another shape is WordPress answering unexpectedly; no
        // JSON at all is something else answering.
        if serde_json::from_slice::<IgnoredAny>(body).is_ok() {
            Error::invalid_response(self.api.name(), url, source)
        } else {
            self.site.not_wordpress(self.api, url)
        }
    }
}

impl Site<'_> {
    /// The route `url` asks for, for messages: `/wp-json/wp/v2/posts` or
    /// `/?rest_route=/wp/v2/posts`, without the other parameters.
    fn route_name(&self, url: &Url) -> String {
        let path = url
            .path()
            .strip_prefix(self.base.path())
            .map_or_else(|| url.path().to_owned(), |route| format!("/{route}"));
        match url.query_pairs().find(|(key, _)| key == "rest_route") {
            Some((_, route)) => format!("{path}?rest_route={route}"),
            None => path,
        }
    }
}

/// The target of a `Link` header entry whose `rel` is WordPress's API root
/// (`<https://example.com/wp-json/>; rel="https://api.w.org/"`).
fn api_root_link(entry: &str) -> Option<&str> {
    let (target, params) = entry.trim().split_once(';')?;
    let is_api = params.split(';').any(|param| {
        param
            .trim()
            .strip_prefix("rel=")
            .is_some_and(|rel| rel.trim_matches('"') == "https://api.w.org/")
    });
    let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
    is_api.then_some(target)
}

/// A WordPress REST error body.
#[derive(Deserialize)]
struct WpError {
    code: String,
    #[serde(default)]
    message: String,
}

/// Checks a site URL and returns it with a trailing `/`.
fn parse_site_url(site_url: &str, allow_http: bool) -> Result<Url, Error> {
    let fail = |url: String, problem| Err(Error::SiteUrl { url, problem });
    let Ok(mut url) = Url::parse(site_url.trim()) else {
        return fail(
            site_url.to_owned(),
            "is not a URL; write it in full, such as https://example.com",
        );
    };
    let has_user_info = !url.username().is_empty() || url.password().is_some();
    let has_extras = url.query().is_some() || url.fragment().is_some();
    // Messages show the URL without the parts that may hold a secret.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    let shown = url.as_str().to_owned();
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => {
            return fail(
                shown,
                "must use https: application passwords would travel in clear text",
            );
        }
        _ => return fail(shown, "must start with https://"),
    }
    if url.host().is_none() {
        return fail(shown, "has no host");
    }
    if has_user_info {
        return fail(shown, "must not contain a user name or password");
    }
    if has_extras {
        return fail(shown, "must not contain a query string or fragment");
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// Reads a timestamp without offset in `format` as UTC. `None` for values
/// WordPress uses as "no date" (`0000-00-00 00:00:00`) and anything else
/// unreadable: a bad date must not fail a whole page.
pub(crate) fn naive_utc(value: Option<&str>, format: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(value?, format)
        .ok()
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(site_url: &str, allow_http: bool) -> (String, &'static str) {
        match parse_site_url(site_url, allow_http) {
            Err(Error::SiteUrl { url, problem }) => (url, problem),
            other => panic!("expected a SiteUrl error for {site_url}, got {other:?}"),
        }
    }

    #[test]
    fn site_url_gets_a_trailing_slash_and_keeps_its_path() {
        let url = parse_site_url(" https://example.com/blog ", false).unwrap();

        assert_eq!(url.as_str(), "https://example.com/blog/");
        assert_eq!(
            url.join("wp-json/wp/v2/posts").unwrap().as_str(),
            "https://example.com/blog/wp-json/wp/v2/posts"
        );
    }

    #[test]
    fn http_site_url_needs_allow_http() {
        assert!(
            problem("http://example.com", false)
                .1
                .contains("must use https")
        );
        assert!(parse_site_url("http://example.com", true).is_ok());
    }

    #[test]
    fn site_url_with_user_info_is_refused_without_repeating_it() {
        let (url, problem) = problem("https://bob:hunter2@example.com/", false);

        assert_eq!(url, "https://example.com/");
        assert!(problem.contains("user name or password"));
    }

    #[test]
    fn site_url_problems_are_named() {
        assert!(problem("example.com", false).1.contains("is not a URL"));
        assert!(problem("ftp://example.com", false).1.contains("https://"));
        assert!(
            problem("https://example.com/?p=1", false)
                .1
                .contains("query")
        );
    }

    #[test]
    fn naive_utc_reads_timestamps_without_offset_as_utc() {
        let at = naive_utc(Some("2024-05-01 10:30:00"), "%Y-%m-%d %H:%M:%S").unwrap();

        assert_eq!(at.to_rfc3339(), "2024-05-01T10:30:00+00:00");
        assert_eq!(
            naive_utc(Some("0000-00-00 00:00:00"), "%Y-%m-%d %H:%M:%S"),
            None
        );
        assert_eq!(naive_utc(None, "%Y-%m-%d %H:%M:%S"), None);
    }
}
