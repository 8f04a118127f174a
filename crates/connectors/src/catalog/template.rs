//! Catalog values with per-connection parts: `{name}` stands for a
//! connection's setting (`https://{subdomain}.example.com/oauth/token`) or
//! a value kept from its token response (`{instance_url}/services/data`).
//!
//! Every value is hostile: a tenant types settings, and a token response
//! comes from wherever the token URL pointed. So a value is checked for
//! the place it takes in a URL before it is put there, and the rendered
//! URL is checked again:
//!
//! - at the start, standing for a whole address (`{instance_url}/api`), a
//!   value must be an `http`/`https` URL with a host and no user, query or
//!   fragment, and the rendered URL keeps exactly that scheme, host and
//!   port;
//! - in the host (`https://{subdomain}.example.com`), a value must be DNS
//!   labels (letters, digits, `-`, separated by `.`), and when the host
//!   goes on after it with `.` and a domain, the rendered host still ends
//!   with that domain;
//! - in the path, a value is one segment: everything but letters, digits
//!   and `-._~` is percent-encoded, so it can add no `/`, `?` or `#`, and
//!   `.` and `..` are refused;
//! - in the query, a value is percent-encoded the same way, so it can add
//!   no parameter;
//! - in the port (`https://{subdomain}.example.com:{port}/`), a value is a
//!   number from 1 to 65535.
//!
//! Where a value can still choose the host freely (at the start, or a host
//! with no fixed domain after it), the catalog requires a pattern for it
//! (see [`UrlTemplate::free_host_values`]). The egress rules apply to the
//! rendered URL as to any other.
//!
//! Errors name the value (`{subdomain}`), never what it holds.

use std::{collections::BTreeMap, fmt};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

/// Everything but RFC 3986's unreserved characters.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The longest value a template takes, in bytes.
pub(crate) const MAX_VALUE_BYTES: usize = 2048;

/// Why a template could not be rendered. Names the value, never its
/// contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The connection has no value of that name.
    #[error("the connection has no value for {{{name}}}")]
    Missing {
        /// The value's name.
        name: String,
    },
    /// The value cannot take its place in the URL.
    #[error("the value of {{{name}}} {problem}")]
    Value {
        /// The value's name.
        name: String,
        /// What is wrong with it, as the end of a sentence.
        problem: &'static str,
    },
    /// The rendered text is no URL, or its host is not the one the
    /// template allows.
    #[error("the values of {template} {problem}")]
    Url {
        /// The template, as written in the catalog.
        template: String,
        /// What is wrong, as the end of a sentence.
        problem: &'static str,
    },
}

/// Where a value stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// At the start of a URL: a whole address.
    Origin,
    /// In a URL's host.
    Host,
    /// In a URL's port, after the host and `:`.
    Port,
    /// In a URL's path: one segment or part of one.
    Path,
    /// In a URL's query.
    Query,
    /// In a parameter: as it is (the body or query encoder encodes it).
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Value { name: String, at: Position },
}

/// A parameter value that may hold `{name}` placeholders, such as
/// `audience = "https://{subdomain}.example.com/api"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    raw: String,
    parts: Vec<Part>,
}

impl Template {
    /// Parses `raw`.
    ///
    /// # Errors
    ///
    /// A reason, as the end of a sentence, for a `{` without its `}` or a
    /// name that is not a value name.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let parts = split(raw)?
            .into_iter()
            .map(|part| match part {
                Split::Literal(text) => Part::Literal(text),
                Split::Value(name) => Part::Value {
                    name,
                    at: Position::Text,
                },
            })
            .collect();
        Ok(Self {
            raw: raw.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The names of the values it uses.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        names(&self.parts)
    }

    /// The text with every placeholder replaced by its value.
    ///
    /// # Errors
    ///
    /// [`RenderError::Missing`] when `values` lacks one.
    pub fn render(&self, values: &BTreeMap<String, String>) -> Result<String, RenderError> {
        let mut rendered = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => rendered.push_str(text),
                Part::Value { name, .. } => rendered.push_str(value(values, name)?),
            }
        }
        Ok(rendered)
    }
}

