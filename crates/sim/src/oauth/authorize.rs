//! The authorize endpoint: signs a user in, consents at once or shows a
//! consent page, and redirects back with a code or a denial.

use std::sync::Arc;

use axum::{
    extract::{Query, State as AxumState},
    http::{HeaderValue, StatusCode, header::LOCATION},
    response::{IntoResponse, Response},
    routing::{MethodRouter, get},
};
use chrono::{TimeDelta, Utc};
use serde::Deserialize;

use super::{
    Challenge, Code, Encoding, Grantee, Param, Quirks, Refresh, ResponseType, ScopeRule, Server,
    form_encode,
};
use crate::{html, state::State};

/// The authorize endpoint of the provider with `quirks` (GET).
pub(crate) fn authorize(quirks: &'static Quirks) -> MethodRouter<Arc<State>> {
    get(
        move |AxumState(state): AxumState<Arc<State>>,
              Query(raw): Query<Vec<(String, String)>>,
              Query(query): Query<AuthorizeQuery>| async move {
            respond(quirks, &state, &raw, &query)
        },
    )
}

/// The query of the authorize endpoint.
#[derive(Deserialize)]
struct AuthorizeQuery {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    /// `offline` asks for a refresh token, where the provider wants it
    /// asked for.
    access_type: Option<String>,
    /// `consent` (in a space-separated list) forces the consent screen,
    /// and with it a new refresh token.
    prompt: Option<String>,
    login_hint: Option<String>,
    /// `page` shows the consent page; `granted` or `denied` is what its
    /// buttons send.
    consent: Option<String>,
}

/// Consents at once (302 to `redirect_uri` with a code) or shows the
/// consent page; a denial from the page redirects with the provider's
/// error parameters.
fn respond(
    quirks: &'static Quirks,
    state: &State,
    raw: &[(String, String)],
    query: &AuthorizeQuery,
) -> Response {
    let checked = state.oauth(quirks.provider, |server| server.check(query));
    let (user, consent_page) = match checked {
        Ok(checked) => checked,
        Err(message) => return error_page(quirks, message),
    };
    let Some(redirect_uri) = query.redirect_uri.as_deref() else {
        return error_page(quirks, quirks.authorize.missing_redirect_uri);
    };
    match query.consent.as_deref() {
        Some("granted") => {}
        Some("denied") => {
            let params = params(quirks.authorize.denied, query, "");
            return redirect(quirks, redirect_uri, &params);
        }
        Some("page") => return consent(quirks, &user, raw),
        _ if consent_page => return consent(quirks, &user, raw),
        _ => {}
    }
    let code = state.oauth(quirks.provider, |server| {
        server.issue_code(user, query, redirect_uri)
    });
    let params = params(quirks.authorize.granted, query, &code);
    redirect(quirks, redirect_uri, &params)
}

