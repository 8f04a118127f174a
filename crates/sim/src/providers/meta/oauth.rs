//! Facebook Login's OAuth 2.0 quirks: the code exchange is a GET with the
//! parameters in the query, as Meta documents it (a POST is refused), and
//! gives a short-lived token without refresh token; there is no refresh
//! grant, but `grant_type=fb_exchange_token` (GET or POST) trades a token
//! that is **still valid** for a long-lived one (`expires_in` 5183944).
//! Codes live ten minutes, and a used code is told apart from an unknown
//! one. Scopes are separated by commas or spaces. Errors are Graph bodies
//! on HTTP 400, and every redirect ends in `#_=_`; a denial is
//! `?error_reason=user_denied&error=access_denied&error_description=Permissions+error.`.

use axum::{http::StatusCode, response::Response};
use chrono::{TimeDelta, Utc};

use super::{
    expired, graph_error, graph_error_transient, graph_error_typed, insert, invalid_token,
    unavailable,
};
use crate::{
    fault::Fault,
    oauth::{
        Authorize, Encoding, Grant, GrantTypes, Page, Param, Provider, Quirks, ResponseType,
        ScopeEcho, ScopeRule, ScopeSyntax, Token, TokenError, Tokens,
    },
};

pub(super) static QUIRKS: Quirks = Quirks {
    provider: Provider::Meta,
    tokens: Tokens {
        code_prefix: "AQ",
        access_prefix: "EAAB",
        refresh_prefix: "",
        code_secs: Some(600),
        access_secs: 7_200,
        refresh_secs: None,
        long_lived_secs: Some(5_183_944),
    },
    authorize: Authorize {
        invalid_client: "Invalid App ID: The provided app ID does not look like a valid app ID.",
        response_type: ResponseType::CodeIfGiven("The simulator supports response_type=code only."),
        scope: ScopeRule::Optional,
        scope_syntax: ScopeSyntax::CommasOrSpaces,
        login_hint: false,
        no_user: "No Facebook account can log in.",
        missing_redirect_uri: "URL blocked: the redirect_uri parameter is missing.",
        invalid_redirect_uri: "URL blocked: the redirect_uri is invalid.",
        pkce: false,
        encoding: Encoding::Form,
        fragment: "#_=_",
        granted: &[Param::Code, Param::State],
        denied: &[
            Param::Fixed("error_reason", "user_denied"),
            Param::Fixed("error", "access_denied"),
            Param::Fixed("error_description", "Permissions error."),
            Param::State,
        ],
        page: Page {
            title: "Log in with Facebook",
            heading: "connector-fleet is requesting access to your ad accounts",
            user: ("Continue as ", ""),
            deny: "Cancel",
            error_heading: "Facebook",
        },
    },
    token: Token {
        grant_types: GrantTypes::Graph,
        code_by_get: true,
        basic_auth: false,
        token_type: "bearer",
        scope: ScopeEcho::Omitted,
        refresh_scope: None,
        repeat_refresh_token: false,
        error: token_error,
        fault: token_fault,
    },
};

fn token_error(error: TokenError) -> Response {
    let bad_request = StatusCode::BAD_REQUEST;
    match error {
        TokenError::CodeByPost => graph_error_typed(
            bad_request,
            Some("GraphMethodException"),
            100,
            None,
            "Unsupported post request. Please read the Graph API documentation at \
             https://developers.facebook.com/docs/graph-api",
        ),
        TokenError::UnknownClient => graph_error(
            bad_request,
            101,
            None,
            "Error validating application. Invalid application ID.",
        ),
        TokenError::WrongSecret => {
            graph_error(bad_request, 1, None, "Error validating client secret.")
        }
        TokenError::MissingCode => {
            graph_error(bad_request, 100, None, "Missing authorization code")
        }
        TokenError::UsedCode => used_code(),
        TokenError::UnknownCode | TokenError::MissingVerifier | TokenError::WrongVerifier => {
            graph_error(
                bad_request,
                100,
                Some(36_007),
                "Invalid verification code format.",
            )
        }
        TokenError::ExpiredCode => graph_error(
            bad_request,
            100,
            Some(36_007),
            "This authorization code has expired.",
        ),
        TokenError::RedirectUriMismatch => graph_error(
            bad_request,
            100,
            Some(36_008),
            "Error validating verification code. Please make sure your redirect_uri is identical \
             to the one you used in the OAuth dialog request",
        ),
        TokenError::MissingExchangeToken => graph_error(
            bad_request,
            100,
            None,
            "Missing required parameter: fb_exchange_token",
        ),
        TokenError::ExpiredAccessToken(at) => expired(at),
        TokenError::InvalidAccessToken
        | TokenError::UnsupportedGrant
        | TokenError::InvalidRefreshToken
        | TokenError::UnknownRevokedToken => invalid_token(),
    }
}

fn used_code() -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        100,
        Some(36_009),
        "This authorization code has been used.",
    )
}

/// A fault on the token endpoint: what it does depends on the grant.
fn token_fault(fault: &Fault, grant: Grant) -> Option<Response> {
    match (fault, grant) {
        (Fault::RateLimited { .. }, _) => {
            let mut response = graph_error_transient(
                StatusCode::BAD_REQUEST,
                4,
                None,
                "(#4) Application request limit reached",
            );
            insert(
                &mut response,
                "x-app-usage",
                r#"{"call_count":100,"total_cputime":12,"total_time":15}"#,
            );
            Some(response)
        }
        (Fault::Unavailable { .. }, _) => Some(unavailable()),
        (Fault::ExpiredAccessToken, Grant::Exchange) => {
            Some(expired(Utc::now() - TimeDelta::hours(1)))
        }
        (Fault::InvalidGrant, Grant::Exchange) => Some(graph_error(
            StatusCode::BAD_REQUEST,
            190,
            Some(460),
            "Error validating access token: The session has been invalidated because the user \
             changed their password or Facebook has changed the session for security reasons.",
        )),
        (Fault::InvalidGrant, Grant::Code | Grant::Refresh) => Some(used_code()),
        (
            Fault::ExpiredAccessToken
            | Fault::Slow { .. }
            | Fault::Redirect { .. }
            | Fault::StripAuthorization,
            _,
        ) => None,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::header::LOCATION;

    use super::*;

    #[test]
    fn redirects_form_encode_and_end_with_the_login_fragment() {
        let response = crate::oauth::redirect(
            &QUIRKS,
            "https://fleet.test/cb",
            &[("error_description", "Permissions error.".to_owned())],
        );

        assert_eq!(
            response.headers()[LOCATION],
            "https://fleet.test/cb?error_description=Permissions+error.#_=_"
        );
    }
}