impl PartialEq<&str> for Template {
    fn eq(&self, other: &&str) -> bool {
        self.raw == *other
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// A URL that may hold `{name}` placeholders in its host, path or query,
/// or one at its start standing for a whole address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTemplate {
    raw: String,
    parts: Vec<Part>,
    /// The URL, when the template has no placeholder.
    fixed: Option<Url>,
    /// The domain every rendered host ends with (`.example.com`), when the
    /// host holds values followed by one.
    host_suffix: Option<String>,
}

impl UrlTemplate {
    /// Parses `raw`: an absolute `http`/`https` URL, with placeholders
    /// where the [module documentation](self) allows them.
    ///
    /// # Errors
    ///
    /// A reason, as the end of a sentence.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let split = split(raw)?;
        if split.len() == 1
            && let Split::Literal(text) = &split[0]
        {
            let url = Url::parse(text).map_err(|e| format!("is not a URL ({e})"))?;
            check_scheme(&url)?;
            return Ok(Self {
                raw: raw.to_owned(),
                parts: vec![Part::Literal(text.clone())],
                fixed: Some(url),
                host_suffix: None,
            });
        }
        let (parts, host_suffix) = place(split)?;
        let template = Self {
            raw: raw.to_owned(),
            parts,
            fixed: None,
            host_suffix,
        };
        // A sample of every value must give a URL: the template's own
        // text is sound.
        let sample = template.substitute(|_, at| match at {
            Position::Origin => "https://sample.test".to_owned(),
            Position::Host | Position::Path | Position::Query | Position::Text => {
                "sample".to_owned()
            }
            Position::Port => "443".to_owned(),
        });
        let url = Url::parse(&sample).map_err(|e| format!("does not give a URL ({e})"))?;
        check_scheme(&url)?;
        Ok(template)
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The URL, when the template has no placeholder.
    pub fn fixed(&self) -> Option<&Url> {
        self.fixed.as_ref()
    }

    /// The names of the values it uses.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        names(&self.parts)
    }

