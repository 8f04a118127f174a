//! Meta's Graph API errors: what each code means for the caller, on
//! the API and on the token endpoint, and how long a throttle lasts.

use std::time::Duration;

use reqwest::{StatusCode, header::HeaderMap};
use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use crate::{
    Error,
    http::{self, Failure},
    text::plain_text,
};

/// How long to wait when `X-App-Usage` shows the app at its limit. The
/// header carries percentages of a rolling one-hour window and no time to
/// wait; this is a first wait, and the worker backs off further when the
/// next attempt is throttled again.
const APP_USAGE_WAIT: Duration = Duration::from_secs(5 * 60);

/// The body of a failed Graph API call: `{"error": {…}}`.
#[derive(Deserialize)]
pub(crate) struct GraphErrorBody {
    pub(crate) error: GraphError,
}

/// A Graph API error: `{"message", "type", "code", "error_subcode",
/// "fbtrace_id", "is_transient"}`.
#[derive(Deserialize)]
pub(crate) struct GraphError {
    #[serde(default)]
    message: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    code: i64,
    #[serde(default)]
    error_subcode: Option<i64>,
    #[serde(default)]
    is_transient: bool,
}

/// What a Graph error code means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meaning {
    /// Code 1 with "Please reduce the amount of data you're asking for":
    /// a smaller request may succeed.
    TooMuchData,
    /// Code 190 (and the old 102): the token expired (subcode 463), was
    /// invalidated or cannot be parsed.
    TokenRejected,
    /// Throttling: app (4), user (17), page (32), call-type (613) and
    /// business-use-case (80000–80014) limits.
    Throttled,
    /// A missing permission: 10 and 200–299.
    PermissionDenied,
    /// "Service temporarily unavailable" (2), or anything Meta flags with
    /// `is_transient`.
    Transient,
    /// Anything else, such as 100 (invalid parameter).
    Other,
}

impl GraphError {
    fn meaning(&self) -> Meaning {
        let reduce = self
            .message
            .to_ascii_lowercase()
            .contains("reduce the amount of data");
        match self.code {
            1 if reduce => Meaning::TooMuchData,
            102 | 190 => Meaning::TokenRejected,
            4 | 17 | 32 | 613 | 80_000..=80_014 => Meaning::Throttled,
            10 | 200..=299 => Meaning::PermissionDenied,
            2 => Meaning::Transient,
            _ if self.is_transient => Meaning::Transient,
            _ => Meaning::Other,
        }
    }

    /// The code for messages: `OAuthException 190/463`.
    fn code_text(&self) -> String {
        let kind = crate::text::code(self.kind.as_deref().unwrap_or("GraphError"));
        match self.error_subcode {
            Some(subcode) => format!("{kind} {}/{subcode}", self.code),
            None => format!("{kind} {}", self.code),
        }
    }
}

/// Reads a failed Graph API response (see [`Meaning`]). `None` for bodies
/// that are not Graph errors, and for unrecognised codes on 5xx, which
/// the generic mapping retries. `scopes` are the permissions the catalog
/// asks for, named when a permission error names none.
pub(super) fn api_error(failure: &Failure<'_>, scopes: &[String]) -> Option<Error> {
    let GraphErrorBody { error } = serde_json::from_slice(failure.body).ok()?;
    let provider = failure.provider.to_owned();
    let message = plain_text(&error.message);
    Some(match error.meaning() {
        Meaning::TooMuchData => Error::TooMuchData {
            provider,
            url: http::display_url(failure.url),
            message,
        },
        Meaning::TokenRejected => Error::AccessTokenRejected { provider, message },
        Meaning::Throttled => Error::Throttled {
            provider,
            code: error.code_text(),
            message,
            retry_after: usage_wait(failure.headers),
        },
        Meaning::PermissionDenied => Error::PermissionMissing {
            provider,
            permission: missing_permission(&message, scopes),
            code: error.code_text(),
            message,
        },
        Meaning::Transient => Error::Unavailable {
            provider,
            site: http::display_url(failure.url),
            status: failure.status.as_u16(),
            retry_after: None,
        },
        Meaning::Other if http::is_transient(failure.status) => return None,
        Meaning::Other => Error::Rejected {
            provider,
            url: http::display_url(failure.url),
            status: failure.status.as_u16(),
            code: error.code_text(),
            message,
        },
    })
}

