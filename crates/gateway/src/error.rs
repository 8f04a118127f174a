//! The gateway's one error type: every failure becomes a status code and a
//! JSON body a person can act on.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No bearer token, or one that does not verify.
    #[error("{0}")]
    Unauthorized(String),
    /// The token is valid but does not allow this (a token narrowed to
    /// some connections creating one).
    #[error("{0}")]
    Forbidden(String),
    /// No such resource for this tenant (another tenant's look the same).
    #[error("{0}")]
    NotFound(String),
    /// The request body or parameters are wrong; `field` names the culprit.
    #[error("{message}")]
    Invalid {
        /// The offending field, when one is to blame.
        field: Option<String>,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The body could not be read as JSON of the expected shape, is too
    /// large, or is not declared as JSON.
    #[error("{message}")]
    BadBody {
        /// 400, 413, 415 or 422, as axum classified it.
        status: StatusCode,
        /// What axum found wrong.
        message: String,
    },
    /// The tenant is over one of its request limits; the client may retry
    /// after `retry_after`.
    #[error("{message}")]
    TooManyRequests {
        /// Which limit, and when to retry.
        message: String,
        /// Sent as `Retry-After`, in whole seconds.
        retry_after: std::time::Duration,
    },
    /// The operator has not set up what the request needs (an OAuth client,
    /// the redirect URI), or the provider cannot be reached to start.
    #[error("{0}")]
    NotConfigured(String),
    /// A dependency (Vault, PostgreSQL, NATS) is down or overloaded; the
    /// client may retry.
    #[error("a dependency is unavailable, retry shortly")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else: logged in full, answered as a bare 500.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code: `unauthorized`, `forbidden`, `not_found`,
    /// `invalid`, `bad_body`, `too_many_requests`, `not_configured`, `unavailable`,
    /// `internal`.
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
    /// The offending field, for `invalid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Error {
    /// A 422 naming `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }

    /// Wraps a failure of a dependency: transient ones are 503, the rest 500.
    pub(crate) fn dependency(
        error: impl std::error::Error + Send + Sync + 'static,
        transient: bool,
    ) -> Self {
        if transient {
            Self::Unavailable(Box::new(error))
        } else {
            Self::Internal(Box::new(error))
        }
    }

    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadBody { status, .. } => *status,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotConfigured(_) | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Invalid { .. } => "invalid",
            Self::BadBody { .. } => "bad_body",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::NotConfigured(_) => "not_configured",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Self::Unavailable(source) | Self::Internal(source) = &self {
            tracing::error!(error.message = %self, error.cause_chain = ?source, "Request failed.");
        }
        let field = match &self {
            Self::Invalid { field, .. } => field.clone(),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
                field,
            },
        };
        let mut response = (self.status_code(), Json(body)).into_response();
        if let Self::TooManyRequests { retry_after, .. } = &self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after.as_secs()),
            );
        }
        response
    }
}

impl From<JsonRejection> for Error {
    fn from(rejection: JsonRejection) -> Self {
        Self::BadBody {
            status: rejection.status(),
            message: rejection.body_text(),
        }
    }
}

impl From<QueryRejection> for Error {
    fn from(rejection: QueryRejection) -> Self {
        Self::Invalid {
            field: None,
            message: rejection.body_text(),
        }
    }
}

impl From<PathRejection> for Error {
    fn from(rejection: PathRejection) -> Self {
        Self::NotFound(rejection.body_text())
    }
}