    /// The names of the values that choose the host with nothing after
    /// them to hold it to a domain: one at the start, or one in a host
    /// that does not go on with `.` and a domain. The catalog requires a
    /// pattern for each.
    pub fn free_host_values(&self) -> Vec<&str> {
        self.parts
            .iter()
            .filter_map(|part| match part {
                Part::Value {
                    name,
                    at: Position::Origin,
                } => Some(name.as_str()),
                Part::Value {
                    name,
                    at: Position::Host,
                } if self.host_suffix.is_none() => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The names of the values that stand in the port.
    pub fn port_values(&self) -> Vec<&str> {
        self.parts
            .iter()
            .filter_map(|part| match part {
                Part::Value {
                    name,
                    at: Position::Port,
                } => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Whether `name` stands in the address (at the start, or in the
    /// host), where DNS queries and messages would carry it.
    pub fn in_address(&self, name: &str) -> bool {
        self.parts.iter().any(|part| {
            matches!(part, Part::Value { name: n, at: Position::Origin | Position::Host } if n == name)
        })
    }

    /// The URL with every placeholder replaced by its value, checked for
    /// its place (see the [module documentation](self)).
    ///
    /// # Errors
    ///
    /// [`RenderError`] for a missing value, one that cannot take its
    /// place, or a rendered URL whose host is not one the template allows.
    pub fn render(&self, values: &BTreeMap<String, String>) -> Result<Url, RenderError> {
        if let Some(url) = &self.fixed {
            return Ok(url.clone());
        }
        let mut origin = None;
        let mut problem = None;
        let rendered = self.substitute(|name, at| match placed(values, name, at) {
            Ok((text, url)) => {
                origin = origin.take().or(url);
                text
            }
            Err(error) => {
                problem.get_or_insert(error);
                String::new()
            }
        });
        if let Some(error) = problem {
            return Err(error);
        }
        let failed = |problem| RenderError::Url {
            template: self.raw.clone(),
            problem,
        };
        let url = Url::parse(&rendered).map_err(|_| failed("do not give a URL"))?;
        if let Some(origin) = origin
            && (url.scheme() != origin.scheme()
                || url.host() != origin.host()
                || url.port_or_known_default() != origin.port_or_known_default())
        {
            return Err(failed("change the host of the address they stand for"));
        }
        if let Some(suffix) = &self.host_suffix {
            let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
            if !host.ends_with(suffix.as_str()) || host.len() == suffix.len() {
                return Err(failed("give a host outside the template's domain"));
            }
        }
        Ok(url)
    }

    /// Checks `value` for each place the value `name` takes in the
    /// template, as [`render`](Self::render) checks it.
    ///
    /// # Errors
    ///
    /// [`RenderError::Value`] for the first place that refuses it.
    pub fn check_value(&self, name: &str, value: &str) -> Result<(), RenderError> {
        let values = BTreeMap::from([(name.to_owned(), value.to_owned())]);
        for part in &self.parts {
            if let Part::Value { name: ours, at } = part
                && ours == name
            {
                placed(&values, name, *at)?;
            }
        }
        Ok(())
    }

    /// [`render`](Self::render)ed, and the same URL for messages, with
    /// each value named in `hidden` replaced by a marker: `redacted` in a
    /// host, `[REDACTED]` in a path or query, `https://redacted.invalid`
    /// for a whole address. Values kept from token responses are hidden so,
    /// as they stay out of events and logs.
    ///
    /// # Errors
    ///
    /// As [`render`](Self::render), and [`RenderError::Url`] for a URL that
    /// is not https unless `allow_http`.
    pub fn render_shown(
        &self,
        values: &BTreeMap<String, String>,
        hidden: &[&str],
        allow_http: bool,
    ) -> Result<(Url, Url), RenderError> {
        let url = self.render(values)?;
        // A value standing for a whole address (a token response's
        // instance URL) must not downgrade the requests that carry tokens.
        if url.scheme() != "https" && !allow_http {
            return Err(RenderError::Url {
                template: self.raw.clone(),
                problem: "give an address that is not https",
            });
        }
        if self.fixed.is_some() || !self.names().any(|name| hidden.contains(&name)) {
            return Ok((url.clone(), url));
        }
        let shown = self.substitute(|name, at| {
            if hidden.contains(&name) {
                return match at {
                    Position::Origin => "https://redacted.invalid".to_owned(),
                    Position::Host => "redacted".to_owned(),
                    Position::Path | Position::Query | Position::Text => {
                        "%3Credacted%3E".to_owned()
                    }
                    Position::Port => "0".to_owned(),
                };
            }
            placed(values, name, at).map_or_else(|_| "redacted".to_owned(), |(text, _)| text)
        });
        let shown = Url::parse(&shown)
            .unwrap_or_else(|_| Url::parse("https://redacted.invalid/").expect("a valid URL"));
        Ok((url, shown))
    }

    /// The raw text with each value replaced by what `put` makes of it
    /// at its position.
    fn substitute(&self, mut put: impl FnMut(&str, Position) -> String) -> String {
        let mut rendered = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => rendered.push_str(text),
                Part::Value { name, at } => rendered.push_str(&put(name, *at)),
            }
        }
        rendered
    }
}

impl fmt::Display for UrlTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for UrlTemplate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(|reason| serde::de::Error::custom(format!("'{raw}' {reason}")))
    }
}

impl Serialize for UrlTemplate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

/// A JSON body whose strings may hold `{name}` placeholders, written in a
/// catalog file as a TOML table: `{ auth = { key = "{api_key}" } }`.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonTemplate {
    /// A string, rendered as one.
    Text(Template),
    /// A number or a boolean, sent as it is.
    Fixed(serde_json::Value),
    /// An array of templates.
    Array(Vec<JsonTemplate>),
    /// An object of templates.
    Object(Vec<(String, JsonTemplate)>),
}

impl JsonTemplate {
    /// Reads a TOML value; dates are refused, as JSON has none.
    fn from_toml(value: toml::Value) -> Result<Self, String> {
        Ok(match value {
            toml::Value::String(raw) => {
                Self::Text(Template::parse(&raw).map_err(|reason| format!("'{raw}' {reason}"))?)
            }
            toml::Value::Integer(n) => Self::Fixed(n.into()),
            toml::Value::Float(x) => Self::Fixed(
                serde_json::Number::from_f64(x)
                    .map(serde_json::Value::Number)
                    .ok_or("holds a number JSON cannot")?,
            ),
            toml::Value::Boolean(b) => Self::Fixed(b.into()),
            toml::Value::Datetime(_) => return Err("holds a date, which JSON has not".to_owned()),
            toml::Value::Array(items) => Self::Array(
                items
                    .into_iter()
                    .map(Self::from_toml)
                    .collect::<Result<_, _>>()?,
            ),
            toml::Value::Table(table) => Self::Object(
                table
                    .into_iter()
                    .map(|(key, value)| Ok((key, Self::from_toml(value)?)))
                    .collect::<Result<_, String>>()?,
            ),
        })
    }

    /// The names of the values its strings use.
    pub fn names(&self) -> Vec<&str> {
        match self {
            Self::Text(template) => template.names().collect(),
            Self::Fixed(_) => Vec::new(),
            Self::Array(items) => items.iter().flat_map(Self::names).collect(),
            Self::Object(fields) => fields.iter().flat_map(|(_, v)| v.names()).collect(),
        }
    }

    /// The JSON value, each placeholder replaced by its value.
    ///
    /// # Errors
    ///
    /// [`RenderError::Missing`] when `values` lacks one.
    pub fn render(
        &self,
        values: &BTreeMap<String, String>,
    ) -> Result<serde_json::Value, RenderError> {
        Ok(match self {
            Self::Text(template) => serde_json::Value::String(template.render(values)?),
            Self::Fixed(value) => value.clone(),
            Self::Array(items) => serde_json::Value::Array(
                items
                    .iter()
                    .map(|item| item.render(values))
                    .collect::<Result<_, _>>()?,
            ),
            Self::Object(fields) => serde_json::Value::Object(
                fields
                    .iter()
                    .map(|(key, value)| Ok((key.clone(), value.render(values)?)))
                    .collect::<Result<_, RenderError>>()?,
            ),
        })
    }
}

impl<'de> Deserialize<'de> for JsonTemplate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = toml::Value::deserialize(deserializer)?;
        Self::from_toml(value).map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(|reason| serde::de::Error::custom(format!("'{raw}' {reason}")))
    }
}