/// The permissions a permission error's `message` names: the words shaped
/// like Meta's permission names (`ads_read`, `pages_read_engagement`),
/// joined with "or" as Meta's own messages do ("NOT grant ads_management
/// or ads_read permission"); else the permissions asked for, saying that
/// Meta did not name one.
fn missing_permission(message: &str, scopes: &[String]) -> String {
    let mut named: Vec<&str> = Vec::new();
    for word in message.split(|c: char| !(c.is_ascii_lowercase() || c == '_')) {
        let shaped = word.contains('_')
            && !word.starts_with('_')
            && !word.ends_with('_')
            && !matches!(word, "access_token" | "appsecret_proof");
        if shaped && !named.contains(&word) {
            named.push(word);
        }
    }
    match (&named[..], scopes) {
        ([], []) => "Meta did not say which".to_owned(),
        ([], scopes) => format!("Meta did not say which of {}", scopes.join(", ")),
        (named, _) => named.join(" or "),
    }
}

/// The error for a Graph error from Meta's token endpoint (the code
/// exchange and `fb_exchange_token`). A rejected token (190) and an
/// invalid or used authorization code (100 with subcode 36007 or 36009)
/// are `invalid_grant`: the user has to connect again. `redact` blanks
/// the request's secrets out of Meta's message.
pub(crate) fn token_endpoint_error(
    provider: &str,
    url: &Url,
    status: StatusCode,
    headers: &HeaderMap,
    error: &GraphError,
    redact: &dyn Fn(&str) -> String,
) -> Error {
    let message = redact(&plain_text(&redact(&error.message)));
    let dead_code = error.code == 100 && matches!(error.error_subcode, Some(36_007 | 36_009));
    let code = match error.meaning() {
        Meaning::TokenRejected => "invalid_grant".to_owned(),
        _ if dead_code => "invalid_grant".to_owned(),
        Meaning::Throttled => {
            return Error::Throttled {
                provider: provider.to_owned(),
                code: error.code_text(),
                message,
                retry_after: usage_wait(headers),
            };
        }
        Meaning::Transient => {
            return Error::Unavailable {
                provider: provider.to_owned(),
                site: http::display_url(url),
                status: status.as_u16(),
                retry_after: None,
            };
        }
        Meaning::TooMuchData | Meaning::PermissionDenied | Meaning::Other => error.code_text(),
    };
    Error::TokenEndpoint {
        provider: provider.to_owned(),
        url: http::display_url(url),
        status: status.as_u16(),
        code,
        description: format!("{message} ({})", error.code_text()),
    }
}

/// How long a throttled caller should wait, from Meta's usage headers:
/// `X-Business-Use-Case-Usage` (the longest
/// `estimated_time_to_regain_access`, in minutes, over every business
/// object and call type), else `X-App-Usage` at 100 % or more
/// ([`APP_USAGE_WAIT`]).
fn usage_wait(headers: &HeaderMap) -> Option<Duration> {
    business_use_case_wait(headers).or_else(|| app_usage_wait(headers))
}

/// `{"<business id>": [{"type": "ads_insights", "call_count": 98, …,
/// "estimated_time_to_regain_access": 5}]}`, as a JSON string.
fn business_use_case_wait(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get("x-business-use-case-usage")?.to_str().ok()?;
    let usage: Map<String, Value> = serde_json::from_str(text).ok()?;
    let minutes = usage
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|entry| entry.get("estimated_time_to_regain_access")?.as_f64())
        .fold(0.0_f64, f64::max);
    // Whole minutes in practice; a fraction rounds up.
    let seconds = (minutes * 60.0).ceil();
    // A value past what a `Duration` holds is refused, not a panic; the
    // caller caps every wait at `MAX_RETRY_AFTER` anyway.
    (seconds >= 1.0).then(|| Duration::try_from_secs_f64(seconds).unwrap_or(crate::MAX_RETRY_AFTER))
}

