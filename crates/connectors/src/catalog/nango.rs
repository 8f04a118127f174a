//! Turns entries of Nango's provider definitions (the `providers.yaml` of
//! the npm package `@nangohq/providers`) into catalog files.
//!
//! Each entry is translated key by key into the catalog's own keys
//! (`docs/catalog.md`, "Importing Nango's provider definitions", lists the
//! mapping), and the file written is checked as start-up checks it
//! ([`CatalogEntry::from_text`]). An entry that uses something the catalog
//! cannot say is skipped with the reason, naming the Nango key or value:
//! nothing is guessed and nothing is silently dropped that changes how a
//! connection authenticates.
//!
//! The importer reads definitions; it ships none.

use std::collections::{BTreeMap, BTreeSet};

use fleet_events::ConnectorId;
use serde_json::{Map, Value};
use toml::Table;

use super::{AUTHORIZE_PARAMS, CatalogEntry, RANDOM, UrlTemplate, pattern_holds_host};

/// The largest definitions file read (the 0.71 file is about 1 MiB).
pub const MAX_INPUT_BYTES: usize = 32 * 1024 * 1024;

/// The sync interval of an imported entry: once a day.
const SYNC_INTERVAL_SECS: i64 = 86_400;

/// Keys of a Nango entry that describe neither how it authenticates nor
/// where: its docs, categories, webhooks, pagination and retry hints, and
/// scripts Nango runs around a connection.
const IGNORED: [&str; 17] = [
    "display_name",
    "categories",
    "docs",
    "docs_connect",
    "setup_guide_url",
    "alias",
    "auth_mode",
    "webhook_routing_script",
    "webhook_user_defined_secret",
    "webhook_allowed_query_params",
    "webhook_response_metadata",
    "post_connection_script",
    "pre_connection_deletion_script",
    "credentials_verification_script",
    "connection_config",
    "proxy",
    "token_expiration_buffer",
];

/// Why a definitions file could not be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NangoError {
    /// The text is not YAML.
    #[error("the definitions are not YAML")]
    Yaml(#[source] serde_norway::Error),
    /// The YAML is not a mapping of entry ids to entries.
    #[error("the definitions are not a mapping of provider ids to their definitions")]
    Shape,
    /// The text is larger than [`MAX_INPUT_BYTES`].
    #[error("the definitions are larger than {MAX_INPUT_BYTES} bytes")]
    TooLarge,
    /// `--only` named ids that the file does not have.
    #[error("no provider {} in the definitions", .0.join(", "))]
    Unknown(Vec<String>),
}

/// The outcome of an import: a file for each entry that translates, and
/// the reason for each that does not.
#[derive(Debug, Default)]
pub struct Import {
    /// Entries turned into catalog files, in id order.
    pub imported: Vec<Imported>,
    /// Entries skipped, in id order.
    pub skipped: Vec<Skipped>,
}

/// One entry turned into a catalog file.
#[derive(Debug)]
pub struct Imported {
    /// The connector id, also the file's name without `.toml`.
    pub id: ConnectorId,
    /// Nango's `auth_mode` of the entry (after following its `alias`).
    pub auth_mode: String,
    /// The catalog file's text, checked as start-up checks it.
    pub text: String,
    /// What the operator should know before using it (a Nango feature
    /// left out that does not change how it authenticates, a key to add).
    pub notes: Vec<String>,
    /// Whether a fleet starts with the file as it is. An API-key or Basic
    /// entry for which Nango declares no endpoint to validate against (or
    /// only a `POST`) is written without `verify_url`, which the operator
    /// adds; an OAuth 2.0 entry without one is checked at its token
    /// endpoint only (`token_only`), as a client-credentials entry is.
    pub ready: bool,
}

/// One entry that was not imported.
#[derive(Debug)]
pub struct Skipped {
    /// The entry's id in the definitions.
    pub id: String,
    /// Nango's `auth_mode` of the entry, or `none`.
    pub auth_mode: String,
    /// What it needs that the catalog lacks, or what the catalog refused.
    pub reason: String,
}

/// Imported and skipped entries of one auth mode.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Entries imported.
    pub imported: usize,
    /// Entries imported that can validate a connection as they are (they
    /// name an endpoint to validate against).
    pub ready: usize,
    /// Entries skipped.
    pub skipped: usize,
}

impl Import {
    /// Imported and skipped entries by Nango `auth_mode`.
    pub fn counts(&self) -> BTreeMap<String, Count> {
        let mut counts: BTreeMap<String, Count> = BTreeMap::new();
        for entry in &self.imported {
            let count = counts.entry(entry.auth_mode.clone()).or_default();
            count.imported += 1;
            if entry.ready {
                count.ready += 1;
            }
        }
        for entry in &self.skipped {
            counts.entry(entry.auth_mode.clone()).or_default().skipped += 1;
        }
        counts
    }
}

/// How the note on an OAuth 2.0 entry checked at its token endpoint only
/// starts.
const TOKEN_ONLY: &str = "token_only";

/// Translates the entries of `yaml` (all, or those in `only`).
///
/// # Errors
///
/// [`NangoError`] when the text is not a YAML mapping of entries, or
/// `only` names an id it lacks. A single entry that does not translate is
/// no error: it is in [`Import::skipped`].
pub fn import(yaml: &str, only: Option<&BTreeSet<String>>) -> Result<Import, NangoError> {
    import_with(yaml, only, None)
}

/// [`import`], with `userinfo_url` (in the catalog's syntax, settings as
/// `{name}`) as the `oauth2.userinfo_url` of OAuth 2.0 entries, and the
/// `verify_url` of API-key, Basic and client-credentials entries, for
/// which Nango declares no endpoint to validate against: what an operator
/// who imports one provider knows of it.
///
/// # Errors
///
/// As [`import`].
pub fn import_with(
    yaml: &str,
    only: Option<&BTreeSet<String>>,
    userinfo_url: Option<&str>,
) -> Result<Import, NangoError> {
    if yaml.len() > MAX_INPUT_BYTES {
        return Err(NangoError::TooLarge);
    }
    let all: Value = serde_norway::from_str(yaml).map_err(NangoError::Yaml)?;
    let Value::Object(all) = all else {
        return Err(NangoError::Shape);
    };
    if let Some(only) = only {
        let unknown: Vec<String> = only
            .iter()
            .filter(|id| !all.contains_key(*id))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(NangoError::Unknown(unknown));
        }
    }
    let mut import = Import::default();
    let mut ids: Vec<&String> = all.keys().collect();
    ids.sort();
    for name in ids {
        if only.is_some_and(|only| !only.contains(name)) {
            continue;
        }
        let entry = resolve(&all, name, 0);
        let auth_mode = entry
            .get("auth_mode")
            .and_then(Value::as_str)
            .unwrap_or("none")
            .to_owned();
        match translate(name, &entry, &auth_mode, userinfo_url) {
            Ok(imported) => import.imported.push(imported),
            Err(reason) => import.skipped.push(Skipped {
                id: name.clone(),
                auth_mode,
                reason,
            }),
        }
    }
    Ok(import)
}

/// Entry `name` with its `alias` (the entry it extends) followed: the
/// aliased entry's keys, replaced by the entry's own.
fn resolve(all: &Map<String, Value>, name: &str, depth: usize) -> Map<String, Value> {
    let Some(Value::Object(entry)) = all.get(name) else {
        return Map::new();
    };
    let Some(alias) = entry.get("alias").and_then(Value::as_str) else {
        return entry.clone();
    };
    if depth > 4 || alias == name {
        return entry.clone();
    }
    let mut base = resolve(all, alias, depth + 1);
    for (key, value) in entry {
        base.insert(key.clone(), value.clone());
    }
    base
}

/// The catalog file of one resolved entry, or why there is none. An entry
/// named like a built-in one is written as `<name>-generic`, so that it
/// does not override the built-in entry and its connector.
fn translate(
    name: &str,
    entry: &Map<String, Value>,
    auth_mode: &str,
    userinfo_url: Option<&str>,
) -> Result<Imported, String> {
    let builtin = CatalogEntry::is_builtin(name);
    let id = if builtin {
        format!("{name}-{BUILTIN_SUFFIX}")
    } else {
        name.to_owned()
    };
    let id = ConnectorId::parse(&id)
        .map_err(|_| "its id is no connector id (lowercase letters, digits and '-')".to_owned())?;
    let renamed = |mut imported: Imported| {
        if builtin {
            imported.notes.insert(
                0,
                format!(
                    "written as {id}: {name} is a built-in entry of the catalog with a connector \
                     of its own, which a file named {name}.toml would override"
                ),
            );
        }
        imported
    };
    translate_choosing(&id, entry, auth_mode, userinfo_url).map(renamed)
}

/// The id suffix of an entry imported under the id of a built-in one.
const BUILTIN_SUFFIX: &str = "generic";

/// [`translate`] of an entry under `id`. An entry whose addresses choose
/// with `||` (Nango takes the first when its settings are given, else the
/// next) is tried with the first address of each, then with the last.
fn translate_choosing(
    id: &ConnectorId,
    entry: &Map<String, Value>,
    auth_mode: &str,
    userinfo_url: Option<&str>,
) -> Result<Imported, String> {
    let first = translate_with(id, entry, auth_mode, Choice::First, userinfo_url);
    // The first of `||` addresses may need a value the operator fixes
    // where the last does not.
    if let Ok((imported, true)) = &first
        && !imported.ready
        && let Ok((last, _)) = translate_with(id, entry, auth_mode, Choice::Last, userinfo_url)
        && last.ready
    {
        return Ok(last);
    }
    match first.map(|(imported, _)| imported) {
        Err(reason) if reason.chose => {
            translate_with(id, entry, auth_mode, Choice::Last, userinfo_url)
                .map(|(imported, _)| imported)
                .map_err(|last| {
                    format!(
                        "{} (with the first of its || addresses); {} (with the last)",
                        reason.text, last.text
                    )
                })
        }
        other => other.map_err(|reason| reason.text),
    }
}

/// Why an entry did not translate, and whether it chose between `||`
/// addresses on the way.
struct Refusal {
    text: String,
    chose: bool,
}

/// [`translate`] with the `||` alternative `choice`; with whether a
/// template chose between `||` addresses.
fn translate_with(
    id: &ConnectorId,
    entry: &Map<String, Value>,
    auth_mode: &str,
    choice: Choice,
    userinfo_url: Option<&str>,
) -> Result<(Imported, bool), Refusal> {
    let mut ctx = Context::new(entry, choice);
    ctx.userinfo_url = userinfo_url.map(str::to_owned);
    let built = build(entry, auth_mode, &mut ctx);
    let refuse = |text: String, ctx: &Context| Refusal {
        text,
        chose: ctx.chose,
    };
    let mut file = built.map_err(|text| refuse(text, &ctx))?;
    let file_name = format!("{id}.toml");
    let mut checked = check(id, &file, &file_name);
    if let Err(reason) = &checked
        && reason.contains("api_base_urls")
        && file.remove("api_base_urls").is_some()
    {
        ctx.notes.push(format!(
            "api_base_urls left out, the catalog refuses proxy.base_url: {reason}"
        ));
        checked = check(id, &file, &file_name);
    }
    let text = checked.map_err(|text| refuse(text, &ctx))?;
    if ctx.chose {
        ctx.notes.push(format!(
            "Nango chooses between addresses with ||; this file keeps the {} of each",
            match choice {
                Choice::First => "first (its settings are required)",
                Choice::Last => "last",
            }
        ));
    }
    let unfilled = ctx.fixed_notes();
    Ok((
        Imported {
            id: id.clone(),
            auth_mode: auth_mode.to_owned(),
            text,
            ready: !ctx.needs_endpoint && !unfilled,
            notes: ctx.notes,
        },
        ctx.chose,
    ))
}