impl Serialize for Template {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

/// Whether `name` can name a value: ASCII letters, digits and `_`, in
/// parts joined by `.` (a path into a token response, `team.id`).
pub(crate) fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

enum Split {
    Literal(String),
    Value(String),
}

/// `raw` cut into literal text and placeholders.
fn split(raw: &str) -> Result<Vec<Split>, String> {
    let mut parts = Vec::new();
    let mut rest = raw;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err("has a '}' without its '{'".to_owned());
        }
        if open > 0 {
            parts.push(Split::Literal(rest[..open].to_owned()));
        }
        let Some(close) = rest[open..].find('}') else {
            return Err("has a '{' without its '}'".to_owned());
        };
        let name = &rest[open + 1..open + close];
        if !is_name(name) {
            return Err(format!(
                "has '{{{name}}}', which is no value name (letters, digits and '_', parts joined \
                 by '.')"
            ));
        }
        parts.push(Split::Value(name.to_owned()));
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        parts.push(Split::Literal(rest.to_owned()));
    }
    Ok(parts)
}

/// Where each placeholder of a URL template stands, and the domain that
/// follows the host's last one.
fn place(split: Vec<Split>) -> Result<(Vec<Part>, Option<String>), String> {
    #[derive(PartialEq)]
    enum State {
        Scheme,
        Authority,
        Path,
        Query,
        Fragment,
    }
    let mut state = State::Scheme;
    let mut parts = Vec::new();
    let mut host_tail: Option<String> = None;
    // Past the `:` that ends the host (outside an IPv6 literal's
    // brackets): a value there is the port.
    let mut in_port = false;
    let mut in_brackets = false;
    let count = split.len();
    for (index, part) in split.into_iter().enumerate() {
        match part {
            Split::Literal(text) => {
                let mut rest = text.as_str();
                if state == State::Scheme {
                    let Some(at) = rest.find("://") else {
                        return Err("is not an absolute URL (scheme://host/...)".to_owned());
                    };
                    rest = &rest[at + 3..];
                    state = State::Authority;
                }
                for c in rest.chars() {
                    state = match (&state, c) {
                        (State::Authority, '/') => State::Path,
                        (State::Authority | State::Path, '?') => State::Query,
                        (State::Authority | State::Path | State::Query, '#') => State::Fragment,
                        _ => {
                            if state == State::Authority {
                                if c == '@' {
                                    return Err("holds a user name or password before its host, \
                                                which a template cannot"
                                        .to_owned());
                                }
                                in_brackets = match c {
                                    '[' => true,
                                    ']' => false,
                                    _ => in_brackets,
                                };
                                in_port |= c == ':' && !in_brackets;
                                if let Some(tail) = &mut host_tail {
                                    tail.push(c);
                                }
                            }
                            continue;
                        }
                    };
                }
                parts.push(Part::Literal(text));
            }
            Split::Value(name) => {
                let at = match state {
                    State::Scheme if index == 0 && count > 1 => Position::Origin,
                    State::Scheme if index == 0 => {
                        return Err(
                            "is only a value: write at least the path after it, such as \
                             '{instance_url}/'"
                                .to_owned(),
                        );
                    }
                    State::Authority if in_port => Position::Port,
                    State::Authority => {
                        host_tail = Some(String::new());
                        Position::Host
                    }
                    State::Path => Position::Path,
                    State::Query => Position::Query,
                    State::Scheme | State::Fragment => {
                        return Err(format!(
                            "has '{{{name}}}' where a value cannot stand: a value stands for a \
                             whole address at the start, or in the host, path or query"
                        ));
                    }
                };
                if at == Position::Origin {
                    // What follows a whole address is its path or query.
                    state = State::Path;
                }
                parts.push(Part::Value { name, at });
            }
        }
    }
    if let Some(Part::Literal(text)) = parts.get(1)
        && matches!(
            parts.first(),
            Some(Part::Value {
                at: Position::Origin,
                ..
            })
        )
        && !text.starts_with(['/', '?'])
    {
        return Err(
            "has text right after the address a value stands for; start it with '/'".to_owned(),
        );
    }
    // The domain after the host's last value holds it only from a label
    // boundary on: `{a}.example.com`, not `{a}example.com`.
    let suffix = host_tail.and_then(|tail| {
        let host = tail
            .rsplit_once(':')
            .map_or(tail.as_str(), |(host, _)| host);
        let host = host.to_ascii_lowercase();
        (host.starts_with('.') && host.len() > 1 && !host.ends_with('.')).then_some(host)
    });
    Ok((parts, suffix))
}

