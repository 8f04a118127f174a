//! The quirks of Acme's OAuth 2.0 server, which has none beyond RFC 6749:
//! flat `{"error", "error_description"}` bodies (400, 401 for a client it
//! does not know), PKCE when asked for, refresh tokens on every code
//! exchange, codes that live ten minutes, `scope` echoed as requested.
//! What an app requires of token requests (client authentication method,
//! body format, extra parameters) is its [`Rules`](crate::oauth::Rules).

use axum::{http::StatusCode, response::Response};

use crate::{
    fault::Fault,
    oauth::{
        Authorize, Encoding, Grant, GrantTypes, Page, Param, Provider, Quirks, ResponseType,
        ScopeEcho, ScopeRule, ScopeSyntax, Token, TokenError, Tokens, error_body,
    },
};

pub(super) static QUIRKS: Quirks = Quirks {
    provider: Provider::Acme,
    tokens: Tokens {
        code_prefix: "acme_code_",
        access_prefix: "acme_at_",
        refresh_prefix: "acme_rt_",
        code_secs: Some(600),
        access_secs: 3600,
        refresh_secs: None,
        long_lived_secs: None,
    },
    authorize: Authorize {
        invalid_client: "invalid_client: the client is not registered.",
        response_type: ResponseType::Code("unsupported_response_type: only code is supported."),
        scope: ScopeRule::Optional,
        scope_syntax: ScopeSyntax::Spaces,
        login_hint: true,
        no_user: "access_denied: no user can sign in.",
        missing_redirect_uri: "invalid_request: redirect_uri is missing.",
        invalid_redirect_uri: "invalid_request: redirect_uri is not valid.",
        pkce: true,
        encoding: Encoding::Percent,
        fragment: "",
        granted: &[Param::Code, Param::State],
        denied: &[Param::Fixed("error", "access_denied"), Param::State],
        page: Page {
            title: "Acme - Sign in",
            heading: "connector-fleet wants to access your Acme account",
            user: ("Signed in as ", ""),
            deny: "Deny",
            error_heading: "Acme could not start the sign-in",
        },
    },
    token: Token {
        grant_types: GrantTypes::Standard,
        code_by_get: false,
        basic_auth: true,
        token_type: "Bearer",
        scope: ScopeEcho::AsRequested,
        refresh_scope: None,
        repeat_refresh_token: false,
        error: token_error,
        fault: token_fault,
    },
};

fn token_error(error: TokenError) -> Response {
    let (status, error, description) = match error {
        TokenError::UnknownClient | TokenError::WrongSecret => (
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed.",
        ),
        TokenError::UnsupportedGrant | TokenError::CodeByPost => (
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The grant type is not supported.",
        ),
        TokenError::MissingCode | TokenError::MissingExchangeToken => (
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "A required parameter is missing.",
        ),
        TokenError::UnknownCode
        | TokenError::UsedCode
        | TokenError::ExpiredCode
        | TokenError::RedirectUriMismatch
        | TokenError::MissingVerifier
        | TokenError::WrongVerifier
        | TokenError::InvalidRefreshToken
        | TokenError::InvalidAccessToken
        | TokenError::ExpiredAccessToken(_) => (
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The grant is invalid, expired or revoked.",
        ),
        TokenError::UnknownRevokedToken => (
            StatusCode::BAD_REQUEST,
            "invalid_token",
            "The token is invalid or revoked.",
        ),
    };
    error_body(status, error, description)
}

fn token_fault(fault: &Fault, _: Grant) -> Option<Response> {
    match fault {
        Fault::RateLimited { .. } => Some(error_body(
            StatusCode::TOO_MANY_REQUESTS,
            "slow_down",
            "Too many requests.",
        )),
        Fault::Unavailable { .. } => Some(error_body(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "The service is temporarily unavailable.",
        )),
        Fault::InvalidGrant => Some(error_body(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The grant is invalid, expired or revoked.",
        )),
        Fault::Slow { .. }
        | Fault::ExpiredAccessToken
        | Fault::Redirect { .. }
        | Fault::StripAuthorization => None,
    }
}