/// The catalog table of an entry, unchecked.
fn build(entry: &Map<String, Value>, auth_mode: &str, ctx: &mut Context) -> Result<Table, String> {
    let mut file = Table::new();
    let display_name = entry
        .get("display_name")
        .and_then(Value::as_str)
        .ok_or("it has no display_name")?;
    file.insert("display_name".into(), display_name.into());
    let docs = entry
        .get("docs")
        .and_then(Value::as_str)
        .ok_or("it has no docs URL")?;
    file.insert("docs_url".into(), docs.into());
    file.insert(
        "default_sync_interval_secs".into(),
        SYNC_INTERVAL_SECS.into(),
    );
    match auth_mode {
        "OAUTH2" => oauth2(entry, ctx, &mut file)?,
        "API_KEY" => api_key(entry, ctx, &mut file)?,
        "BASIC" => basic(entry, ctx, &mut file)?,
        "OAUTH2_CC" => client_credentials(entry, ctx, &mut file)?,
        "none" => return Err("it has no auth_mode".to_owned()),
        other => return Err(format!("auth mode {other} is not supported yet")),
    }
    ctx.api_base_url(entry, &mut file);
    ctx.settings(&mut file);
    let free = free_hosts(&file);
    if !free.is_empty() {
        for name in free {
            if ctx.used.contains_key(&name) {
                ctx.fixed.entry(name).or_insert(Fixed::Host);
            }
        }
        ctx.settings(&mut file);
    }
    Ok(file)
}

/// `file` as the text of a catalog file, checked as start-up checks it.
fn check(id: &ConnectorId, file: &Table, file_name: &str) -> Result<String, String> {
    let text = format!(
        "# Imported from Nango's provider definitions (entry {id}).\n{}",
        toml::to_string(file).map_err(|e| format!("could not be written as TOML: {e}"))?
    );
    CatalogEntry::from_text(id.clone(), &text, file_name)
        .map_err(|e| format!("the catalog refuses the file: {}", error_text(&e)))?;
    Ok(text)
}

/// Which of the addresses an `||` offers is kept.
#[derive(Debug, Clone, Copy)]
enum Choice {
    First,
    Last,
}

/// An error and its causes, on one line.
fn error_text(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(cause.to_string().lines().next().unwrap_or_default());
        source = cause.source();
    }
    text
}

/// What translating one entry has found so far: the settings its
/// templates use, the values kept from its token response, notes.
struct Context {
    /// `connection_config`: per-connection settings, by Nango's name.
    config: Map<String, Value>,
    /// Values kept from the token response, by name.
    kept: BTreeSet<String>,
    /// Names read from the callback's query (`redirect_uri_metadata`).
    callback: BTreeSet<String>,
    /// The settings used by a template, by our name, with Nango's name.
    used: BTreeMap<String, String>,
    /// Which `||` address to keep.
    choice: Choice,
    /// Whether a template chose between `||` addresses.
    chose: bool,
    /// Whether the template being read is the first of `||` addresses,
    /// whose settings are then required (there is no fallback).
    required: bool,
    /// Settings required for that reason.
    forced: BTreeSet<String>,
    /// Settings the operator fixes for every connection, by our name,
    /// and why.
    fixed: BTreeMap<String, Fixed>,
    /// Whether the template being read is `proxy.base_url`.
    reading_api_base: bool,
    /// While a header (or a Basic entry's verification URL) is read:
    /// Nango's names of the credentials fields it may hold, with ours
    /// (`apiKey` as `api_key`).
    header_credentials: &'static [(&'static str, &'static str)],
    /// Whether the template being read is a value of `authorize_params`,
    /// where `${random}` is a fresh value per authorization.
    reading_authorize_params: bool,
    /// Whether the entry names no endpoint to validate against.
    needs_endpoint: bool,
    /// The operator's `oauth2.userinfo_url` or `verify_url` for an entry
    /// that names none.
    userinfo_url: Option<String>,
    /// Patterns of ours that replace Nango's, by setting (an AWS region's,
    /// where Nango's `[a-z0-9-]+` also takes `s3-us-west-2`, the path-style
    /// host of a bucket).
    patterns: BTreeMap<String, &'static str>,
    notes: Vec<String>,
}

impl Context {
    fn new(entry: &Map<String, Value>, choice: Choice) -> Self {
        let names = |key: &str| -> BTreeSet<String> {
            entry
                .get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut kept = names("token_response_metadata");
        kept.extend(names("connection_configuration"));
        Self {
            config: entry
                .get("connection_config")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            kept,
            callback: names("redirect_uri_metadata"),
            used: BTreeMap::new(),
            choice,
            chose: false,
            required: false,
            forced: BTreeSet::new(),
            fixed: BTreeMap::new(),
            reading_api_base: false,
            header_credentials: &[],
            reading_authorize_params: false,
            needs_endpoint: false,
            userinfo_url: None,
            patterns: BTreeMap::new(),
            notes: Vec::new(),
        }
    }

    /// `text` with Nango's `${connectionConfig.x}` as our `{x}`. `after`
    /// says whether values kept from the token response may stand in it.
    fn template(&mut self, text: &str, after: bool) -> Result<String, String> {
        let alternatives: Vec<&str> = text.split("||").map(str::trim).collect();
        let text = match (alternatives.as_slice(), self.choice) {
            ([one], _) => one,
            ([first, ..], Choice::First) => {
                self.chose = true;
                self.required = true;
                first
            }
            ([.., last], Choice::Last) => {
                self.chose = true;
                last
            }
            ([], _) => text,
        };
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            let (before, tail) = rest.split_at(start);
            if before.contains(['{', '}']) {
                return Err(format!("{text:?} holds braces"));
            }
            out.push_str(before);
            let end = tail
                .find('}')
                .ok_or_else(|| format!("{text:?} has an unclosed ${{"))?;
            let inner = &tail[2..end];
            let name = self.placeholder(inner, after)?;
            if self.required {
                self.forced.insert(name.clone());
            }
            out.push('{');
            out.push_str(&name);
            out.push('}');
            rest = &tail[end + 1..];
        }
        if rest.contains(['{', '}']) {
            return Err(format!("{text:?} holds braces"));
        }
        out.push_str(rest);
        self.required = false;
        Ok(out)
    }