fn check_scheme(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "https" | "http" if url.host().is_some() => Ok(()),
        "https" | "http" => Err("has no host".to_owned()),
        other => Err(format!("uses {other}:, not https: or http:")),
    }
}

fn names(parts: &[Part]) -> impl Iterator<Item = &str> {
    parts.iter().filter_map(|part| match part {
        Part::Value { name, .. } => Some(name.as_str()),
        Part::Literal(_) => None,
    })
}

fn value<'a>(values: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str, RenderError> {
    let value = values
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| RenderError::Missing {
            name: name.to_owned(),
        })?;
    if value.len() > MAX_VALUE_BYTES {
        return Err(RenderError::Value {
            name: name.to_owned(),
            problem: "is too long",
        });
    }
    Ok(value)
}

/// The text `name`'s value becomes at `at`, with the address it stands
/// for at the start of a URL.
fn placed(
    values: &BTreeMap<String, String>,
    name: &str,
    at: Position,
) -> Result<(String, Option<Url>), RenderError> {
    let value = value(values, name)?;
    let refused = |problem| RenderError::Value {
        name: name.to_owned(),
        problem,
    };
    match at {
        Position::Origin => {
            let url = Url::parse(value).map_err(|_| refused("is not an absolute URL"))?;
            if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
                return Err(refused("is not an http or https address with a host"));
            }
            if !url.username().is_empty()
                || url.password().is_some()
                || url.query().is_some()
                || url.fragment().is_some()
            {
                return Err(refused(
                    "holds a user, a query or a fragment, which an address standing for the start \
                     of a URL cannot",
                ));
            }
            let text = url.as_str().trim_end_matches('/').to_owned();
            Ok((text, Some(url)))
        }
        Position::Host => {
            if !is_dns_name(value) {
                return Err(refused(
                    "is not a host name part (letters, digits and '-', in labels joined by '.')",
                ));
            }
            Ok((value.to_owned(), None))
        }
        Position::Path => {
            if value.is_empty() || value == "." || value == ".." {
                return Err(refused(
                    "is empty, '.' or '..', which a path segment cannot be",
                ));
            }
            Ok((utf8_percent_encode(value, COMPONENT).to_string(), None))
        }
        Position::Query => Ok((utf8_percent_encode(value, COMPONENT).to_string(), None)),
        Position::Port => match value.parse::<u16>() {
            Ok(port) if port > 0 && value.bytes().all(|b| b.is_ascii_digit()) => {
                Ok((port.to_string(), None))
            }
            _ => Err(refused("is not a port number (1 to 65535)")),
        },
        Position::Text => Ok((value.to_owned(), None)),
    }
}

