//! `/_sim/...`: the control API for processes that do not hold a
//! [`SimHandle`](crate::SimHandle), such as the offline demo's scripts.
//!
//! | method and path | body | effect |
//! | --- | --- | --- |
//! | `POST /_sim/sites` | a [`SiteConfig`] | seeds and serves the site, replacing one of the same name |
//! | `POST /_sim/faults` | `{"site"?, "google_user"?, "meta_user"?, "linkedin_user"?, "trello_member"?, "fault": Fault, "times"?}` | the next `times` (default 1) requests to `site` or of the Google, Meta or LinkedIn user or Trello member (default: any) suffer `fault` |
//! | `DELETE /_sim/faults` | | forgets every queued fault |
//! | `POST /_sim/sites/{site}/users/{username}/revoke` | | revokes the user's application passwords |
//! | `POST /_sim/sites/{site}/changes` | a [`SiteChange`] | applies it to the site's content now, as an editor would; answers `{"ids": [...]}`, the ids it created or changed (404 for an unknown site) |

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Path, State as AxumState},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::post,
};
use serde::Deserialize;

use crate::{
    config::SiteConfig, content::SiteChange, fault::Fault, oauth::Provider, providers::trello,
    state::State,
};

/// The body of `POST /_sim/faults`.
#[derive(Deserialize)]
struct Injection {
    #[serde(default)]
    site: Option<String>,
    #[serde(default)]
    google_user: Option<String>,
    #[serde(default)]
    meta_user: Option<String>,
    #[serde(default)]
    linkedin_user: Option<String>,
    #[serde(default)]
    trello_member: Option<String>,
    fault: Fault,
    #[serde(default = "one")]
    times: u32,
}

fn one() -> u32 {
    1
}

pub(crate) fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/_sim/sites", post(add_site))
        .route("/_sim/faults", post(inject).delete(clear_faults))
        .route("/_sim/sites/{site}/users/{username}/revoke", post(revoke))
        .route("/_sim/sites/{site}/changes", post(change_site))
}

async fn add_site(
    AxumState(state): AxumState<Arc<State>>,
    Json(site): Json<SiteConfig>,
) -> Response {
    match state.add_site(&site) {
        Ok(()) => StatusCode::CREATED.into_response(),
        Err(error) => (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    }
}

async fn inject(
    AxumState(state): AxumState<Arc<State>>,
    Json(injection): Json<Injection>,
) -> StatusCode {
    let target = injection
        .google_user
        .as_deref()
        .map(|user| Provider::Google.fault_target(user))
        .or_else(|| {
            injection
                .meta_user
                .as_deref()
                .map(|user| Provider::Meta.fault_target(user))
        })
        .or_else(|| {
            injection
                .linkedin_user
                .as_deref()
                .map(|user| Provider::LinkedIn.fault_target(user))
        })
        .or_else(|| injection.trello_member.as_deref().map(trello::fault_target))
        .or(injection.site);
    state.inject(target.as_deref(), injection.fault, injection.times);
    StatusCode::NO_CONTENT
}

async fn clear_faults(AxumState(state): AxumState<Arc<State>>) -> StatusCode {
    state.clear_faults();
    StatusCode::NO_CONTENT
}

async fn revoke(
    AxumState(state): AxumState<Arc<State>>,
    Path((site, username)): Path<(String, String)>,
) -> StatusCode {
    if state.revoke_passwords(&site, &username) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn change_site(
    AxumState(state): AxumState<Arc<State>>,
    Path(site): Path<String>,
    Json(change): Json<SiteChange>,
) -> Response {
    if state.site(&site).is_none() {
        return (StatusCode::NOT_FOUND, format!("no site {site:?}")).into_response();
    }
    let ids = state.change_site(&site, &change);
    Json(serde_json::json!({ "ids": ids })).into_response()
}