    /// Our name for Nango's `${inner}`.
    fn placeholder(&mut self, inner: &str, after: bool) -> Result<String, String> {
        if inner == RANDOM && self.reading_authorize_params {
            return Ok(RANDOM.to_owned());
        }
        if let Some((_, ours)) = self
            .header_credentials
            .iter()
            .find(|(theirs, _)| *theirs == inner)
        {
            return Ok((*ours).to_owned());
        }
        let Some(name) = inner.strip_prefix("connectionConfig.") else {
            return Err(format!(
                "uses ${{{inner}}}, which has no counterpart in the catalog"
            ));
        };
        if self.kept.contains(name) {
            if !after {
                return Err(format!(
                    "uses {name} from the token response before there is one"
                ));
            }
            return Ok(name.to_owned());
        }
        let asked = self
            .config
            .get(name)
            .is_some_and(|d| !d.get("automated").and_then(Value::as_bool).unwrap_or(false));
        if self.callback.contains(name) && !asked {
            return Err(format!(
                "reads {name} from the query of the callback (redirect_uri_metadata), which the \
                 catalog cannot keep"
            ));
        }
        let Some(definition) = self.config.get(name) else {
            return Err(format!(
                "uses ${{connectionConfig.{name}}}, which no connection_config declares"
            ));
        };
        let ours: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        if definition
            .get("automated")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            if self.reading_api_base {
                // Per connection (a data centre a script looks up): no
                // value of the operator's stands for it.
                return Err(format!(
                    "uses {name}, which Nango fills in after connecting (automated), not the user"
                ));
            }
            self.fixed.insert(ours.clone(), Fixed::Automated);
        }
        self.used.insert(ours.clone(), name.to_owned());
        Ok(ours)
    }

    /// `api_base_urls.api` from `proxy.base_url`, when it translates.
    fn api_base_url(&mut self, entry: &Map<String, Value>, file: &mut Table) {
        let Some(base) = proxy_base(entry) else {
            return;
        };
        self.reading_api_base = true;
        let base = self.template(base, true);
        self.reading_api_base = false;
        match base {
            Ok(mut base) => {
                if base.starts_with('{') && base.ends_with('}') && base.matches('{').count() == 1 {
                    // The catalog wants a path after a whole address.
                    base.push('/');
                }
                let mut urls = Table::new();
                urls.insert("api".into(), base.into());
                file.insert("api_base_urls".into(), urls.into());
            }
            Err(reason) => self
                .notes
                .push(format!("api_base_urls left out: proxy.base_url {reason}")),
        }
    }

    /// The value a fixed setting is written with: Nango's
    /// `default_value`, else empty for the operator to fill in.
    fn fixed_value(&self, ours: &str) -> String {
        self.used
            .get(ours)
            .and_then(|name| self.config.get(name))
            .and_then(|d| d.get("default_value"))
            .and_then(scalar)
            .unwrap_or_default()
    }

    /// Notes on the settings the operator fixes; whether one of them
    /// still has to be filled in.
    fn fixed_notes(&mut self) -> bool {
        let mut unfilled = false;
        let fixed: Vec<(String, Fixed)> = self.fixed.iter().map(|(k, v)| (k.clone(), *v)).collect();
        for (name, why) in fixed {
            let value = self.fixed_value(&name);
            unfilled |= value.is_empty();
            let why = match why {
                Fixed::Automated => "Nango fills it in itself (automated), and no user gives it",
                Fixed::Host => {
                    "it chooses a host with no pattern that only the provider's hosts match, \
                     which no tenant may choose"
                }
            };
            self.notes.push(if value.is_empty() {
                format!(
                    "needs settings {name}.value: {why}; set the value your client is \
                     registered for (the host of your instance), or remove value and give the \
                     setting a pattern or an allowed list so that each user gives it"
                )
            } else {
                format!("settings {name}.value is Nango's default {value:?}: {why}")
            });
        }
        unfilled
    }

    /// Whether Nango marks its setting `theirs` secret.
    fn nango_secret(&self, theirs: &str) -> bool {
        self.config
            .get(theirs)
            .and_then(|d| d.get("secret"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// `[[settings]]` for the settings the templates use.
    fn settings(&self, file: &mut Table) {
        let mut settings = Vec::new();
        for (ours, name) in &self.used {
            let definition = self.config.get(name).and_then(Value::as_object);
            let mut setting = Table::new();
            setting.insert("name".into(), ours.clone().into());
            setting.insert(
                "label".into(),
                definition_text(definition, "title")
                    .unwrap_or(name.clone())
                    .into(),
            );
            copy_help_and_pattern(definition, &mut setting);
            if let Some(pattern) = self.patterns.get(ours) {
                setting.insert("pattern".into(), (*pattern).into());
            }
            if let Some(example) = definition_text(definition, "example") {
                setting.insert("example".into(), example.into());
            }
            if let Some(allowed) = definition
                .and_then(|d| d.get("enum"))
                .and_then(Value::as_array)
            {
                let allowed: Vec<toml::Value> = allowed
                    .iter()
                    .filter_map(scalar)
                    .map(toml::Value::from)
                    .collect();
                setting.insert("allowed".into(), allowed.into());
            }
            let optional = definition
                .and_then(|d| d.get("optional"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            // Wherever it stands: the catalog refuses a secret setting
            // outside headers, so such an entry is skipped.
            if self.nango_secret(name) {
                setting.insert("secret".into(), true.into());
            }
            if self.fixed.contains_key(ours) {
                setting.insert("value".into(), self.fixed_value(ours).into());
            } else if optional && !self.forced.contains(ours) {
                setting.insert("required".into(), false.into());
            }
            settings.push(toml::Value::Table(setting));
        }
        if !settings.is_empty() {
            file.insert("settings".into(), settings.into());
        }
    }
}

/// Why the importer makes a setting one the operator fixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fixed {
    /// Nango fills it in itself (`automated`), not the user.
    Automated,
    /// It chooses a host with nothing to hold it to the provider's.
    Host,
}

/// The settings that choose a host in a URL of `file` with no pattern
/// (that takes no stranger's host) or list to hold them to the provider's
/// hosts: the `*_url` keys of the mode
/// tables (not `api_base_urls`, which the importer leaves out instead when
/// the catalog refuses it, since no generic connector requests it).
fn free_hosts(file: &Table) -> BTreeSet<String> {
    let mut urls: Vec<&str> = Vec::new();
    for (key, value) in file {
        let Some(table) = value.as_table() else {
            continue;
        };
        for (name, value) in table {
            if key != "api_base_urls"
                && name.ends_with("_url")
                && let Some(url) = value.as_str()
            {
                urls.push(url);
            }
        }
    }
    let constrained = |name: &str| {
        file.get("settings")
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(toml::Value::as_table)
            .any(|s| {
                s.get("name").and_then(toml::Value::as_str) == Some(name)
                    && (s
                        .get("pattern")
                        .and_then(toml::Value::as_str)
                        .is_some_and(pattern_holds_host)
                        || s.get("allowed")
                            .and_then(toml::Value::as_array)
                            .is_some_and(|a| !a.is_empty()))
            })
    };
    urls.into_iter()
        .filter_map(|url| UrlTemplate::parse(url).ok())
        .flat_map(|template| {
            template
                .free_host_values()
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|name| !constrained(name))
        .collect()
}

/// `proxy.base_url`, if the entry has one.
fn proxy_base(entry: &Map<String, Value>) -> Option<&str> {
    entry.get("proxy")?.get("base_url")?.as_str()
}

/// A non-blank text of a Nango field or setting definition.
fn definition_text(definition: Option<&Map<String, Value>>, key: &str) -> Option<String> {
    definition
        .and_then(|d| d.get(key))
        .and_then(scalar)
        .filter(|t| !t.trim().is_empty())
}

/// A definition's `description` as our `help`, and its `pattern`, without
/// the anchors ours add and only when it compiles, as our `pattern`.
fn copy_help_and_pattern(definition: Option<&Map<String, Value>>, table: &mut Table) {
    if let Some(help) = definition_text(definition, "description") {
        table.insert("help".into(), help.into());
    }
    if let Some(pattern) = definition_text(definition, "pattern") {
        let pattern = pattern.strip_prefix('^').unwrap_or(&pattern);
        let pattern = pattern.strip_suffix('$').unwrap_or(pattern);
        if regex::Regex::new(pattern).is_ok() {
            table.insert("pattern".into(), pattern.into());
        }
    }
}

/// A string, number or boolean as text.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The `[oauth2]` table of an `OAUTH2` entry.
fn oauth2(entry: &Map<String, Value>, ctx: &mut Context, file: &mut Table) -> Result<(), String> {
    const HANDLED: [&str; 20] = [
        "authorization_url",
        "authorization_code_param_in_callback",
        "token_url",
        "refresh_url",
        "authorization_params",
        "auth",
        "token_params",
        "refresh_params",
        "refresh_token_params",
        "default_scopes",
        "scope_separator",
        "disable_pkce",
        "token_request_auth_method",
        "authorization_method",
        "body_format",
        "token_response_metadata",
        "connection_configuration",
        "authorization_url_replacements",
        "authorization_url_skip_empty",
        "authorization_url_fragment",
    ];
    const ALSO: [&str; 3] = [
        "authorization_url_skip_encode",
        "redirect_uri_metadata",
        "credentials",
    ];
    if let Some(key) = entry.keys().find(|key| {
        !IGNORED.contains(&key.as_str())
            && !HANDLED.contains(&key.as_str())
            && !ALSO.contains(&key.as_str())
    }) {
        return Err(format!("uses {key}, which the catalog cannot express"));
    }
    if entry.contains_key("credentials") {
        return Err("asks the user for credentials besides the consent (credentials)".to_owned());
    }
    let mut oauth2 = Table::new();
    let text = |key: &str| entry.get(key).and_then(Value::as_str);
    let authorize = text("authorization_url").ok_or("it has no authorization_url")?;
    oauth2.insert(
        "authorize_url".into(),
        ctx.template(authorize, false)?.into(),
    );
    let token = match entry.get("token_url") {
        Some(Value::String(url)) => url.as_str(),
        Some(Value::Object(urls)) => urls
            .get("OAUTH2")
            .and_then(Value::as_str)
            .ok_or("its token_url map has no OAUTH2 URL")?,
        _ => return Err("it has no token_url".to_owned()),
    };
    oauth2.insert("token_url".into(), ctx.template(token, false)?.into());
    if let Some(refresh) = text("refresh_url") {
        oauth2.insert("refresh_url".into(), ctx.template(refresh, true)?.into());
    }
    if let Some(userinfo) = verification_url(entry) {
        oauth2.insert("userinfo_url".into(), ctx.template(&userinfo, true)?.into());
    } else if let Some(userinfo) = &ctx.userinfo_url {
        oauth2.insert("userinfo_url".into(), userinfo.clone().into());
    } else {
        oauth2.insert("token_only".into(), true.into());
        ctx.notes.push(format!(
            "{TOKEN_ONLY}: Nango declares no endpoint to validate a connection against, so the \
             grant is checked at the token endpoint only (issued when connecting, renewed before \
             it expires) and a grant revoked at the provider shows at its next renewal; to check \
             it against the API, replace token_only with a userinfo_url that answers the access \
             token with the account (an OpenID Connect userinfo or a /me), or import the entry \
             alone with --userinfo-url"
        ));
    }
    let separator = text("scope_separator").unwrap_or(" ");
    if let Some(scopes) = entry.get("default_scopes").and_then(Value::as_array) {
        let scopes: Vec<toml::Value> = scopes
            .iter()
            .filter_map(scalar)
            .map(toml::Value::from)
            .collect();
        oauth2.insert("scopes".into(), scopes.into());
    }
    if separator != " " {
        oauth2.insert("scope_separator".into(), separator.into());
    }
    let mut authorize_params = Table::new();
    for key in ["auth", "authorization_params"] {
        for (name, value) in object(entry, key) {
            let value = scalar(value).ok_or_else(|| format!("{key}.{name} is no text"))?;
            if name == "response_type" && value == "code" {
                continue;
            }
            ctx.reading_authorize_params = true;
            let template = ctx.template(&value, false);
            ctx.reading_authorize_params = false;
            authorize_params.insert(name.clone(), template?.into());
        }
    }
    if !authorize_params.is_empty() {
        oauth2.insert("authorize_params".into(), authorize_params.into());
    }
    if entry.get("authorization_url_skip_empty") == Some(&Value::Bool(true)) {
        oauth2.insert("authorize_skip_empty".into(), true.into());
    }
    if let Some(fragment) = entry.get("authorization_url_fragment").and_then(scalar) {
        oauth2.insert("authorize_fragment".into(), fragment.into());
    }
    let mut names = Table::new();
    for (from, to) in object(entry, "authorization_url_replacements") {
        let to = to.as_str().unwrap_or_default();
        let (from, to) = (from.trim_end_matches('='), to.trim_end_matches('='));
        if !AUTHORIZE_PARAMS.contains(&from) || (to.is_empty() && from != "response_type") {
            return Err(format!(
                "authorization_url_replacements turns {from:?} into {to:?}, which is no renaming \
                 of a standard authorize parameter"
            ));
        }
        names.insert(from.to_owned(), to.into());
    }
    if !names.is_empty() {
        oauth2.insert("authorize_param_names".into(), names.into());
    }
    if let Some(encode) = entry.get("authorization_url_skip_encode") {
        let scopes_only = encode
            .as_array()
            .is_some_and(|a| a.iter().all(|v| v.as_str() == Some("scopes")));
        let encoded = match separator {
            "," => "%2C",
            "+" => "%2B",
            ":" => "%3A",
            _ => "",
        };
        if !scopes_only || encoded.is_empty() {
            return Err(
                "authorization_url_skip_encode leaves more than a scope separator unencoded"
                    .to_owned(),
            );
        }
        let mut replacements = Table::new();
        replacements.insert(encoded.to_owned(), separator.into());
        oauth2.insert("authorize_query_replacements".into(), replacements.into());
    }
    if let Some(code) = text("authorization_code_param_in_callback") {
        oauth2.insert("callback_code_param".into(), code.into());
    }
    let basic = text("token_request_auth_method") == Some("basic")
        || text("authorization_method") == Some("header");
    if basic {
        oauth2.insert("client_auth".into(), "client_secret_basic".into());
    }
    if text("body_format") == Some("json") {
        oauth2.insert("token_body".into(), "json".into());
    }
    let token_params = params(ctx, entry, &["token_params"], "authorization_code", false)?;
    if !token_params.is_empty() {
        oauth2.insert("token_params".into(), token_params.into());
    }
    let refresh_params = params(
        ctx,
        entry,
        &["refresh_params", "refresh_token_params"],
        "refresh_token",
        true,
    )?;
    if !refresh_params.is_empty() {
        oauth2.insert("refresh_params".into(), refresh_params.into());
    }
    let kept: Vec<toml::Value> = ctx
        .kept
        .iter()
        .map(|name| {
            let mut value = Table::new();
            value.insert("name".into(), name.clone().into());
            if let Some(pattern) = ctx
                .config
                .get(name)
                .and_then(|d| d.get("pattern"))
                .and_then(Value::as_str)
            {
                let pattern = pattern.strip_prefix('^').unwrap_or(pattern);
                let pattern = pattern.strip_suffix('$').unwrap_or(pattern);
                if regex::Regex::new(pattern).is_ok() {
                    value.insert("pattern".into(), pattern.into());
                }
            }
            toml::Value::Table(value)
        })
        .collect();
    if !kept.is_empty() {
        oauth2.insert("token_values".into(), kept.into());
    }
    let pkce = entry.get("disable_pkce") != Some(&Value::Bool(true));
    oauth2.insert("pkce".into(), pkce.into());
    file.insert("auth".into(), "oauth2".into());
    file.insert("oauth2".into(), oauth2.into());
    Ok(())
}

/// The entry's table `key`, or an empty one.
fn object<'a>(
    entry: &'a Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = (&'a String, &'a Value)> {
    entry
        .get(key)
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|map| map.iter())
}

/// The extra parameters in the entry's tables `keys`, without the
/// standard `grant_type`.
fn params(
    ctx: &mut Context,
    entry: &Map<String, Value>,
    keys: &[&str],
    grant_type: &str,
    after: bool,
) -> Result<Table, String> {
    let mut out = Table::new();
    for key in keys {
        for (name, value) in object(entry, key) {
            let value = scalar(value).ok_or_else(|| format!("{key}.{name} is no text"))?;
            if name == "grant_type" && value == grant_type {
                continue;
            }
            out.insert(name.clone(), ctx.template(&value, after)?.into());
        }
    }
    Ok(out)
}

/// Keys of an entry of typed-in credentials that the importer reads.
const TYPED_IN: [&str; 1] = ["credentials"];

/// OAuth keys an `API_KEY` or `BASIC` entry can have from the entry its
/// `alias` names, which mean nothing for a key or password.
const OAUTH_ONLY: [&str; 9] = [
    "authorization_url",
    "authorization_params",
    "token_url",
    "token_params",
    "refresh_params",
    "scope_separator",
    "default_scopes",
    "disable_pkce",
    "token_request_auth_method",
];

/// Refuses an entry of typed-in credentials with a key the catalog cannot
/// express (beyond `also`, which the caller reads).
fn only_known(entry: &Map<String, Value>, also: &[&str]) -> Result<(), String> {
    match entry.keys().find(|key| {
        !IGNORED.contains(&key.as_str())
            && !TYPED_IN.contains(&key.as_str())
            && !also.contains(&key.as_str())
    }) {
        Some(key) => Err(format!("uses {key}, which the catalog cannot express")),
        None => Ok(()),
    }
}

/// Why an entry of typed-in credentials has no `verify_url`.
enum NoVerification {
    /// Nango declares no GET to validate credentials against: this text
    /// says what it declares.
    Undeclared(String),
    /// The entry cannot be written (a template the catalog refuses).
    Refused(String),
}

/// The `verify_url` of an entry of typed-in credentials: its
/// `proxy.verification`, a GET, else the `--userinfo-url` given.
fn verify_url(entry: &Map<String, Value>, ctx: &mut Context) -> Result<String, NoVerification> {
    let verification = entry.get("proxy").and_then(|p| p.get("verification"));
    let undeclared = |text: String| match &ctx.userinfo_url {
        Some(url) => Ok(url.clone()),
        None => Err(NoVerification::Undeclared(text)),
    };
    let Some(verification) = verification else {
        return undeclared("declares no endpoint to validate credentials against".to_owned());
    };
    let method = verification
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("GET");
    if !method.eq_ignore_ascii_case("GET") {
        return undeclared(format!(
            "validates credentials with {method}, which every sync would repeat"
        ));
    }
    let Some(url) = verification_url(entry) else {
        return undeclared("names no endpoint in proxy.verification".to_owned());
    };
    ctx.template(&url, false).map_err(NoVerification::Refused)
}

/// Puts the `verify_url` of an `api_key` or `basic` entry into `table`; an
/// entry for which Nango declares none is written without it, with a
/// note, and is not ready: start-up refuses it until the operator adds one.
fn verify_or_note(
    entry: &Map<String, Value>,
    ctx: &mut Context,
    mode: &str,
    table: &mut Table,
) -> Result<(), String> {
    match verify_url(entry, ctx) {
        Ok(url) => {
            table.insert("verify_url".into(), url.into());
        }
        Err(NoVerification::Undeclared(what)) => {
            ctx.needs_endpoint = true;
            ctx.notes.push(format!(
                "needs {mode}.verify_url: Nango {what}; add an endpoint that answers 2xx to a {} \
                 with valid credentials before use, or import the entry alone with --userinfo-url",
                if table.contains_key("verify_json") {
                    "POST of the body"
                } else {
                    "GET"
                }
            ));
        }
        Err(NoVerification::Refused(reason)) => return Err(reason),
    }
    Ok(())
}

/// The headers of `proxy` other than the one carrying the credentials, as
/// the mode table's `headers`: `${connectionConfig.x}` becomes `{x}` (a
/// secret setting where Nango marks it secret); a value built from
/// anything else (the access token, a credential, a function) refuses the
/// entry.
fn other_headers(
    entry: &Map<String, Value>,
    ctx: &mut Context,
    skipped: &[&str],
    credentials: &'static [(&'static str, &'static str)],
) -> Result<Table, String> {
    ctx.header_credentials = credentials;
    let headers = other_headers_with(entry, ctx, skipped);
    ctx.header_credentials = &[];
    headers
}

/// Nango's names of an API key in a header value, with ours.
const KEY_IN_HEADERS: &[(&str, &str)] = &[("apiKey", "api_key"), ("credentials.apiKey", "api_key")];

/// Nango's names of an API key sent as the Basic user name, in another
/// header value, with ours.
const KEY_AS_USER_IN_HEADERS: &[(&str, &str)] =
    &[("apiKey", "username"), ("credentials.apiKey", "username")];

/// Nango's names of Basic credentials in a header value, with ours.
const BASIC_IN_HEADERS: &[(&str, &str)] = &[
    ("credentials.username", "username"),
    ("credentials.password", "password"),
];

/// [`other_headers`], with the credentials names set.
fn other_headers_with(
    entry: &Map<String, Value>,
    ctx: &mut Context,
    skipped: &[&str],
) -> Result<Table, String> {
    let headers = entry
        .get("proxy")
        .and_then(|p| p.get("headers"))
        .and_then(Value::as_object);
    let mut out = Table::new();
    for (name, value) in headers.into_iter().flatten() {
        if skipped.iter().any(|skip| name.eq_ignore_ascii_case(skip)) {
            continue;
        }
        let value = scalar(value).unwrap_or_default();
        if name.eq_ignore_ascii_case("authorization") && value == "Bearer ${accessToken}" {
            // How every request of a token-based entry is sent anyway.
            continue;
        }
        if ["content-type", "accept"].contains(&name.to_ascii_lowercase().as_str())
            && !value.contains("${")
        {
            continue;
        }
        let template = ctx.template(&value, false).map_err(|reason| {
            format!("sends the header {name} built from {value:?} (proxy.headers): {reason}")
        })?;
        out.insert(name.clone(), template.into());
    }
    Ok(out)
}

/// `[[form]]` for the credentials fields `fields` (ours, Nango's
/// `credentials` key, default label, kind), labelled as Nango's
/// `credentials` describe them. A hidden Nango field with an empty default
/// becomes an optional field.
fn form(entry: &Map<String, Value>, fields: &[(&str, &str, &str, &str)], file: &mut Table) {
    let credentials = entry.get("credentials").and_then(Value::as_object);
    let mut form = Vec::new();
    for (ours, theirs, label, kind) in fields {
        let definition = credentials
            .and_then(|c| c.get(*theirs))
            .and_then(Value::as_object);
        let mut field = Table::new();
        field.insert("name".into(), (*ours).into());
        field.insert(
            "label".into(),
            definition_text(definition, "title")
                .unwrap_or((*label).to_owned())
                .into(),
        );
        // A field Nango marks secret (a key as the user name) is asked as
        // one, which also keeps it out of URLs.
        let secret = definition
            .and_then(|d| d.get("secret"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        field.insert(
            "kind".into(),
            (if secret { "password" } else { *kind }).into(),
        );
        copy_help_and_pattern(definition, &mut field);
        let hidden = definition
            .and_then(|d| d.get("hidden"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if hidden {
            field.insert("required".into(), false.into());
        }
        form.push(toml::Value::Table(field));
    }
    file.insert("form".into(), form.into());
}

/// The `[api_key]` table of an `API_KEY` entry: the key in the header
/// or query parameter of `proxy` whose value holds `${apiKey}`.
fn api_key(entry: &Map<String, Value>, ctx: &mut Context, file: &mut Table) -> Result<(), String> {
    only_known(entry, &OAUTH_ONLY)?;
    let proxy = entry.get("proxy");
    let in_header = proxy
        .and_then(|p| p.get("headers"))
        .and_then(Value::as_object)
        .and_then(|h| {
            h.iter()
                .find(|(_, v)| v.as_str().is_some_and(|v| v.contains("${apiKey}")))
        });
    let in_query = proxy
        .and_then(|p| p.get("query"))
        .and_then(Value::as_object)
        .and_then(|q| {
            q.iter()
                .find(|(_, v)| v.as_str().is_some_and(|v| v.contains("${apiKey}")))
        });
    let mut table = Table::new();
    let carrier = match (in_header, in_query) {
        (Some((name, value)), _)
            if name.eq_ignore_ascii_case("authorization")
                && value.as_str() == Some(KEY_AS_BASIC_USER) =>
        {
            return key_as_basic_user(entry, ctx, file, name);
        }
        (Some((name, value)), _) => {
            let value = value.as_str().unwrap_or_default();
            let Some(prefix) = value.strip_suffix("${apiKey}") else {
                return Err(format!(
                    "sends the key inside {value:?} (header {name}), not at its end"
                ));
            };
            if prefix.contains("${") {
                return Err(format!("sends the key after {prefix:?} (header {name})"));
            }
            table.insert("header".into(), name.clone().into());
            if !prefix.is_empty() {
                table.insert("prefix".into(), prefix.into());
            }
            Some(name.as_str())
        }
        (None, Some((name, value))) => {
            if value.as_str() != Some("${apiKey}") {
                return Err(format!("sends the key inside the query parameter {name}"));
            }
            table.insert("query".into(), name.clone().into());
            None
        }
        // Telegram's `https://api.telegram.org/bot${apiKey}`: the key in
        // the verification URL, which messages show redacted.
        (None, None) if verification_url(entry).is_some_and(|url| holds_key(&url)) => None,
        (None, None) => match proxy.and_then(|p| p.get("body")) {
            Some(body) if holds_key(&body.to_string()) => {
                // Mandrill's `{ key: ${apiKey} }`: every request is a POST
                // that carries the key in its JSON body.
                ctx.header_credentials = KEY_IN_HEADERS;
                let json = json_template(ctx, body);
                ctx.header_credentials = &[];
                let json =
                    json.map_err(|reason| format!("sends the key in proxy.body: {reason}"))?;
                table.insert("verify_method".into(), "POST".into());
                table.insert("verify_json".into(), json);
                None
            }
            _ => {
                return Err(
                    "sends the key neither in a header, a query parameter, the URL nor the body \
                     of proxy"
                        .to_owned(),
                );
            }
        },
    };
    let headers = other_headers(entry, ctx, carrier.as_slice(), KEY_IN_HEADERS)?;
    if !headers.is_empty() {
        table.insert("headers".into(), headers.into());
    }
    // A verification endpoint that repeats the key in the query parameter
    // that carries it anyway: the connector adds it to every request.
    let query = table
        .get("query")
        .and_then(toml::Value::as_str)
        .map(str::to_owned);
    let cleaned = query.and_then(|name| without_key_param(entry, &name));
    // The key may stand in the verification URL's path (Algolia's
    // `/1/keys/${credentials.apiKey}`), shown redacted.
    ctx.header_credentials = KEY_IN_HEADERS;
    let verified = verify_or_note(
        cleaned.as_ref().unwrap_or(entry),
        ctx,
        "api_key",
        &mut table,
    );
    ctx.header_credentials = &[];
    verified?;
    form(entry, &[("api_key", "apiKey", "API key", "password")], file);
    file.insert("auth".into(), "api_key".into());
    file.insert("api_key".into(), table.into());
    Ok(())
}

/// Whether `text` holds Nango's API key (`${apiKey}` or
/// `${credentials.apiKey}`).
fn holds_key(text: &str) -> bool {
    text.contains("${apiKey}") || text.contains("${credentials.apiKey}")
}

/// A JSON body of Nango's (`proxy.body`) as a `verify_json` table, its
/// strings translated as templates.
fn json_template(ctx: &mut Context, value: &Value) -> Result<toml::Value, String> {
    Ok(match value {
        Value::String(text) => ctx.template(text, false)?.into(),
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.into(),
            (None, Some(x)) => x.into(),
            (None, None) => return Err(format!("holds the number {n}, which TOML cannot")),
        },
        Value::Array(items) => toml::Value::Array(
            items
                .iter()
                .map(|item| json_template(ctx, item))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => toml::Value::Table(
            fields
                .iter()
                .map(|(key, value)| Ok((key.clone(), json_template(ctx, value)?)))
                .collect::<Result<_, String>>()?,
        ),
        Value::Null => return Err("holds null, which TOML cannot".to_owned()),
    })
}

/// `entry` with `name=${credentials.apiKey}` (or `${apiKey}`) taken out of
/// the query of its verification endpoints, if one has it.
fn without_key_param(entry: &Map<String, Value>, name: &str) -> Option<Map<String, Value>> {
    let mut entry = entry.clone();
    let endpoints = entry
        .get_mut("proxy")?
        .get_mut("verification")?
        .get_mut("endpoints")?
        .as_array_mut()?;
    let mut changed = false;
    for endpoint in endpoints.iter_mut() {
        let Some(text) = endpoint.as_str() else {
            continue;
        };
        let Some((path, query)) = text.split_once('?') else {
            continue;
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                ![
                    format!("{name}=${{credentials.apiKey}}"),
                    format!("{name}=${{apiKey}}"),
                ]
                .iter()
                .any(|key| pair == key)
            })
            .collect();
        if kept.len() == query.split('&').count() {
            continue;
        }
        changed = true;
        *endpoint = Value::String(if kept.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{}", kept.join("&"))
        });
    }
    changed.then_some(entry)
}

/// How Nango writes an API key sent as the user name of HTTP Basic with
/// an empty password.
const KEY_AS_BASIC_USER: &str = "Basic ${base64(${apiKey}:)}";

/// An `API_KEY` entry that sends the key as the Basic user name: a
/// `basic` entry whose user name field asks for the key and whose
/// password field may stay empty.
fn key_as_basic_user(
    entry: &Map<String, Value>,
    ctx: &mut Context,
    file: &mut Table,
    carrier: &str,
) -> Result<(), String> {
    let headers = other_headers(entry, ctx, &[carrier], KEY_AS_USER_IN_HEADERS)?;
    let mut table = Table::new();
    if !headers.is_empty() {
        table.insert("headers".into(), headers.into());
    }
    verify_or_note(entry, ctx, "basic", &mut table)?;
    form(
        entry,
        &[("username", "apiKey", "API key", "password")],
        file,
    );
    if let Some(form) = file.get_mut("form").and_then(toml::Value::as_array_mut) {
        let mut password = Table::new();
        password.insert("name".into(), "password".into());
        password.insert("label".into(), "Password".into());
        password.insert("kind".into(), "password".into());
        password.insert("required".into(), false.into());
        form.push(toml::Value::Table(password));
    }
    ctx.notes.push(
        "the key is sent as the HTTP Basic user name with an empty password, as Nango's \
         authorization header says: written as auth = \"basic\""
            .to_owned(),
    );
    file.insert("auth".into(), "basic".into());
    file.insert("basic".into(), table.into());
    Ok(())
}

/// The `[basic]` table of a `BASIC` entry.
fn basic(entry: &Map<String, Value>, ctx: &mut Context, file: &mut Table) -> Result<(), String> {
    only_known(entry, &OAUTH_ONLY)?;
    if let Some(signed) = aws_signed(entry) {
        return aws_basic(entry, ctx, file, &signed);
    }
    if let Some(header) = duo_signed(entry) {
        return duo_basic(entry, ctx, file, &header);
    }
    if let Some(signature) = message_signed(entry) {
        return message_signed_basic(entry, ctx, file, signature);
    }
    let mut table = Table::new();
    // `Basic ${base64(<user>:${credentials.password})}` is HTTP Basic with
    // the user name built from the field: `basic.username`.
    // ConnectSecure's `client-auth-token: ${base64(<user>:<password>)}`:
    // the same encoding in another header, as its whole value.
    let built_user = entry
        .get("proxy")
        .and_then(|p| p.get("headers"))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .find_map(|(name, value)| {
            let value = value.as_str()?;
            let value = if name.eq_ignore_ascii_case("authorization") {
                value.strip_prefix("Basic ")?
            } else {
                value
            };
            let user = value
                .strip_prefix("${base64(")?
                .strip_suffix(":${credentials.password})}")?;
            user.contains("${credentials.username}")
                .then(|| (name.clone(), user.to_owned()))
        });
    let carrier = match &built_user {
        Some((name, user)) => {
            ctx.header_credentials = &BASIC_IN_HEADERS[..1];
            let username = ctx.template(user, false);
            ctx.header_credentials = &[];
            let username = username
                .map_err(|reason| format!("builds the Basic user name from {user:?}: {reason}"))?;
            if username != "{username}" {
                table.insert("username".into(), username.into());
            }
            if !name.eq_ignore_ascii_case("authorization") {
                table.insert("header".into(), name.clone().into());
            }
            Some(name.as_str())
        }
        None => None,
    };
    let headers = other_headers(entry, ctx, carrier.as_slice(), BASIC_IN_HEADERS)?;
    if !headers.is_empty() {
        table.insert("headers".into(), headers.into());
    }
    // A user name Nango does not mark secret (Twilio's account SID) may
    // stand in the verification URL.
    let username_secret = entry
        .get("credentials")
        .and_then(|c| c.get("username"))
        .and_then(|u| u.get("secret"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !username_secret {
        ctx.header_credentials = &BASIC_IN_HEADERS[..1];
    }
    let verified = verify_or_note(entry, ctx, "basic", &mut table);
    ctx.header_credentials = &[];
    verified?;
    write_basic(entry, file, table, ["User name", "Password"]);
    Ok(())
}

/// The arguments of a `${awsSigV4(<key id>, <secret>, <region>,
/// <service>[, <host>])}` `authorization` header: the header's name, the
/// region and the service as Nango writes them.
struct AwsSigned {
    header: String,
    region: String,
    service: String,
}

/// The AWS signing a Basic entry's `authorization` header asks for, if it
/// asks for it with the user name and password as the key.
fn aws_signed(entry: &Map<String, Value>) -> Option<AwsSigned> {
    let (name, value) = entry
        .get("proxy")?
        .get("headers")?
        .as_object()?
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))?;
    let args = value
        .as_str()?
        .trim()
        .strip_prefix("${awsSigV4(")?
        .strip_suffix(")}")?;
    let args: Vec<&str> = args.split(',').map(str::trim).collect();
    match args.as_slice() {
        [
            "${credentials.username}",
            "${credentials.password}",
            region,
            service,
            ..,
        ] => Some(AwsSigned {
            header: name.clone(),
            region: (*region).to_owned(),
            service: (*service).to_owned(),
        }),
        _ => None,
    }
}

/// The `authorization` header of a Basic entry that signs as Duo's APIs
/// want: `Basic ${base64(${credentials.username}:${hmacSha1Hex(<date>
/// <method> <host> <path> <params>, ${credentials.password})})}`.
fn duo_signed(entry: &Map<String, Value>) -> Option<String> {
    let (name, value) = entry
        .get("proxy")?
        .get("headers")?
        .as_object()?
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))?;
    let value = value.as_str()?;
    // Duo's v2 layout: the date, then the method, host, path and
    // parameters, each on its own line, keyed with the secret key.
    let signed = value
        .strip_prefix("Basic ${base64(${credentials.username}:${hmacSha1Hex(")?
        .strip_suffix(", ${credentials.password})})}")?;
    let lines: Vec<&str> = signed
        .split('\n')
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    let v2 = lines.len() == 5
        && lines[0].starts_with("${now:")
        && lines[1..] == ["${method}", "${host}", "${path}", "${params}"];
    v2.then(|| name.clone())
}

/// A Basic entry whose requests Nango signs as Duo's APIs want:
/// `[basic.duo_signature]` with HMAC-SHA1, as Nango signs.
fn duo_basic(
    entry: &Map<String, Value>,
    ctx: &mut Context,
    file: &mut Table,
    header: &str,
) -> Result<(), String> {
    let mut table = Table::new();
    let headers = other_headers(entry, ctx, &[header, "date"], BASIC_IN_HEADERS)?;
    if !headers.is_empty() {
        table.insert("headers".into(), headers.into());
    }
    let digest: Table = [("digest".to_owned(), "sha1".into())].into_iter().collect();
    table.insert("duo_signature".into(), digest.into());
    verify_or_note(entry, ctx, "basic", &mut table)?;
    ctx.notes.push(
        "requests are signed as Duo's APIs want (HMAC-SHA1 of the Date, method, host, path and \
         parameters, keyed with the secret key)"
            .to_owned(),
    );
    write_basic(entry, file, table, ["Integration key", "Secret key"]);
    Ok(())
}

/// The HTTP Message Signature (RFC 9421, ed25519) a Basic entry's
/// `Signature-Input` and `Signature` headers describe, with the user name
/// as the key id and the password as the private key, as a
/// `[basic.http_signature]` table.
fn message_signed(entry: &Map<String, Value>) -> Option<Table> {
    let headers = entry.get("proxy")?.get("headers")?.as_object()?;
    let header = |wanted: &str| {
        headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
            .and_then(|(_, value)| value.as_str())
    };
    let signature = header("signature")?;
    if !signature.contains("ed25519Sign(") || !signature.contains("${credentials.password}") {
        return None;
    }
    let input = header("signature-input")?;
    let (label, rest) = input.split_once('=')?;
    let (inner, params) = rest.strip_prefix('(')?.split_once(')')?;
    let components: Vec<toml::Value> = inner
        .split(' ')
        .filter(|c| !c.is_empty())
        .map(|c| c.trim_matches('"').to_owned().into())
        .collect();
    let mut table = Table::new();
    table.insert("algorithm".into(), "ed25519".into());
    table.insert("components".into(), components.into());
    table.insert("label".into(), label.into());
    let mut alg = false;
    for param in params.split(';').filter(|p| !p.is_empty()) {
        match param.split_once('=')? {
            ("alg", "\"ed25519\"") => alg = true,
            ("created", "${now:X}") | ("keyid", "\"${credentials.username}\"") => {}
            ("expires", expires) => {
                let minutes: u64 = expires
                    .strip_prefix("${now+")?
                    .strip_suffix(":minutes:X}")?
                    .parse()
                    .ok()?;
                table.insert(
                    "expires_secs".into(),
                    i64::try_from(minutes.checked_mul(60)?).ok()?.into(),
                );
            }
            _ => return None,
        }
    }
    table.insert("alg_param".into(), alg.into());
    Some(table)
}

/// A Basic entry whose requests Nango signs with HTTP Message Signatures:
/// `[basic.http_signature]`.
fn message_signed_basic(
    entry: &Map<String, Value>,
    ctx: &mut Context,
    file: &mut Table,
    signature: Table,
) -> Result<(), String> {
    let mut table = Table::new();
    let mut headers = other_headers(
        entry,
        ctx,
        &["signature", "signature-input", "content-digest"],
        BASIC_IN_HEADERS,
    )?;
    // A signed Content-Type is sent even where it is fixed.
    let signs_content_type = signature
        .get("components")
        .and_then(toml::Value::as_array)
        .is_some_and(|c| c.iter().any(|c| c.as_str() == Some("content-type")));
    if signs_content_type
        && let Some((name, value)) = entry
            .get("proxy")
            .and_then(|p| p.get("headers"))
            .and_then(Value::as_object)
            .and_then(|h| {
                h.iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            })
            .and_then(|(n, v)| Some((n.to_ascii_lowercase(), v.as_str()?.to_owned())))
    {
        headers.insert(name, value.into());
    }
    if !headers.is_empty() {
        table.insert("headers".into(), headers.into());
    }
    table.insert("http_signature".into(), signature.into());
    verify_or_note(entry, ctx, "basic", &mut table)?;
    ctx.notes.push(
        "requests are signed with HTTP Message Signatures (RFC 9421, ed25519): the user name is \
         the key id, the password the private key in PEM"
            .to_owned(),
    );
    write_basic(entry, file, table, ["Key id", "Private key (PEM)"]);
    Ok(())
}

/// What an AWS region looks like (`us-east-1`, `ap-southeast-2`,
/// `us-gov-west-1`): no other name of `amazonaws.com` matches it.
const AWS_REGION: &str = "[a-z]{2}(-[a-z]+)+-[0-9]";

/// A Basic entry whose requests Nango signs for AWS: `[basic.aws_sigv4]`.
/// Nango checks such keys with a script of its own; ours is STS
/// `GetCallerIdentity` in the entry's region, which any valid key may
/// call, signed for `sts` (the one request the generic connector makes).
fn aws_basic(
    entry: &Map<String, Value>,
    ctx: &mut Context,
    file: &mut Table,
    signed: &AwsSigned,
) -> Result<(), String> {
    let mut table = Table::new();
    let headers = other_headers(
        entry,
        ctx,
        &[&signed.header, "x-amz-date"],
        BASIC_IN_HEADERS,
    )?;
    if !headers.is_empty() {
        table.insert("headers".into(), headers.into());
    }
    let region = ctx
        .template(&signed.region, false)
        .map_err(|reason| format!("signs for the region {:?}: {reason}", signed.region))?;
    let service = ctx
        .template(&signed.service, false)
        .map_err(|reason| format!("signs for the service {:?}: {reason}", signed.service))?;
    if let Some(setting) = region.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
        ctx.patterns.insert(setting.to_owned(), AWS_REGION);
    }
    let verify = format!("https://sts.{region}.amazonaws.com/");
    table.insert("verify_url".into(), verify.into());
    table.insert("verify_method".into(), "POST".into());
    let body: Table = [
        ("Action".to_owned(), "GetCallerIdentity".into()),
        ("Version".to_owned(), "2011-06-15".into()),
    ]
    .into_iter()
    .collect();
    table.insert("verify_form".into(), body.into());
    let sigv4: Table = [
        ("region".to_owned(), region.into()),
        ("service".to_owned(), "sts".into()),
    ]
    .into_iter()
    .collect();
    table.insert("aws_sigv4".into(), sigv4.into());
    ctx.notes.push(format!(
        "requests are signed for AWS (Signature Version 4); the key is checked with STS \
         GetCallerIdentity, signed for sts, where Nango runs a script and signs for {service}"
    ));
    write_basic(entry, file, table, ["Access key ID", "Secret access key"]);
    Ok(())
}

/// Writes a Basic entry: `auth`, its `[basic]` `table`, and its form's
/// user name (text) and password fields, labelled as Nango's
/// `credentials` describe them, else with `labels`.
fn write_basic(entry: &Map<String, Value>, file: &mut Table, table: Table, labels: [&str; 2]) {
    form(
        entry,
        &[
            ("username", "username", labels[0], "text"),
            ("password", "password", labels[1], "password"),
        ],
        file,
    );
    file.insert("auth".into(), "basic".into());
    file.insert("basic".into(), table.into());
}

/// The `[oauth2_client_credentials]` table of an `OAUTH2_CC` entry.
fn client_credentials(
    entry: &Map<String, Value>,
    ctx: &mut Context,
    file: &mut Table,
) -> Result<(), String> {
    only_known(
        entry,
        &[
            "token_url",
            "token_params",
            "token_request_auth_method",
            "body_format",
            "default_scopes",
            "scope_separator",
        ],
    )?;
    let headers = other_headers(entry, ctx, &[], &[])?;
    let mut table = Table::new();
    if !headers.is_empty() {
        table.insert("headers".into(), headers.into());
    }
    let token = entry
        .get("token_url")
        .and_then(Value::as_str)
        .ok_or("it has no token_url")?;
    table.insert("token_url".into(), ctx.template(token, false)?.into());
    let grant = object(entry, "token_params")
        .find(|(name, _)| *name == "grant_type")
        .and_then(|(_, v)| v.as_str());
    if grant.is_some_and(|grant| grant != "client_credentials") {
        return Err(format!(
            "uses the grant {} (token_params.grant_type), not client_credentials",
            grant.unwrap_or_default()
        ));
    }
    let params = params(ctx, entry, &["token_params"], "client_credentials", false)?;
    if !params.is_empty() {
        table.insert("token_params".into(), params.into());
    }
    if entry
        .get("token_request_auth_method")
        .and_then(Value::as_str)
        == Some("basic")
    {
        table.insert("client_auth".into(), "client_secret_basic".into());
    }
    if entry.get("body_format").and_then(Value::as_str) == Some("json") {
        table.insert("token_body".into(), "json".into());
    }
    if let Some(scopes) = entry.get("default_scopes").and_then(Value::as_array) {
        let scopes: Vec<toml::Value> = scopes
            .iter()
            .filter_map(scalar)
            .map(toml::Value::from)
            .collect();
        table.insert("scopes".into(), scopes.into());
    }
    if let Some(separator) = entry.get("scope_separator").and_then(Value::as_str) {
        table.insert("scope_separator".into(), separator.into());
    }
    match verify_url(entry, ctx) {
        Ok(url) => {
            table.insert("verify_url".into(), url.into());
        }
        // The token endpoint checks the client id and secret.
        Err(NoVerification::Undeclared(what)) => ctx.notes.push(format!(
            "validated at its token endpoint: Nango {what}; connecting and every sync ask for a \
             token, and the account is the client id"
        )),
        Err(NoVerification::Refused(reason)) => return Err(reason),
    }
    form(
        entry,
        &[
            ("client_id", "client_id", "Client ID", "text"),
            (
                "client_secret",
                "client_secret",
                "Client secret",
                "password",
            ),
        ],
        file,
    );
    file.insert("auth".into(), "oauth2_client_credentials".into());
    file.insert("oauth2_client_credentials".into(), table.into());
    Ok(())
}

/// The URL of the entry's `proxy.verification`: a GET of its first
/// endpoint under `proxy.base_url` (or the verification's own base).
fn verification_url(entry: &Map<String, Value>) -> Option<String> {
    let verification = entry.get("proxy")?.get("verification")?;
    let method = verification
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("GET");
    if !method.eq_ignore_ascii_case("GET") {
        return None;
    }
    let endpoint = verification
        .get("endpoints")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
        .and_then(Value::as_str)
        .or_else(|| verification.get("endpoint").and_then(Value::as_str))?;
    let base = verification
        .get("base_url_override")
        .and_then(Value::as_str)
        .or_else(|| proxy_base(entry))?;
    if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        return Some(endpoint.to_owned());
    }
    Some(format!(
        "{}/{}",
        base.trim_end_matches('/'),
        endpoint.trim_start_matches('/')
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-written entries in Nango's format.
    const FIXTURE: &str = r#"
helpdesk:
    display_name: Helpdesk
    auth_mode: OAUTH2
    authorization_url: https://${connectionConfig.subdomain}.helpdesk.example/oauth/authorize
    token_url: https://${connectionConfig.subdomain}.helpdesk.example/oauth/token
    token_request_auth_method: basic
    body_format: json
    default_scopes: [read, write]
    scope_separator: ','
    authorization_params:
        response_type: code
        prompt: consent
    token_params:
        grant_type: authorization_code
        expires_in: 1800
    token_response_metadata: [account.id]
    proxy:
        base_url: https://${connectionConfig.subdomain}.helpdesk.example/api
        verification:
            method: GET
            endpoints: [/v2/users/me]
    docs: https://docs.helpdesk.example/oauth
    connection_config:
        subdomain:
            type: string
            title: Helpdesk subdomain
            description: The part before .helpdesk.example
            pattern: '^[a-z0-9-]+$'
            example: acme
helpdesk-eu:
    alias: helpdesk
    display_name: Helpdesk (EU)
    docs: https://docs.helpdesk.example/eu
regional:
    display_name: Regional
    auth_mode: OAUTH2
    authorization_url: https://${connectionConfig.region}.regional.example/auth || https://regional.example/auth
    token_url: https://${connectionConfig.region}.regional.example/token || https://regional.example/token
    docs: https://docs.regional.example
    connection_config:
        region:
            type: string
            title: Region
            enum: [us, eu]
            optional: true
anyhost:
    display_name: Any host
    auth_mode: OAUTH2
    authorization_url: https://${connectionConfig.hostname}/oauth/authorize
    token_url: https://${connectionConfig.hostname}/oauth/token
    docs: https://docs.anyhost.example
    connection_config:
        hostname:
            type: string
            title: Hostname
            format: hostname
appnamed:
    display_name: App named
    auth_mode: OAUTH2
    authorization_url: https://apps.appnamed.example/${connectionConfig.appName}/authorize
    token_url: https://api.appnamed.example/oauth/token
    docs: https://docs.appnamed.example
    connection_config:
        appName:
            type: string
            title: ''
            description: ''
            automated: true
            default_value: seller
scripted:
    display_name: Scripted
    auth_mode: OAUTH2
    authorization_url: https://scripted.example/auth
    token_url: https://scripted.example/token
    decode_url: true
    docs: https://docs.scripted.example
signed:
    display_name: Signed
    auth_mode: SIGNATURE
    docs: https://docs.signed.example
keyed:
    display_name: Keyed
    auth_mode: API_KEY
    docs: https://docs.keyed.example
    proxy:
        base_url: https://api.keyed.example
        headers:
            authorization: Token ${apiKey}
            content-type: application/json
        verification:
            method: GET
            endpoints: [/v1/me]
    credentials:
        apiKey:
            type: string
            title: Keyed API key
            description: Under Settings, API
            pattern: '^kd_[a-z0-9]+$'
twokeys:
    display_name: Two keys
    auth_mode: API_KEY
    docs: https://docs.twokeys.example
    proxy:
        base_url: https://api.twokeys.example
        headers:
            x-app-key: ${connectionConfig.appKey}
            x-app-token: ${apiKey}
        verification:
            method: GET
            endpoints: [/v1/me]
    connection_config:
        appKey:
            type: string
            title: App key
            secret: true
keyasuser:
    display_name: Key as user
    auth_mode: API_KEY
    docs: https://docs.keyasuser.example
    proxy:
        base_url: https://api.keyasuser.example
        headers:
            authorization: Basic ${base64(${apiKey}:)}
        verification:
            method: GET
            endpoints: [/v2/employees?limit=1]
    credentials:
        apiKey:
            type: string
            title: Standalone API key
twoheaders:
    display_name: Two headers
    auth_mode: API_KEY
    docs: https://docs.twoheaders.example
    proxy:
        base_url: https://api.twoheaders.example
        headers:
            apikey: ${apiKey}
            authorization: Bearer ${apiKey}
        verification:
            method: GET
            endpoints: [/rest/v1/]
tokenuser:
    display_name: Token user
    auth_mode: BASIC
    docs: https://docs.tokenuser.example
    proxy:
        base_url: https://api.tokenuser.example
        headers:
            authorization: Basic ${base64(${credentials.username}/token:${credentials.password})}
        verification:
            method: GET
            endpoints: [/api/v2/users/me]
podtoken:
    display_name: Pod token
    auth_mode: BASIC
    docs: https://docs.podtoken.example
    proxy:
        base_url: https://${connectionConfig.pod}.podtoken.example
        headers:
            client-auth-token: ${base64(${connectionConfig.tenant}+${credentials.username}:${credentials.password})}
        verification:
            method: GET
            endpoints: [/w/me]
    connection_config:
        pod:
            type: string
            title: Pod
            pattern: ^[a-z0-9-]+$
        tenant:
            type: string
            title: Tenant
            pattern: ^[A-Za-z0-9_-]+$
duolike:
    display_name: Duo-like
    auth_mode: BASIC
    docs: https://docs.duolike.example
    proxy:
        base_url: https://${connectionConfig.hostname}
        headers:
            date: ${now:ddd, DD MMM YYYY HH:mm:ss ZZ}
            authorization: 'Basic ${base64(${credentials.username}:${hmacSha1Hex(${now:ddd, DD MMM YYYY HH:mm:ss ZZ}

              ${method}

              ${host}

              ${path}

              ${params}, ${credentials.password})})}'
        verification:
            method: GET
            endpoints: [/admin/v1/info/summary]
    connection_config:
        hostname:
            type: string
            title: API hostname
            pattern: api-[a-z0-9]+\.duolike\.example