impl Server {
    /// Checks the authorize request as the provider does, in its order:
    /// the user who signs in and whether to show the consent page, or the
    /// error page's message.
    fn check(&self, query: &AuthorizeQuery) -> Result<(String, bool), &'static str> {
        let authorize = &self.quirks.authorize;
        if query.client_id.as_deref() != Some(self.settings.client_id.as_str()) {
            return Err(authorize.invalid_client);
        }
        let response_type = query.response_type.as_deref();
        match authorize.response_type {
            ResponseType::Code(message) if response_type != Some("code") => return Err(message),
            ResponseType::CodeIfGiven(message)
                if response_type.is_some_and(|kind| kind != "code") =>
            {
                return Err(message);
            }
            ResponseType::Code(_) | ResponseType::CodeIfGiven(_) => {}
        }
        let scope = query.scope.as_deref();
        match authorize.scope {
            ScopeRule::NonEmpty(message) if scope.is_none_or(str::is_empty) => {
                return Err(message);
            }
            ScopeRule::NonBlank(message) if scope.is_none_or(|scope| scope.trim().is_empty()) => {
                return Err(message);
            }
            ScopeRule::Optional | ScopeRule::NonEmpty(_) | ScopeRule::NonBlank(_) => {}
        }
        let user = match query.login_hint.as_deref().filter(|_| authorize.login_hint) {
            Some(hint) => self.settings.users.iter().find(|user| *user == hint),
            None => self.settings.users.first(),
        };
        user.map(|user| (user.clone(), self.settings.consent_page))
            .ok_or(authorize.no_user)
    }

    /// A code for `user`'s consent to `query`, to be redirected to
    /// `redirect_uri`.
    fn issue_code(&mut self, user: String, query: &AuthorizeQuery, redirect_uri: &str) -> String {
        let quirks = self.quirks;
        let code = self.next(quirks.tokens.code_prefix);
        let challenge = query
            .code_challenge
            .clone()
            .filter(|_| quirks.authorize.pkce)
            .map(|value| Challenge {
                value,
                method: query
                    .code_challenge_method
                    .clone()
                    .unwrap_or_else(|| "plain".to_owned()),
            });
        let refresh = match self.settings.refresh {
            Refresh::Never => false,
            Refresh::Always => true,
            Refresh::OfflineFirstOrForced => {
                let offline = query.access_type.as_deref() == Some("offline");
                let forced = query
                    .prompt
                    .as_deref()
                    .is_some_and(|prompt| prompt.split(' ').any(|prompt| prompt == "consent"));
                let first = offline && self.offline_grants.insert(user.clone());
                offline && (first || forced)
            }
        };
        let scope = query.scope.clone().unwrap_or_default();
        let grantee = Grantee {
            user,
            scopes: quirks.authorize.scope_syntax.split(&scope),
            scope,
            expires: quirks
                .tokens
                .code_secs
                .map(|secs| Utc::now() + TimeDelta::seconds(secs)),
        };
        let grant = Code {
            grantee,
            redirect_uri: redirect_uri.to_owned(),
            challenge,
            refresh,
        };
        self.codes.insert(code.clone(), grant);
        code
    }
}

/// The values of redirect parameters `names`, for `query` and `code`.
fn params<'a>(names: &'a [Param], query: &AuthorizeQuery, code: &str) -> Vec<(&'a str, String)> {
    names
        .iter()
        .filter_map(|param| match param {
            Param::Code => Some(("code", code.to_owned())),
            Param::State => query.state.clone().map(|state| ("state", state)),
            Param::Scope => Some(("scope", query.scope.clone().unwrap_or_default())),
            Param::Fixed(name, value) => Some((*name, (*value).to_owned())),
        })
        .collect()
}

/// A 302 to `uri` with `params` added to its query, in the provider's
/// encoding and with its fragment.
pub(crate) fn redirect(quirks: &Quirks, uri: &str, params: &[(&str, String)]) -> Response {
    let authorize = &quirks.authorize;
    let query: Vec<String> = params
        .iter()
        .map(|(name, value)| format!("{name}={}", encode(authorize.encoding, value)))
        .collect();
    let separator = if uri.contains('?') { '&' } else { '?' };
    let location = format!("{uri}{separator}{}{}", query.join("&"), authorize.fragment);
    match HeaderValue::from_str(&location) {
        Ok(location) => (StatusCode::FOUND, [(LOCATION, location)]).into_response(),
        Err(_) => error_page(quirks, authorize.invalid_redirect_uri),
    }
}

fn encode(encoding: Encoding, value: &str) -> String {
    match encoding {
        Encoding::Percent => value
            .bytes()
            .map(|byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(byte).to_string()
                }
                _ => format!("%{byte:02X}"),
            })
            .collect(),
        Encoding::Form => form_encode(value),
    }
}

/// The consent page of `user`, whose buttons send the request `raw` back.
fn consent(quirks: &Quirks, user: &str, raw: &[(String, String)]) -> Response {
    let page = &quirks.authorize.page;
    let (before, after) = page.user;
    let body = format!(
        "<h1>{}</h1><p>{before}{}{after}</p>{}",
        page.heading,
        html::escape(user),
        html::consent_form(raw, page.deny)
    );
    html::document(StatusCode::OK, Some(page.title), &body)
}

fn error_page(quirks: &Quirks, message: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p>{}</p>",
        quirks.authorize.page.error_heading,
        html::escape(message)
    );
    html::document(StatusCode::BAD_REQUEST, None, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_unreserved_bytes_and_form_encoding_turns_spaces_to_plus() {
        assert_eq!(encode(Encoding::Percent, "a b~c/"), "a%20b~c%2F");
        assert_eq!(
            encode(Encoding::Form, "Permissions error."),
            "Permissions+error."
        );
    }
}