/// `{"call_count": 100, "total_cputime": 20, "total_time": 35}`: percents
/// of the app's hourly allowance.
fn app_usage_wait(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get("x-app-usage")?.to_str().ok()?;
    let usage: Map<String, Value> = serde_json::from_str(text).ok()?;
    let highest = ["call_count", "total_cputime", "total_time"]
        .iter()
        .filter_map(|name| usage.get(*name)?.as_f64())
        .fold(0.0_f64, f64::max);
    (highest >= 100.0).then_some(APP_USAGE_WAIT)
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use serde_json::json;

    use super::{super::PROVIDER, *};

    fn failure_error(status: StatusCode, headers: &HeaderMap, body: &Value) -> Option<Error> {
        let url =
            Url::parse("https://graph.facebook.com/v22.0/act_1/insights?access_token=EAAsecret")
                .unwrap();
        let body = body.to_string();
        let scopes = ["ads_read".to_owned(), "read_insights".to_owned()];
        api_error(
            &Failure {
                provider: PROVIDER,
                url: &url,
                status,
                headers,
                body: body.as_bytes(),
            },
            &scopes,
        )
    }
    fn graph(code: i64, subcode: Option<i64>, message: &str) -> Value {
        json!({"error": {"message": message, "type": "OAuthException", "code": code,
                         "error_subcode": subcode, "fbtrace_id": "AbC123"}})
    }
    fn header(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }
    #[test]
    fn a_wait_past_any_duration_is_capped_not_a_panic() {
        let headers = header(
            "x-business-use-case-usage",
            r#"{"1":[{"type":"ads_insights","estimated_time_to_regain_access":1e300}]}"#,
        );
        let error = failure_error(
            StatusCode::BAD_REQUEST,
            &headers,
            &graph(80_000, None, "limit"),
        )
        .unwrap();
        assert_eq!(
            error.class(),
            crate::ErrorClass::Retryable {
                retry_after: Some(crate::MAX_RETRY_AFTER)
            }
        );
    }

    #[test]
    fn throttling_codes_on_http_400_are_retryable_with_the_buc_wait_in_minutes() {
        let headers = header(
            "x-business-use-case-usage",
            r#"{"112233":[{"type":"ads_insights","call_count":100,"total_cputime":20,"total_time":30,"estimated_time_to_regain_access":3},{"type":"ads_management","call_count":5,"estimated_time_to_regain_access":0}]}"#,
        );

        for code in [4, 17, 32, 613, 80_000, 80_014] {
            let error = failure_error(
                StatusCode::BAD_REQUEST,
                &headers,
                &graph(code, None, "limit"),
            )
            .unwrap();
            assert_eq!(
                error.class(),
                crate::ErrorClass::Retryable {
                    retry_after: Some(Duration::from_secs(180))
                },
                "{code}"
            );
        }
    }
    #[test]
    fn app_usage_at_its_limit_gives_a_wait_and_below_it_none() {
        let full = header(
            "x-app-usage",
            r#"{"call_count":100,"total_cputime":12,"total_time":9}"#,
        );
        let low = header(
            "x-app-usage",
            r#"{"call_count":12,"total_cputime":1,"total_time":1}"#,
        );

        assert_eq!(usage_wait(&full), Some(APP_USAGE_WAIT));
        assert_eq!(usage_wait(&low), None);
        assert_eq!(usage_wait(&HeaderMap::new()), None);
    }
    #[test]
    fn code_190_is_a_rejected_token_and_a_missing_permission_needs_a_reconnect() {
        let expired = failure_error(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            &graph(
                190,
                Some(463),
                "Error validating access token: Session has expired",
            ),
        )
        .unwrap();
        let permission = failure_error(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            &graph(200, None, "(#200) Requires ads_read permission"),
        )
        .unwrap();

        assert!(expired.wants_token_refresh(), "{expired:?}");
        assert_eq!(permission.class(), crate::ErrorClass::ReauthRequired);
        let Error::PermissionMissing {
            permission: named, ..
        } = &permission
        else {
            panic!("expected PermissionMissing, got {permission:?}");
        };
        assert_eq!(named, "ads_read");
        assert!(permission.to_string().contains("reconnect"), "{permission}");
    }
    #[test]
    fn permission_names_come_from_the_message_or_else_from_the_scopes() {
        let scopes = ["ads_read".to_owned(), "read_insights".to_owned()];

        assert_eq!(
            missing_permission(
                "(#200) Ad account owner has NOT grant ads_management or ads_read permission",
                &scopes
            ),
            "ads_management or ads_read"
        );
        assert_eq!(
            missing_permission(
                "(#10) Application does not have permission for this action",
                &scopes
            ),
            "Meta did not say which of ads_read, read_insights"
        );
        assert_eq!(
            missing_permission(
                "(#294) Managing advertisements requires an access token with the extended \
                 permission ads_management",
                &[]
            ),
            "ads_management"
        );
    }
    #[test]
    fn reduce_the_amount_of_data_is_too_much_data_not_an_outage() {
        let error = failure_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &HeaderMap::new(),
            &json!({"error": {"code": 1, "message": "Please reduce the amount of data you're asking for, then retry your request"}}),
        )
        .unwrap();

        assert!(matches!(error, Error::TooMuchData { .. }), "{error:?}");
        assert_eq!(error.class(), crate::ErrorClass::Permanent);
    }
    #[test]
    fn unknown_codes_are_rejections_unless_the_status_is_transient() {
        let invalid = failure_error(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            &graph(100, Some(33), "Unsupported get request."),
        )
        .unwrap();
        let server = failure_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &HeaderMap::new(),
            &graph(1, None, "An unknown error occurred"),
        );

        let Error::Rejected { code, url, .. } = &invalid else {
            panic!("expected Rejected, got {invalid:?}");
        };
        assert_eq!(code, "OAuthException 100/33");
        assert!(!url.contains("EAAsecret"), "{url}");
        assert!(server.is_none());
    }
}