signedmsg:
    display_name: Signed messages
    auth_mode: BASIC
    docs: https://docs.signedmsg.example
    proxy:
        base_url: https://api.signedmsg.example/api
        headers:
            authorization: Signature keyid="${credentials.username}"
            content-type: application/json
            content-digest: 'sha-256=:${sha256Base64(${bodyCanonicalParams})}:'
            signature-input: sig=("@method" "@target-uri" "content-digest" "content-type");alg="ed25519";created=${now:X};expires=${now+1:minutes:X};keyid="${credentials.username}"
            signature: 'sig=:${ed25519Sign("@method": ${method}, ${credentials.password})}:'
        verification:
            method: GET
            endpoints: [/v0/request-forms]
botkey:
    display_name: Bot key
    auth_mode: API_KEY
    docs: https://docs.botkey.example
    proxy:
        base_url: https://api.botkey.example/bot${apiKey}
        verification:
            method: GET
            endpoints: [/getMe]
bodykey:
    display_name: Body key
    auth_mode: API_KEY
    docs: https://docs.bodykey.example
    proxy:
        base_url: https://api.bodykey.example
        body:
            auth:
                key: ${apiKey}
                account: ${connectionConfig.account}
            limit: 1
        verification:
            method: POST
            endpoints: [/users/ping]
    connection_config:
        account:
            type: string
            title: Account
            pattern: ^[0-9]+$
