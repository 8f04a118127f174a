//! The token endpoint (the code exchange, refresh, the long-lived token
//! exchange) and revocation.

use std::{collections::HashMap, sync::Arc};

use axum::{
    Form, Json,
    body::Bytes,
    extract::{RawQuery, State as AxumState},
    http::{
        HeaderMap, Method, StatusCode,
        header::{AUTHORIZATION, CONTENT_TYPE},
    },
    response::{IntoResponse, Response},
    routing::{MethodRouter, get, post},
};
use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD},
};
use chrono::Utc;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::{
    ClientAuth, Grant, Grantee, Quirks, ScopeEcho, Server, TokenError, TokenRequest, error_body,
};
use crate::{
    fault::{self, Fault},
    state::State,
};

type Params = HashMap<String, String>;

/// A refusal as RFC 6749 words it: the status, `error` and
/// `error_description`.
type Refusal = (StatusCode, &'static str, &'static str);

/// The token endpoint of the provider with `quirks`: POST, and GET too
/// where the code exchange is a GET. A POST's parameters are a form, or a
/// JSON object where its `Content-Type` says so; a GET's are its query.
pub(crate) fn token(quirks: &'static Quirks) -> MethodRouter<Arc<State>> {
    let handler = move |AxumState(state): AxumState<Arc<State>>,
                        method: Method,
                        headers: HeaderMap,
                        RawQuery(query): RawQuery,
                        body: Bytes| async move {
        let Some((params, json)) = parameters(&method, &headers, query.as_deref(), &body) else {
            return error_body(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The request body is not a form or a JSON object.",
            );
        };
        let seen = TokenRequest {
            grant_type: param(&params, "grant_type").to_owned(),
            basic_auth: basic_credentials(&headers).is_some(),
            json,
            params: params.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        };
        state.oauth(quirks.provider, |server| server.saw(seen));
        if let Err((status, error, description)) = state.oauth(quirks.provider, |server| {
            server.follows_rules(&headers, &params, json)
        }) {
            return error_body(status, error, description);
        }
        respond(quirks, &state, &method, &headers, &params).await
    };
    if quirks.token.code_by_get {
        get(handler).post(handler)
    } else {
        post(handler)
    }
}

/// The revocation endpoint of the provider with `quirks` (POST `token`):
/// 200 `{}`, or the provider's refusal of a token that is unknown or
/// already revoked.
pub(crate) fn revoke(quirks: &'static Quirks) -> MethodRouter<Arc<State>> {
    post(
        move |AxumState(state): AxumState<Arc<State>>, Form(params): Form<Params>| async move {
            let token = params.get("token").map(String::as_str).unwrap_or_default();
            if state.oauth(quirks.provider, |server| server.revoke(token)) {
                Json(json!({})).into_response()
            } else {
                (quirks.token.error)(TokenError::UnknownRevokedToken)
            }
        },
    )
}

/// Checks the method and the client, lets the grant's user suffer their
/// fault, then gives the grant.
async fn respond(
    quirks: &'static Quirks,
    state: &State,
    method: &Method,
    headers: &HeaderMap,
    params: &Params,
) -> Response {
    let provider = quirks.provider;
    let grant_type = param(params, "grant_type");
    let grant = quirks.token.grant_types.parse(grant_type);
    if quirks.token.code_by_get && *method == Method::POST && grant == Some(Grant::Code) {
        return (quirks.token.error)(TokenError::CodeByPost);
    }
    if let Err(refusal) = state.oauth(provider, |server| server.authenticate(headers, params)) {
        return (quirks.token.error)(refusal);
    }
    let Some(grant) = grant else {
        return (quirks.token.error)(TokenError::UnsupportedGrant);
    };
    let user = state.oauth(provider, |server| server.user_of(grant, params));
    if let Some(user) = user {
        let fault = state.arrive(&provider.fault_target(&user));
        let answer = |fault: &Fault| (quirks.token.fault)(fault, grant);
        if let Some(response) = fault::suffer(fault, answer).await {
            return response;
        }
    }
    let answer = state.oauth(provider, |server| match grant {
        Grant::Code => server.exchange_code(params),
        Grant::Refresh => server.refresh(param(params, "refresh_token")),
        Grant::Exchange => server.exchange_token(param(params, "fb_exchange_token")),
    });
    match answer {
        Ok(body) => Json(body).into_response(),
        Err(refusal) => (quirks.token.error)(refusal),
    }
}

