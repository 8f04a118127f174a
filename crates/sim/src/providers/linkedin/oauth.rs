//! LinkedIn's OAuth 2.0 quirks: 60-day access tokens, codes that live 30
//! minutes, `scope` answered comma-separated, refresh tokens only for
//! apps approved for them (365 days from the first grant; a refresh
//! answers the same one and does not extend it), client credentials in
//! the body only, `user_cancelled_authorize` on cancel, and a refresh
//! token that expired, was revoked or is unknown refused with 400
//! `invalid_request` ("The provided authorization grant or refresh token
//! is invalid, expired or revoked"), not RFC 6749's `invalid_grant`.

use axum::{http::StatusCode, response::Response};

use crate::{
    fault::Fault,
    oauth::{
        Authorize, Encoding, Grant, GrantTypes, Page, Param, Provider, Quirks, ResponseType,
        ScopeEcho, ScopeRule, ScopeSyntax, Token, TokenError, Tokens, error_body,
    },
};

pub(super) static QUIRKS: Quirks = Quirks {
    provider: Provider::LinkedIn,
    tokens: Tokens {
        code_prefix: "AQT",
        access_prefix: "AQV",
        refresh_prefix: "AQW",
        code_secs: Some(1_800),
        access_secs: 5_184_000,
        refresh_secs: Some(31_536_000),
        long_lived_secs: None,
    },
    authorize: Authorize {
        invalid_client: "The passed in client_id is invalid.",
        response_type: ResponseType::Code("The response_type must be code."),
        scope: ScopeRule::NonBlank("The scope parameter is missing."),
        scope_syntax: ScopeSyntax::Spaces,
        login_hint: false,
        no_user: "No LinkedIn member can sign in.",
        missing_redirect_uri: "The redirect_uri parameter is missing.",
        invalid_redirect_uri: "The redirect_uri is invalid.",
        pkce: false,
        encoding: Encoding::Form,
        fragment: "",
        granted: &[Param::Code, Param::State],
        denied: &[
            Param::Fixed("error", "user_cancelled_authorize"),
            Param::Fixed("error_description", "The user cancelled the authorization"),
            Param::State,
        ],
        page: Page {
            title: "LinkedIn Login, Sign in | LinkedIn",
            heading: "connector-fleet would like to access your LinkedIn account",
            user: ("Signed in as ", ""),
            deny: "Cancel",
            error_heading: "Bummer, something went wrong.",
        },
    },
    token: Token {
        grant_types: GrantTypes::Standard,
        code_by_get: false,
        basic_auth: false,
        token_type: "Bearer",
        scope: ScopeEcho::CommaSeparated,
        refresh_scope: None,
        repeat_refresh_token: true,
        error: token_error,
        fault: token_fault,
    },
};

/// What LinkedIn says of a refresh token it does not take.
const INVALID_REFRESH_TOKEN: &str =
    "The provided authorization grant or refresh token is invalid, expired or revoked";

fn token_error(error: TokenError) -> Response {
    let (status, error, description) = match error {
        TokenError::UnknownClient | TokenError::WrongSecret => (
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        ),
        TokenError::UnsupportedGrant | TokenError::CodeByPost => (
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The grant_type is not supported",
        ),
        TokenError::MissingCode
        | TokenError::UnknownCode
        | TokenError::UsedCode
        | TokenError::ExpiredCode
        | TokenError::RedirectUriMismatch
        | TokenError::MissingVerifier
        | TokenError::WrongVerifier => (
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Unable to retrieve access token: appid/redirect uri/code verifier does not match \
             authorization code. Or authorization code expired. Or external member binding exists",
        ),
        TokenError::InvalidRefreshToken
        | TokenError::MissingExchangeToken
        | TokenError::InvalidAccessToken
        | TokenError::ExpiredAccessToken(_)
        | TokenError::UnknownRevokedToken => (
            StatusCode::BAD_REQUEST,
            "invalid_request",
            INVALID_REFRESH_TOKEN,
        ),
    };
    error_body(status, error, description)
}

/// A fault on the token endpoint, whatever the grant: a rate limit
/// answers as the APIs do, in LinkedIn's own envelope.
fn token_fault(fault: &Fault, _: Grant) -> Option<Response> {
    match fault {
        Fault::RateLimited { .. } => Some(super::rate_limited()),
        Fault::Unavailable { .. } => Some(error_body(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "The service is temporarily unavailable",
        )),
        Fault::InvalidGrant => Some(error_body(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            INVALID_REFRESH_TOKEN,
        )),
        Fault::Slow { .. }
        | Fault::ExpiredAccessToken
        | Fault::Redirect { .. }
        | Fault::StripAuthorization => None,
    }
}