awsregional:
    display_name: AWS regional
    auth_mode: BASIC
    docs: https://docs.aws.example
    proxy:
        base_url: https://inspector2.${connectionConfig.region}.amazonaws.com
        headers:
            authorization: ${awsSigV4(${credentials.username}, ${credentials.password}, ${connectionConfig.region}, inspector2, inspector2.${connectionConfig.region}.amazonaws.com)}
            x-amz-date: ${now:YYYYMMDDTHHmmss[Z]}
    credentials_verification_script: awsIamCredentialsVerification
    connection_config:
        region:
            type: string
            title: Region
            pattern: ^[a-z0-9-]+$
querykey:
    display_name: Query key
    auth_mode: API_KEY
    docs: https://docs.querykey.example
    proxy:
        base_url: https://api.querykey.example
        query:
            apikey: ${apiKey}
        verification:
            method: GET
            endpoints: ['/v1/users?apikey=${credentials.apiKey}&limit=1']
queried:
    display_name: Queried
    auth_mode: API_KEY
    docs: https://docs.queried.example
    proxy:
        base_url: https://api.queried.example
        query:
            key: ${apiKey}
        headers:
            x-account: ${connectionConfig.account}
        verification:
            endpoints: [/me]
passworded:
    display_name: Passworded
    auth_mode: BASIC
    docs: https://docs.passworded.example
    proxy:
        base_url: https://${connectionConfig.subdomain}.passworded.example/api
        verification:
            method: GET
            endpoints: [/whoami]
    connection_config:
        subdomain:
            type: string
            title: Subdomain
            pattern: '^[a-z0-9-]+$'
    credentials:
        username:
            type: string
            hidden: true
            default_value: ''
        password:
            type: string
            title: API token