/// The parameters of a token request, and whether they came as JSON.
fn parameters(
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Option<(Params, bool)> {
    let form = |bytes: &[u8]| {
        url::form_urlencoded::parse(bytes)
            .into_owned()
            .collect::<Params>()
    };
    if *method == Method::GET {
        return Some((form(query.unwrap_or_default().as_bytes()), false));
    }
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Some((form(body), false));
    }
    let object: serde_json::Map<String, Value> = serde_json::from_slice(body).ok()?;
    let params = object
        .into_iter()
        .map(|(name, value)| match value {
            Value::String(text) => (name, text),
            other => (name, other.to_string()),
        })
        .collect();
    Some((params, true))
}

fn param<'a>(params: &'a Params, name: &str) -> &'a str {
    params.get(name).map(String::as_str).unwrap_or_default()
}

impl Server {
    /// Checks what the app's [`Rules`](super::Rules) require: the body's
    /// format, one client authentication method (RFC 6749 2.3: never
    /// two), and the parameters a grant must carry. Refusals are RFC 6749
    /// error bodies.
    fn follows_rules(
        &self,
        headers: &HeaderMap,
        params: &Params,
        json: bool,
    ) -> Result<(), Refusal> {
        let rules = &self.settings.rules;
        let refuse = |status, error, description| Err((status, error, description));
        let basic = basic_credentials(headers).is_some();
        let in_body = params.contains_key("client_secret");
        match rules.client_auth {
            ClientAuth::Quirks => return Ok(()),
            ClientAuth::Basic | ClientAuth::Post if basic && in_body => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "The client used more than one authentication method.",
                );
            }
            ClientAuth::Basic if !basic => {
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "Client authentication must use HTTP Basic (client_secret_basic).",
                );
            }
            ClientAuth::Post if basic => {
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "Client authentication must use the request body (client_secret_post).",
                );
            }
            ClientAuth::Basic | ClientAuth::Post => {}
        }
        if json != rules.json_body {
            let takes = if rules.json_body {
                "The token endpoint takes JSON bodies only."
            } else {
                "The token endpoint takes form bodies only."
            };
            return refuse(StatusCode::BAD_REQUEST, "invalid_request", takes);
        }
        let required = match param(params, "grant_type") {
            "authorization_code" => &rules.code_params,
            "refresh_token" => &rules.refresh_params,
            _ => return Ok(()),
        };
        if required
            .iter()
            .any(|(name, value)| params.get(name) != Some(value))
        {
            return refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "A required parameter is missing or has the wrong value.",
            );
        }
        Ok(())
    }

    /// Checks the client id and secret: from a Basic header where the
    /// provider takes one, else from the parameters.
    fn authenticate(&self, headers: &HeaderMap, params: &Params) -> Result<(), TokenError> {
        let basic_allowed = match self.settings.rules.client_auth {
            ClientAuth::Quirks => self.quirks.token.basic_auth,
            ClientAuth::Basic => true,
            ClientAuth::Post => false,
        };
        let basic = basic_allowed.then(|| basic_credentials(headers)).flatten();
        let (id, secret) = basic.unwrap_or_else(|| {
            (
                param(params, "client_id").to_owned(),
                param(params, "client_secret").to_owned(),
            )
        });
        if id != self.settings.client_id {
            Err(TokenError::UnknownClient)
        } else if secret != self.settings.client_secret {
            Err(TokenError::WrongSecret)
        } else {
            Ok(())
        }
    }

    /// The user whose code or token `params` present for `grant`, valid
    /// or not: whose faults the request suffers.
    fn user_of(&self, grant: Grant, params: &Params) -> Option<String> {
        let grantee = match grant {
            Grant::Code => self
                .codes
                .get(param(params, "code"))
                .map(|code| &code.grantee),
            Grant::Refresh => self.refresh_tokens.get(param(params, "refresh_token")),
            Grant::Exchange => self.access_tokens.get(param(params, "fb_exchange_token")),
        };
        grantee.map(|grantee| grantee.user.clone())
    }

    /// The code exchange: a code is taken once, before it is checked.
    fn exchange_code(&mut self, params: &Params) -> Result<Value, TokenError> {
        let code = param(params, "code");
        if code.is_empty() {
            return Err(TokenError::MissingCode);
        }
        let Some(grant) = self.codes.remove(code) else {
            return Err(if self.used_codes.contains(code) {
                TokenError::UsedCode
            } else {
                TokenError::UnknownCode
            });
        };
        self.used_codes.insert(code.to_owned());
        if grant.grantee.expired(Utc::now()) {
            return Err(TokenError::ExpiredCode);
        }
        if params.get("redirect_uri") != Some(&grant.redirect_uri) {
            return Err(TokenError::RedirectUriMismatch);
        }
        if let Some(challenge) = &grant.challenge {
            let verifier = params
                .get("code_verifier")
                .ok_or(TokenError::MissingVerifier)?;
            let computed = match challenge.method.as_str() {
                "S256" => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
                _ => verifier.clone(),
            };
            if computed != challenge.value {
                return Err(TokenError::WrongVerifier);
            }
        }
        let refresh = grant.refresh.then(|| {
            let token = self.issue_refresh(&grant.grantee);
            (token, self.quirks.tokens.refresh_secs)
        });
        Ok(self.answer(
            &grant.grantee,
            self.quirks.tokens.access_secs,
            false,
            refresh,
        ))
    }

    /// The refresh grant: a new access token; a new refresh token where
    /// they rotate, else the same one where the provider repeats it, with
    /// what is left of its life where it has one.
    fn refresh(&mut self, token: &str) -> Result<Value, TokenError> {
        let now = Utc::now();
        let grantee = self
            .refresh_tokens
            .get(token)
            .filter(|grantee| !grantee.expired(now))
            .cloned()
            .ok_or(TokenError::InvalidRefreshToken)?;
        let remaining = grantee.expires.map(|expires| (expires - now).num_seconds());
        let refresh = if self.settings.rotate_refresh_tokens {
            self.refresh_tokens.remove(token);
            let rotated = self.next(self.quirks.tokens.refresh_prefix);
            self.refresh_tokens.insert(rotated.clone(), grantee.clone());
            Some((rotated, remaining))
        } else {
            self.quirks
                .token
                .repeat_refresh_token
                .then(|| (token.to_owned(), remaining))
        };
        Ok(self.answer(&grantee, self.quirks.tokens.access_secs, true, refresh))
    }

    /// The long-lived token exchange: a still-valid access token for a
    /// long-lived one with its grant.
    fn exchange_token(&mut self, token: &str) -> Result<Value, TokenError> {
        if token.is_empty() {
            return Err(TokenError::MissingExchangeToken);
        }
        let Some(grantee) = self.access_tokens.get(token).cloned() else {
            return Err(TokenError::InvalidAccessToken);
        };
        if let Some(expires) = grantee.expires.filter(|expires| *expires <= Utc::now()) {
            return Err(TokenError::ExpiredAccessToken(expires));
        }
        let Some(secs) = self.quirks.tokens.long_lived_secs else {
            return Err(TokenError::UnsupportedGrant);
        };
        Ok(self.answer(&grantee, secs, false, None))
    }

    /// A new access token for `grantee` living `secs`, with `refresh` (a
    /// refresh token and its remaining life), as the token endpoint's JSON.
    fn answer(
        &mut self,
        grantee: &Grantee,
        secs: i64,
        refreshed: bool,
        refresh: Option<(String, Option<i64>)>,
    ) -> Value {
        let token = &self.quirks.token;
        let mut body = json!({
            "access_token": self.issue_access(grantee, secs),
            "expires_in": secs,
            "token_type": token.token_type,
        });
        let scope = match token.scope {
            ScopeEcho::AsRequested => Some(
                token
                    .refresh_scope
                    .filter(|_| refreshed)
                    .map_or_else(|| grantee.scope.clone(), str::to_owned),
            ),
            ScopeEcho::CommaSeparated => Some(grantee.scopes.join(",")),
            ScopeEcho::Omitted => None,
        };
        if let Some(scope) = scope {
            body["scope"] = json!(scope);
        }
        if let Some((refresh_token, remaining)) = refresh {
            body["refresh_token"] = json!(refresh_token);
            if let Some(remaining) = remaining {
                body["refresh_token_expires_in"] = json!(remaining);
            }
        }
        for (name, value) in &self.settings.rules.answer_fields {
            body[name] = value.clone();
        }
        body
    }
}

/// The client id and secret of a Basic `Authorization` header.
/// Each is form-urlencoded first (RFC 6749 2.3.1), and decoded here.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let encoded = headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = String::from_utf8(BASE64.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let decode = |text: &str| {
        url::form_urlencoded::parse(format!("x={text}").as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
    };
    Some((decode(id)?, decode(secret)?))
}