/// DNS labels: 1 to 63 letters, digits and `-` (not at either end),
/// joined by `.`, 253 bytes at most.
fn is_dns_name(value: &str) -> bool {
    value.len() <= 253
        && value.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn render(template: &str, pairs: &[(&str, &str)]) -> Result<String, RenderError> {
        UrlTemplate::parse(template)
            .unwrap()
            .render(&values(pairs))
            .map(String::from)
    }

    #[test]
    fn a_subdomain_goes_into_the_host_and_stays_under_its_domain() {
        assert_eq!(
            render(
                "https://{subdomain}.example.com/oauth/token",
                &[("subdomain", "acme")]
            )
            .unwrap(),
            "https://acme.example.com/oauth/token"
        );
        assert_eq!(
            render(
                "https://{subdomain}.example.com/t",
                &[("subdomain", "eu.acme")]
            )
            .unwrap(),
            "https://eu.acme.example.com/t"
        );
    }

    #[test]
    fn a_port_value_is_a_port_number_and_keeps_the_host() {
        let template = "https://{subdomain}.unipile.com:{port}/api/v1/accounts";
        assert_eq!(
            render(template, &[("subdomain", "api1"), ("port", "13113")]).unwrap(),
            "https://api1.unipile.com:13113/api/v1/accounts"
        );
        let parsed = UrlTemplate::parse(template).unwrap();
        assert!(parsed.free_host_values().is_empty(), "the domain holds it");
        assert!(!parsed.in_address("port"));
        assert!(
            UrlTemplate::parse("https://u:p@8.8.{h}/").is_err(),
            "no user info"
        );
        assert!(UrlTemplate::parse("https://u:{key}@api.example.com/").is_err());
        let ipv6 = UrlTemplate::parse("https://[2001:db8::1]:{port}/x").unwrap();
        assert_eq!(ipv6.port_values(), ["port"]);
        for hostile in ["0", "65536", "80/evil", "80@evil.test", "", "+443", "x"] {
            let error = render(template, &[("subdomain", "api1"), ("port", hostile)]).unwrap_err();
            assert!(
                matches!(&error, RenderError::Value { name, .. } if name == "port"),
                "{hostile:?}: {error:?}"
            );
        }
    }

    #[test]
    fn hostile_host_values_are_refused() {
        let template = "https://{subdomain}.example.com/oauth/token";
        for hostile in [
            "evil.test/",
            "evil.test#",
            "evil.test?",
            "evil.test:443",
            "user@evil.test",
            "evil.test\\",
            "evil%2etest",
            "",
            "a..b",
            "-a",
            "évil",
            "127.0.0.1/",
            "a b",
        ] {
            let error = render(template, &[("subdomain", hostile)]).unwrap_err();
            assert!(
                matches!(error, RenderError::Value { .. }),
                "{hostile:?}: {error:?}"
            );
            assert!(!error.to_string().contains(hostile) || hostile.is_empty());
        }
    }

    #[test]
    fn path_and_query_values_cannot_add_segments_or_parameters() {
        assert_eq!(
            render(
                "https://api.example.com/tenants/{tenant}/x?region={region}",
                &[("tenant", "a/../b?c#d"), ("region", "eu&admin=1")]
            )
            .unwrap(),
            "https://api.example.com/tenants/a%2F..%2Fb%3Fc%23d/x?region=eu%26admin%3D1"
        );
        for hostile in ["..", ".", ""] {
            assert!(render("https://api.example.com/{t}/x", &[("t", hostile)]).is_err());
        }
        assert_eq!(
            render("https://api.example.com/{t}/x", &[("t", "%2e%2e")]).unwrap(),
            "https://api.example.com/%252e%252e/x"
        );
    }

    #[test]
    fn an_address_value_keeps_its_host() {
        let template = "{instance_url}/services/data";
        assert_eq!(
            render(template, &[("instance_url", "https://na1.salesforce.com/")]).unwrap(),
            "https://na1.salesforce.com/services/data"
        );
        for hostile in [
            "https://na1.salesforce.com@evil.test",
            "https://na1.salesforce.com?x=",
            "https://na1.salesforce.com#",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "na1.salesforce.com",
        ] {
            assert!(
                render(template, &[("instance_url", hostile)]).is_err(),
                "{hostile}"
            );
        }
    }

    #[test]
    fn a_host_without_a_fixed_domain_after_its_value_is_free() {
        let free = UrlTemplate::parse("https://{shop}/admin").unwrap();
        let glued = UrlTemplate::parse("https://{shop}example.com/admin").unwrap();
        let held = UrlTemplate::parse("https://{shop}.myshopify.com:8443/admin").unwrap();
        let start = UrlTemplate::parse("{instance_url}/api").unwrap();

        assert_eq!(free.free_host_values(), ["shop"]);
        assert_eq!(glued.free_host_values(), ["shop"]);
        assert!(held.free_host_values().is_empty());
        assert_eq!(start.free_host_values(), ["instance_url"]);
        assert_eq!(
            held.render(&values(&[("shop", "acme")])).unwrap().as_str(),
            "https://acme.myshopify.com:8443/admin"
        );
    }

    #[test]
    fn bad_templates_are_refused_with_a_reason() {
        for (template, reason) in [
            ("https://x.test/{a", "without its '}'"),
            ("https://x.test/a}", "without its '{'"),
            ("https://x.test/{a b}", "no value name"),
            ("/relative/{a}", "not an absolute URL"),
            ("https://x.test/#{a}", "cannot stand"),
            ("ht{a}tps://x.test/", "not an absolute URL"),
            ("{a}", "only a value"),
            ("{a}x.test", "right after the address"),
            ("ftp://{a}.x.test/", "uses ftp:"),
        ] {
            let error = UrlTemplate::parse(template).unwrap_err();
            assert!(error.contains(reason), "{template}: {error}");
        }
        assert_eq!(
            UrlTemplate::parse("https://x.test/a")
                .unwrap()
                .fixed()
                .map(Url::as_str),
            Some("https://x.test/a")
        );
    }

    #[test]
    fn a_kept_address_cannot_downgrade_to_http_unless_http_is_allowed() {
        let template = UrlTemplate::parse("{instance_url}/api/me").unwrap();
        let values = values(&[("instance_url", "http://na42.crm.example")]);

        let error = template
            .render_shown(&values, &["instance_url"], false)
            .unwrap_err();
        assert!(error.to_string().contains("not https"), "{error}");
        assert!(!error.to_string().contains("na42"), "{error}");

        let (url, _) = template
            .render_shown(&values, &["instance_url"], true)
            .unwrap();
        assert_eq!(url.as_str(), "http://na42.crm.example/api/me");
    }

    #[test]
    fn the_shown_url_hides_kept_values() {
        let template = UrlTemplate::parse("{instance_url}/api/{account}/me?t={tenant}").unwrap();
        let values = values(&[
            ("instance_url", "https://na42.crm.example"),
            ("account", "acct-7"),
            ("tenant", "acme"),
        ]);

        let (url, shown) = template
            .render_shown(&values, &["instance_url", "account"], true)
            .unwrap();

        assert_eq!(
            url.as_str(),
            "https://na42.crm.example/api/acct-7/me?t=acme"
        );
        assert_eq!(
            shown.as_str(),
            "https://redacted.invalid/api/%3Credacted%3E/me?t=acme"
        );
    }

    #[test]
    fn a_missing_value_is_named() {
        let error = render("https://{a}.x.test/", &[]).unwrap_err();
        assert_eq!(error.to_string(), "the connection has no value for {a}");
    }

    /// Any text, and text made of the characters that change URLs.
    fn hostile() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![any::<String>(), "[a-zA-Z0-9./:@?#%&=\\\\ \\[\\]-]{0,24}"]
    }

    proptest::proptest! {
        #[test]
        fn no_value_moves_a_host_off_its_domain(value in hostile()) {
            if let Ok(url) = render("https://{v}.example.com/x?a=1", &[("v", &value)]) {
                let url = Url::parse(&url).unwrap();
                proptest::prop_assert!(url.host_str().unwrap().ends_with(".example.com"), "{url}");
                proptest::prop_assert_eq!(url.path(), "/x");
                proptest::prop_assert_eq!(url.query(), Some("a=1"));
                proptest::prop_assert_eq!(url.port(), None);
            }
        }

        #[test]
        fn no_value_adds_a_path_segment_or_a_parameter(path in hostile(), query in hostile()) {
            let values = [("p", path.as_str()), ("q", query.as_str())];
            if let Ok(url) = render("https://api.example.com/t/{p}/x?a={q}&b=1", &values) {
                let url = Url::parse(&url).unwrap();
                proptest::prop_assert_eq!(url.host_str(), Some("api.example.com"));
                let segments: Vec<_> = url.path_segments().unwrap().collect();
                proptest::prop_assert_eq!(segments.len(), 3, "{}", url);
                proptest::prop_assert_eq!(segments[0], "t");
                proptest::prop_assert_eq!(segments[2], "x");
                let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
                proptest::prop_assert_eq!(
                    pairs,
                    vec![("a".to_owned(), query.clone()), ("b".to_owned(), "1".to_owned())]
                );
            }
        }

        #[test]
        fn an_address_value_is_the_host_it_renders_to(value in hostile()) {
            let value = format!("https://{value}");
            if let Ok(url) = render("{v}/api?x=1", &[("v", &value)]) {
                let given = Url::parse(&value).unwrap();
                let url = Url::parse(&url).unwrap();
                proptest::prop_assert_eq!(url.host(), given.host());
                proptest::prop_assert_eq!(url.port_or_known_default(), given.port_or_known_default());
                proptest::prop_assert_eq!(url.query(), Some("x=1"));
            }
        }
    }

    #[test]
    fn parameter_templates_substitute_as_they_are() {
        let template = Template::parse("https://{subdomain}.example.com/api").unwrap();
        assert_eq!(
            template.render(&values(&[("subdomain", "a&b")])).unwrap(),
            "https://a&b.example.com/api"
        );
        assert_eq!(template.names().collect::<Vec<_>>(), ["subdomain"]);
    }
}