machine:
    display_name: Machine
    auth_mode: OAUTH2_CC
    docs: https://docs.machine.example
    token_url: https://auth.machine.example/oauth/token
    token_request_auth_method: basic
    token_params:
        grant_type: client_credentials
        audience: https://api.machine.example
    proxy:
        base_url: https://api.machine.example
        verification:
            method: GET
            endpoints: [/v2/account]
"#;

    fn imported<'a>(import: &'a Import, id: &str) -> &'a Imported {
        import
            .imported
            .iter()
            .find(|e| e.id.as_str() == id)
            .unwrap_or_else(|| panic!("{id} not imported: {:?}", import.skipped))
    }

    fn skipped<'a>(import: &'a Import, id: &str) -> &'a str {
        &import
            .skipped
            .iter()
            .find(|e| e.id == id)
            .unwrap_or_else(|| panic!("{id} not skipped"))
            .reason
    }

    #[test]
    fn an_entry_with_settings_basic_client_auth_and_json_bodies_becomes_a_valid_file() {
        let import = import(FIXTURE, None).unwrap();

        let helpdesk = imported(&import, "helpdesk");
        let entry = CatalogEntry::from_text(helpdesk.id.clone(), &helpdesk.text, "x").unwrap();
        let super::super::Auth::OAuth2(oauth2) = &entry.auth else {
            panic!("not OAuth 2.0: {}", helpdesk.text);
        };
        assert_eq!(
            oauth2.authorize_url.as_str(),
            "https://{subdomain}.helpdesk.example/oauth/authorize"
        );
        assert_eq!(
            oauth2.client_auth,
            super::super::ClientAuth::ClientSecretBasic
        );
        assert_eq!(oauth2.token_body, super::super::TokenBody::Json);
        assert_eq!(oauth2.scopes, ["read", "write"]);
        assert_eq!(oauth2.scope_separator, ",");
        assert!(oauth2.pkce);
        assert_eq!(
            oauth2.userinfo_url.as_ref().unwrap().as_str(),
            "https://{subdomain}.helpdesk.example/api/v2/users/me"
        );
        assert_eq!(
            oauth2.token_params.keys().collect::<Vec<_>>(),
            ["expires_in"]
        );
        assert_eq!(
            oauth2.authorize_params.keys().collect::<Vec<_>>(),
            ["prompt"]
        );
        assert_eq!(oauth2.token_values[0].name, "account.id");
        assert_eq!(entry.settings[0].name, "subdomain");
        assert_eq!(entry.settings[0].pattern.as_deref(), Some("[a-z0-9-]+"));
        assert!(helpdesk.notes.is_empty(), "{:?}", helpdesk.notes);
        assert_eq!(import.counts()["OAUTH2"].ready, 4);
    }

    #[test]
    fn an_alias_takes_the_entry_it_names_with_its_own_keys_over_it() {
        let import = import(FIXTURE, None).unwrap();

        let eu = imported(&import, "helpdesk-eu");

        assert!(
            eu.text.contains("display_name = \"Helpdesk (EU)\""),
            "{}",
            eu.text
        );
        assert!(
            eu.text.contains("helpdesk.example/oauth/token"),
            "{}",
            eu.text
        );
    }

    #[test]
    fn the_first_of_alternative_addresses_is_kept_and_its_setting_becomes_required() {
        let import = import(FIXTURE, None).unwrap();

        let regional = imported(&import, "regional");

        assert!(
            regional
                .text
                .contains("https://{region}.regional.example/auth"),
            "{}",
            regional.text
        );
        assert!(
            !regional.text.contains("required = false"),
            "{}",
            regional.text
        );
        assert!(
            regional.notes.iter().any(|n| n.contains("||")),
            "{:?}",
            regional.notes
        );
        assert!(regional.ready);
        assert!(
            regional.text.contains("token_only = true"),
            "{}",
            regional.text
        );
        assert!(regional.notes.iter().any(|n| n.starts_with(TOKEN_ONLY)));
    }

    #[test]
    fn entries_the_catalog_cannot_express_are_skipped_with_what_they_lack() {
        let import = import(FIXTURE, None).unwrap();

        assert_eq!(
            skipped(&import, "scripted"),
            "uses decode_url, which the catalog cannot express"
        );
        assert_eq!(
            skipped(&import, "signed"),
            "auth mode SIGNATURE is not supported yet"
        );
        let counts = import.counts();
        assert_eq!(
            counts["OAUTH2"],
            Count {
                imported: 5,
                ready: 4,
                skipped: 1
            }
        );
    }

    #[test]
    fn a_setting_that_chooses_the_host_freely_is_fixed_by_the_operator() {
        let import = import(FIXTURE, None).unwrap();

        let anyhost = imported(&import, "anyhost");
        assert!(!anyhost.ready);
        assert!(
            anyhost
                .notes
                .iter()
                .any(|n| n.starts_with("needs settings hostname.value")),
            "{:?}",
            anyhost.notes
        );
        let entry = CatalogEntry::from_text(anyhost.id.clone(), &anyhost.text, "x").unwrap();
        assert_eq!(entry.settings[0].value.as_deref(), Some(""));
        assert!(!entry.settings[0].is_asked());

        // Filled in by the operator, every connection gets the value, and
        // none may give another.
        let filled = anyhost
            .text
            .replace("value = \"\"", "value = \"lms.example.edu\"");
        let entry = CatalogEntry::from_text(anyhost.id.clone(), &filled, "x").unwrap();
        let values = entry.check_settings(&BTreeMap::new()).unwrap();
        assert_eq!(values["hostname"], "lms.example.edu");
        let super::super::Auth::OAuth2(oauth2) = &entry.auth else {
            panic!("not oauth2");
        };
        assert_eq!(
            oauth2.token_url.render(&values).unwrap().as_str(),
            "https://lms.example.edu/oauth/token"
        );
        let chosen = BTreeMap::from([("hostname".to_owned(), "evil.example".to_owned())]);
        let refused = entry.check_settings(&chosen).unwrap_err();
        assert_eq!(refused.name, "hostname");
        assert!(
            refused.message.contains("set by the operator"),
            "{}",
            refused.message
        );

        // A value Nango fills in itself takes its default when it has one.
        let appnamed = imported(&import, "appnamed");
        assert!(appnamed.ready, "{:?}", appnamed.notes);
        let entry = CatalogEntry::from_text(appnamed.id.clone(), &appnamed.text, "x").unwrap();
        assert_eq!(entry.settings[0].value.as_deref(), Some("seller"));
    }

    #[test]
    fn api_key_basic_and_client_credentials_entries_become_valid_files() {
        let import = import(FIXTURE, None).unwrap();

        let keyed = imported(&import, "keyed");
        let entry = CatalogEntry::from_text(keyed.id.clone(), &keyed.text, "x").unwrap();
        let super::super::Auth::ApiKey(key) = &entry.auth else {
            panic!("not api_key: {}", keyed.text);
        };
        assert_eq!(key.header.as_deref(), Some("authorization"));
        assert_eq!(key.prefix, "Token ");
        assert_eq!(
            key.verify_url.as_ref().unwrap().as_str(),
            "https://api.keyed.example/v1/me"
        );
        assert_eq!(entry.form[0].label, "Keyed API key");
        assert_eq!(entry.form[0].pattern.as_deref(), Some("kd_[a-z0-9]+"));

        let basic = imported(&import, "passworded");
        let entry = CatalogEntry::from_text(basic.id.clone(), &basic.text, "x").unwrap();
        let super::super::Auth::Basic(settings) = &entry.auth else {
            panic!("not basic: {}", basic.text);
        };
        assert_eq!(
            settings.verify_url.as_ref().unwrap().as_str(),
            "https://{subdomain}.passworded.example/api/whoami"
        );
        assert!(!entry.form[0].required, "the hidden user name is optional");
        assert_eq!(entry.form[1].label, "API token");

        let machine = imported(&import, "machine");
        let entry = CatalogEntry::from_text(machine.id.clone(), &machine.text, "x").unwrap();
        let super::super::Auth::ClientCredentials(cc) = &entry.auth else {
            panic!("not client credentials: {}", machine.text);
        };
        assert_eq!(
            cc.token_url.as_str(),
            "https://auth.machine.example/oauth/token"
        );
        assert_eq!(cc.client_auth, super::super::ClientAuth::ClientSecretBasic);
        assert_eq!(cc.token_params.keys().collect::<Vec<_>>(), ["audience"]);
        assert_eq!(
            cc.verify_url.as_ref().unwrap().as_str(),
            "https://api.machine.example/v2/account"
        );

        assert_eq!(
            skipped(&import, "queried"),
            "sends the header x-account built from \"${connectionConfig.account}\" \
             (proxy.headers): uses ${connectionConfig.account}, which no connection_config \
             declares"
        );
    }

    #[test]
    fn keys_and_user_names_in_headers_and_a_repeated_query_key_import() {
        let import = import(FIXTURE, None).unwrap();
        let load = |id: &str| {
            let entry = imported(&import, id);
            CatalogEntry::from_text(entry.id.clone(), &entry.text, "x").unwrap()
        };

        let twokeys = load("twokeys");
        assert!(twokeys.settings[0].secret);
        let super::super::Auth::ApiKey(key) = &twokeys.auth else {
            panic!("not api_key");
        };
        assert_eq!(key.header.as_deref(), Some("x-app-token"));
        assert_eq!(key.headers["x-app-key"].as_str(), "{appKey}");

        let keyasuser = load("keyasuser");
        let super::super::Auth::Basic(basic) = &keyasuser.auth else {
            panic!("not basic");
        };
        assert_eq!(
            basic.verify_url.as_ref().unwrap().as_str(),
            "https://api.keyasuser.example/v2/employees?limit=1"
        );
        assert_eq!(keyasuser.form[0].label, "Standalone API key");
        assert!(!keyasuser.form[1].required);

        let twoheaders = load("twoheaders");
        let super::super::Auth::ApiKey(key) = &twoheaders.auth else {
            panic!("not api_key");
        };
        assert_eq!(key.header.as_deref(), Some("apikey"));
        assert_eq!(key.headers["authorization"].as_str(), "Bearer {api_key}");

        let tokenuser = load("tokenuser");
        let super::super::Auth::Basic(basic) = &tokenuser.auth else {
            panic!("not basic");
        };
        assert_eq!(
            basic.username.as_ref().unwrap().as_str(),
            "{username}/token"
        );
        assert!(basic.headers.is_empty());

        let podtoken = load("podtoken");
        let super::super::Auth::Basic(basic) = &podtoken.auth else {
            panic!("not basic");
        };
        assert_eq!(basic.header.as_deref(), Some("client-auth-token"));
        assert_eq!(
            basic.username.as_ref().unwrap().as_str(),
            "{tenant}+{username}"
        );
        assert!(basic.headers.is_empty());

        let duo = load("duolike");
        let super::super::Auth::Basic(basic) = &duo.auth else {
            panic!("not basic");
        };
        assert_eq!(
            basic.duo_signature.map(|d| d.digest),
            Some(super::super::DuoDigest::Sha1)
        );
        assert!(basic.headers.is_empty(), "signing sets Date");
        assert_eq!(
            basic.verify_url.as_ref().unwrap().as_str(),
            "https://{hostname}/admin/v1/info/summary"
        );

        let signedmsg = load("signedmsg");
        let super::super::Auth::Basic(basic) = &signedmsg.auth else {
            panic!("not basic");
        };
        let signature = basic.http_signature.as_ref().expect("signed");
        assert_eq!(
            signature.components,
            ["@method", "@target-uri", "content-digest", "content-type"]
        );
        assert_eq!(
            (signature.expires_secs, signature.alg_param),
            (Some(60), true)
        );
        assert_eq!(basic.headers["content-type"].as_str(), "application/json");
        assert_eq!(
            basic.headers["authorization"].as_str(),
            "Signature keyid=\"{username}\""
        );

        let botkey = load("botkey");
        let super::super::Auth::ApiKey(key) = &botkey.auth else {
            panic!("not api_key");
        };
        assert_eq!((key.header.as_ref(), key.query.as_ref()), (None, None));
        assert_eq!(
            key.verify_url.as_ref().unwrap().as_str(),
            "https://api.botkey.example/bot{api_key}/getMe"
        );
        assert!(botkey.api_base_urls.is_empty(), "no key in an API root");

        let bodykey = load("bodykey");
        let super::super::Auth::ApiKey(key) = &bodykey.auth else {
            panic!("not api_key");
        };
        assert_eq!(key.verify_method, super::super::VerifyMethod::Post);
        let mut names = key.verify_json.as_ref().unwrap().names();
        names.sort_unstable();
        assert_eq!(names, ["account", "api_key"]);
        assert!(
            key.verify_url.is_none(),
            "Nango's POST verification is not taken"
        );

        let aws = load("awsregional");
        let super::super::Auth::Basic(basic) = &aws.auth else {
            panic!("not basic");
        };
        let sigv4 = basic.aws_sigv4.as_ref().expect("signed for AWS");
        assert_eq!(
            (sigv4.region.as_str(), sigv4.service.as_str()),
            ("{region}", "sts")
        );
        assert_eq!(
            basic.verify_url.as_ref().unwrap().as_str(),
            "https://sts.{region}.amazonaws.com/"
        );
        assert_eq!(basic.verify_method, super::super::VerifyMethod::Post);
        assert_eq!(basic.verify_form["Action"].as_str(), "GetCallerIdentity");
        assert!(basic.headers.is_empty(), "signing sets x-amz-date");
        let region = &aws.settings[0];
        assert!(region.check("eu-west-1").is_ok() && region.check("us-gov-west-1").is_ok());
        assert!(
            region.check("s3-us-west-2").is_err(),
            "a bucket's path-style host"
        );
        assert!(imported(&import, "awsregional").notes[0].contains("signed for AWS"));

        let querykey = load("querykey");
        let super::super::Auth::ApiKey(key) = &querykey.auth else {
            panic!("not api_key");
        };
        assert_eq!(key.query.as_deref(), Some("apikey"));
        assert_eq!(
            key.verify_url.as_ref().unwrap().as_str(),
            "https://api.querykey.example/v1/users?limit=1"
        );
    }

    #[test]
    fn only_imports_the_named_entries_and_refuses_unknown_ones() {
        let only: BTreeSet<String> = ["regional".to_owned()].into();
        let import = import(FIXTURE, Some(&only)).unwrap();
        assert_eq!(import.imported.len(), 1);
        assert!(import.skipped.is_empty());

        let unknown: BTreeSet<String> = ["nope".to_owned()].into();
        let error = super::import(FIXTURE, Some(&unknown)).unwrap_err();
        assert_eq!(error.to_string(), "no provider nope in the definitions");
    }

    #[test]
    fn text_that_is_no_mapping_of_entries_is_refused() {
        assert!(matches!(import("- a\n- b\n", None), Err(NangoError::Shape)));
        assert!(matches!(import("a: [", None), Err(NangoError::Yaml(_))));
    }
}
