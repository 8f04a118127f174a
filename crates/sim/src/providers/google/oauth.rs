//! Google's OAuth 2.0 quirks: refresh tokens only on a user's first
//! offline consent or one forced with `prompt=consent` (revoking one makes
//! the next consent a first one again, and old ones keep working after a
//! new consent), PKCE, client credentials in a Basic header or the body,
//! refresh answers without `refresh_token`, `expires_in` 3599, codes that
//! do not expire, a `login_hint` that picks the account, and flat
//! `{"error", "error_description"}` bodies, 400 but for a 401
//! `invalid_client`.

use axum::{http::StatusCode, response::Response};

use crate::{
    fault::Fault,
    oauth::{
        Authorize, Encoding, Grant, GrantTypes, Page, Param, Provider, Quirks, ResponseType,
        ScopeEcho, ScopeRule, ScopeSyntax, Token, TokenError, Tokens, error_body,
    },
};

pub(super) static QUIRKS: Quirks = Quirks {
    provider: Provider::Google,
    tokens: Tokens {
        code_prefix: "4/0A",
        access_prefix: "ya29.",
        refresh_prefix: "1//0g",
        code_secs: None,
        access_secs: 3599,
        refresh_secs: None,
        long_lived_secs: None,
    },
    authorize: Authorize {
        invalid_client: "Error 401: invalid_client. The OAuth client was not found.",
        response_type: ResponseType::Code("Error 400: invalid_request. Invalid response_type."),
        scope: ScopeRule::NonEmpty("Error 400: invalid_request. Missing required parameter: scope"),
        scope_syntax: ScopeSyntax::Spaces,
        login_hint: true,
        no_user: "Error 400: no Google account can sign in.",
        missing_redirect_uri: "Error 400: invalid_request. Missing required parameter: redirect_uri",
        invalid_redirect_uri: "Error 400: invalid_request. Invalid redirect_uri.",
        pkce: true,
        encoding: Encoding::Percent,
        fragment: "",
        granted: &[
            Param::State,
            Param::Code,
            Param::Scope,
            Param::Fixed("authuser", "0"),
            Param::Fixed("prompt", "consent"),
        ],
        denied: &[Param::Fixed("error", "access_denied"), Param::State],
        page: Page {
            title: "Sign in - Google Accounts",
            heading: "connector-fleet wants to access your Google Account",
            user: ("", "@example.test"),
            deny: "Deny",
            error_heading: "Access blocked: authorization error",
        },
    },
    token: Token {
        grant_types: GrantTypes::Standard,
        code_by_get: false,
        basic_auth: true,
        token_type: "Bearer",
        scope: ScopeEcho::AsRequested,
        refresh_scope: Some("https://www.googleapis.com/auth/analytics.readonly"),
        repeat_refresh_token: false,
        error: token_error,
        fault: token_fault,
    },
};

fn token_error(error: TokenError) -> Response {
    let (status, error, description) = match error {
        TokenError::UnknownClient => (
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The OAuth client was not found.",
        ),
        TokenError::WrongSecret => (StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized"),
        TokenError::UnsupportedGrant | TokenError::CodeByPost => (
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Invalid grant_type: ",
        ),
        TokenError::MissingCode
        | TokenError::UnknownCode
        | TokenError::UsedCode
        | TokenError::ExpiredCode => (
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Malformed auth code.",
        ),
        TokenError::RedirectUriMismatch => (
            StatusCode::BAD_REQUEST,
            "redirect_uri_mismatch",
            "Bad Request",
        ),
        TokenError::MissingVerifier => (
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Missing code verifier.",
        ),
        TokenError::WrongVerifier => (
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid code verifier.",
        ),
        TokenError::InvalidRefreshToken
        | TokenError::MissingExchangeToken
        | TokenError::InvalidAccessToken
        | TokenError::ExpiredAccessToken(_) => (
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Token has been expired or revoked.",
        ),
        TokenError::UnknownRevokedToken => (
            StatusCode::BAD_REQUEST,
            "invalid_token",
            "Token expired or revoked",
        ),
    };
    error_body(status, error, description)
}

/// A fault on the token endpoint, whatever the grant.
fn token_fault(fault: &Fault, _: Grant) -> Option<Response> {
    match fault {
        Fault::RateLimited { .. } => Some(error_body(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            "Rate limit exceeded.",
        )),
        Fault::Unavailable { .. } => Some(error_body(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "The service is currently unavailable.",
        )),
        Fault::InvalidGrant => Some(error_body(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Token has been expired or revoked.",
        )),
        Fault::Slow { .. }
        | Fault::ExpiredAccessToken
        | Fault::Redirect { .. }
        | Fault::StripAuthorization => None,
    }
}
