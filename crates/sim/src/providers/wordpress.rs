//! WordPress core: authentication with application passwords, faults, and
//! the `wp/v2` routes the connectors use (`users/me`, `posts`, `pages`).
//! The site's content, and how it is seeded and changed, is in [`site`].

pub(crate) mod site;

use std::{collections::HashMap, ops::Range, sync::Arc, time::Duration};

use axum::{
    Json,
    extract::{FromRequestParts, Path, Query, RawQuery},
    http::{
        HeaderMap, HeaderValue, StatusCode,
        header::{AUTHORIZATION, CONTENT_TYPE, LINK, LOCATION, RETRY_AFTER},
        request::Parts,
    },
    response::{IntoResponse, Response},
};
use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use chrono::{NaiveDateTime, TimeDelta};
use serde_json::{Value, json};

use site::{Post, PostStatus, Site, User, normalize_password};

use crate::{config::Role, fault::Fault, state::State};

/// The largest `per_page` WordPress accepts.
const MAX_PER_PAGE: usize = 100;
const DEFAULT_PER_PAGE: usize = 10;

/// Who is calling which site, after faults and authentication.
///
/// Extracting it applies the request's fault, then authenticates the way
/// WordPress does: no `Authorization` header means logged out, and Basic
/// credentials that do not match an application password fail the
/// request with 401 whatever the route.
pub(crate) struct Caller {
    pub(crate) site: Arc<Site>,
    pub(crate) user: Option<User>,
}

impl FromRequestParts<Arc<State>> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<State>) -> Result<Self, Response> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let name = params.get("site").map_or("", String::as_str);
        let strip_authorization = suffer(state.arrive(name)).await?;
        let Some(site) = state.site(name) else {
            return Err(not_found_page());
        };
        if site.plain_permalinks && parts.uri.path().contains("/wp-json") {
            // No rewrite rules: WordPress sees a front-end request for a
            // path it does not know and redirects it to the front page.
            return Err(redirect(&format!("{}/", site.url)));
        }
        let credentials = if strip_authorization {
            None
        } else {
            basic_credentials(&parts.headers)
        };
        let user = match credentials {
            Some((username, password)) => Some(
                authenticate(&site, &username, &password).map_err(IntoResponse::into_response)?,
            ),
            None => None,
        };
        Ok(Self { site, user })
    }
}

/// Applies a request's fault: answers in WordPress's place, waits, or says
/// (`Ok(true)`) that the request loses its `Authorization` header.
async fn suffer(fault: Option<Fault>) -> Result<bool, Response> {
    match fault {
        Some(Fault::RateLimited { retry_after_secs }) => Err(rate_limited(retry_after_secs)),
        Some(Fault::Unavailable { retry_after_secs }) => Err(maintenance(retry_after_secs)),
        Some(Fault::Redirect { location }) => Err(redirect(&location)),
        Some(Fault::Slow { delay_ms }) => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            Ok(false)
        }
        Some(Fault::StripAuthorization) => Ok(true),
        Some(Fault::ExpiredAccessToken | Fault::InvalidGrant) | None => Ok(false),
    }
}

/// The user name and password of a Basic `Authorization` header. Anything
/// else is ignored, as WordPress ignores schemes it does not handle.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(BASE64.decode(encoded.trim()).ok()?).ok()?;
    let (username, password) = decoded.split_once(':')?;
    Some((username.to_owned(), password.to_owned()))
}

/// WordPress's `wp_authenticate_application_password`: the user by login
/// or e-mail, then the password against each of their application passwords.
fn authenticate(site: &Site, username: &str, password: &str) -> Result<User, RestError> {
    let Some(user) = site.users.iter().find(|user| {
        user.username == username || format!("{}@example.test", user.username) == username
    }) else {
        return Err(RestError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_username",
            &format!(
                "<strong>Error:</strong> The username <strong>{username}</strong> is not registered \
                 on this site. If you are unsure of your username, try your email address instead."
            ),
        ));
    };
    let password = normalize_password(password);
    if !user.passwords.contains(&password) {
        return Err(RestError::new(
            StatusCode::UNAUTHORIZED,
            "incorrect_password",
            "The provided password is an invalid application password.",
        ));
    }
    Ok(user.clone())
}

/// `GET /wp-json/wp/v2/users/me`.
pub(crate) async fn me(
    caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, RestError> {
    let context = enum_param(&query, "context", &["view", "embed", "edit"], "view")?;
    let Some(user) = caller.user else {
        return Err(RestError::new(
            StatusCode::UNAUTHORIZED,
            "rest_not_logged_in",
            "You are not currently logged in.",
        ));
    };
    let site = &caller.site;
    let mut body = json!({
        "id": user.id,
        "name": user.username,
        "url": "",
        "description": "",
        "link": format!("{}/author/{}/", site.url, user.username),
        "slug": user.username,
        "avatar_urls": {"24": "", "48": "", "96": ""},
        "meta": [],
    });
    if context == "edit" {
        let extra = json!({
            "username": user.username,
            "first_name": "",
            "last_name": "",
            "email": format!("{}@example.test", user.username),
            "nickname": user.username,
            "locale": "en_US",
            "registered_date": format!("{}+00:00", user.registered.format("%Y-%m-%dT%H:%M:%S")),
            "roles": [user.role.slug()],
            "capabilities": {user.role.slug(): true},
            "extra_capabilities": {user.role.slug(): true},
        });
        merge(&mut body, extra);
    }
    Ok(Json(body))
}

/// `GET /wp-json/wp/v2/{posts,pages}`.
pub(crate) async fn collection(
    caller: Caller,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<HashMap<String, String>>,
    RawQuery(raw_query): RawQuery,
) -> Result<Response, RestError> {
    let collection = params.get("collection").map_or("", String::as_str);
    list(&caller, collection, &query, raw_query.as_deref())
}

/// `GET /` of a site: its front page, whose `Link` header names the REST
/// API root, or with `?rest_route=/...`, the REST API itself.
pub(crate) async fn front(
    caller: Caller,
    Query(query): Query<HashMap<String, String>>,
    RawQuery(raw_query): RawQuery,
) -> Result<Response, RestError> {
    let site = &caller.site;
    let Some(route) = query.get("rest_route") else {
        let root = if site.plain_permalinks {
            format!("{}/?rest_route=/", site.url)
        } else {
            format!("{}/wp-json/", site.url)
        };
        let link = format!("<{root}>; rel=\"https://api.w.org/\"");
        let mut response = (
            [(CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!DOCTYPE html><html><body><h1>A WordPress site</h1></body></html>",
        )
            .into_response();
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(LINK, value);
        }
        return Ok(response);
    };
    match route.trim_end_matches('/') {
        "" => Ok(index(caller).await.into_response()),
        "/wp/v2/users/me" => Ok(me(caller, Query(query.clone())).await?.into_response()),
        "/wp/v2/posts" => list(&caller, "posts", &query, raw_query.as_deref()),
        "/wp/v2/pages" => list(&caller, "pages", &query, raw_query.as_deref()),
        "/fluent-crm/v2/subscribers" => {
            Ok(super::fluentcrm::subscribers(caller, Query(query.clone()))
                .await?
                .into_response())
        }
        "/fluent-crm/v2/lists" => Ok(super::fluentcrm::lists(caller, Query(query.clone()))
            .await?
            .into_response()),
        _ => Err(RestError::no_route()),
    }
}

/// A listing of `collection`'s published items.
fn list(
    caller: &Caller,
    collection: &str,
    query: &HashMap<String, String>,
    raw_query: Option<&str>,
) -> Result<Response, RestError> {
    let site = &caller.site;
    let (items, kind) = match collection {
        "posts" => (&site.posts, "post"),
        "pages" => (&site.pages, "page"),
        _ => return Err(RestError::no_route()),
    };
    let listing = Listing::parse(query, site.utc_offset)?;
    if listing.context == "edit"
        && caller
            .user
            .as_ref()
            .is_none_or(|u| u.role != Role::Administrator)
    {
        let status = if caller.user.is_some() {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNAUTHORIZED
        };
        return Err(RestError::new(
            status,
            "rest_forbidden_context",
            "Sorry, you are not allowed to edit posts in this post type.",
        ));
    }

    let mut matching: Vec<&Post> = items
        .iter()
        .filter(|post| post.status == PostStatus::Publish)
        .filter(|post| {
            listing
                .modified_after
                .is_none_or(|after| post.modified_gmt > after)
        })
        .collect();
    listing.sort(&mut matching);
    let total = matching.len();
    let range = match listing.offset {
        // An offset replaces the page, and past the end is an empty list.
        Some(offset) => offset.min(total)..total.min(offset.saturating_add(listing.per_page)),
        None => page_range(total, listing.page, listing.per_page).ok_or_else(|| {
            RestError::new(
                StatusCode::BAD_REQUEST,
                "rest_post_invalid_page_number",
                "The page number requested is larger than the number of pages available.",
            )
        })?,
    };
    let body: Vec<Value> = matching[range.clone()]
        .iter()
        .map(|post| listing.fields(render_post(site, post, kind)))
        .collect();
    // WordPress counts what the query found: with an offset past the end it
    // finds nothing, and says the collection has 0 items.
    let total = if range.is_empty() && listing.offset.is_some() {
        0
    } else {
        total
    };
    let total_pages = total.div_ceil(listing.per_page);

    let route = format!("{}/wp-json/wp/v2/{collection}", site.url);
    let mut headers = HeaderMap::new();
    headers.insert("x-wp-total", HeaderValue::from(total));
    headers.insert("x-wp-totalpages", HeaderValue::from(total_pages));
    let links = links(&route, raw_query, listing.page, total_pages);
    if let Ok(value) = HeaderValue::from_str(&links)
        && !links.is_empty()
    {
        headers.insert(LINK, value);
    }
    Ok((headers, Json(body)).into_response())
}

/// `GET /wp-json/`: the REST API's index, with the site's timezone
/// (`gmt_offset` in hours, a string as WordPress stores the option).
pub(crate) async fn index(caller: Caller) -> Json<Value> {
    let site = &caller.site;
    let minutes = site.utc_offset.num_minutes();
    let gmt_offset = if minutes % 60 == 0 {
        (minutes / 60).to_string()
    } else {
        format!("{}", minutes as f64 / 60.0)
    };
    let mut namespaces = vec!["oembed/1.0", "wp/v2", "wp-site-health/v1"];
    if site.crm.is_some() {
        namespaces.push("fluent-crm/v2");
    }
    Json(json!({
        "name": site.name,
        "description": "Just another WordPress site",
        "url": site.url,
        "home": site.url,
        "gmt_offset": gmt_offset,
        "timezone_string": "",
        "namespaces": namespaces,
        "authentication": {"application-passwords": {"endpoints": {
            "authorization": format!("{}/wp-admin/authorize-application.php", site.url),
        }}},
        "routes": {},
    }))
}

/// Any other route under `/wp-json/`.
pub(crate) async fn no_route(_caller: Caller) -> RestError {
    RestError::no_route()
}

/// A listing request's parameters, checked as WordPress checks them.
struct Listing {
    page: usize,
    /// Items to skip; replaces `page` when given.
    offset: Option<usize>,
    per_page: usize,
    /// `_fields`: only these top-level fields of each item.
    fields: Option<Vec<String>>,
    orderby: &'static str,
    descending: bool,
    context: &'static str,
    /// `modified_after`, converted from site-local time to UTC.
    modified_after: Option<NaiveDateTime>,
}

impl Listing {
    fn parse(query: &HashMap<String, String>, utc_offset: TimeDelta) -> Result<Self, RestError> {
        let per_page = int_param(query, "per_page", DEFAULT_PER_PAGE, 1, Some(MAX_PER_PAGE))?;
        let page = int_param(query, "page", 1, 1, None)?;
        let offset = match query.get("offset") {
            Some(_) => Some(int_param(query, "offset", 0, 0, None)?),
            None => None,
        };
        let fields = query.get("_fields").map(|fields| {
            fields
                .split(',')
                .map(|field| field.trim().to_owned())
                .collect()
        });
        let orderby = enum_param(
            query,
            "orderby",
            &["date", "id", "modified", "slug", "title"],
            "date",
        )?;
        let order = enum_param(query, "order", &["asc", "desc"], "desc")?;
        let context = enum_param(query, "context", &["view", "embed", "edit"], "view")?;
        let modified_after = match query.get("modified_after") {
            None => None,
            Some(value) => Some(parse_date(value, utc_offset).ok_or_else(|| {
                RestError::invalid_param("modified_after", "rest_invalid_date", "Invalid date.")
            })?),
        };
        Ok(Self {
            page,
            offset,
            per_page,
            fields,
            orderby,
            descending: order == "desc",
            context,
            modified_after,
        })
    }

    /// Sorts as MySQL does for WordPress: by the field alone. Items that
    /// tie on it come in no defined order, and MySQL's order differs
    /// between requests with different limits and offsets; the simulator
    /// shuffles ties by the requested window to show what that does to
    /// paging.
    fn sort(&self, posts: &mut [&Post]) {
        let window = (self.offset.unwrap_or(0) as u64)
            .wrapping_add(self.page as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let scramble = |id: u64| (id.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ window).rotate_left(17);
        posts.sort_by(|a, b| {
            let by_field = match self.orderby {
                "date" => a.date_gmt.cmp(&b.date_gmt),
                "modified" => a.modified_gmt.cmp(&b.modified_gmt),
                "slug" => a.slug.cmp(&b.slug),
                "title" => a.title.cmp(&b.title),
                _ => a.id.cmp(&b.id),
            };
            by_field.then_with(|| scramble(a.id).cmp(&scramble(b.id)))
        });
        if self.descending {
            posts.reverse();
        }
    }

    /// `item` with only the `_fields` asked for.
    fn fields(&self, item: Value) -> Value {
        match (&self.fields, item) {
            (Some(fields), Value::Object(mut object)) => {
                object.retain(|key, _| fields.iter().any(|field| field == key));
                Value::Object(object)
            }
            (_, item) => item,
        }
    }
}

/// The items of page `page` (from 1) of `per_page` out of `total`. `None`
/// past the last page of a non-empty collection; an empty collection has
/// an empty page at every number, as in WordPress.
fn page_range(total: usize, page: usize, per_page: usize) -> Option<Range<usize>> {
    if total == 0 {
        return Some(0..0);
    }
    let start = (page - 1).checked_mul(per_page)?;
    (start < total).then(|| start..total.min(start + per_page))
}

/// The `Link` header: `rel="prev"` and `rel="next"` to the same query with
/// another page.
fn links(route: &str, raw_query: Option<&str>, page: usize, total_pages: usize) -> String {
    let others: Vec<&str> = raw_query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("page="))
        .collect();
    let link = |page: usize, rel: &str| {
        let mut pairs = others.clone();
        let page = format!("page={page}");
        pairs.push(&page);
        format!("<{route}?{}>; rel=\"{rel}\"", pairs.join("&"))
    };
    let mut links = Vec::new();
    if page > 1 && page - 1 <= total_pages {
        links.push(link(page - 1, "prev"));
    }
    if page < total_pages {
        links.push(link(page + 1, "next"));
    }
    links.join(", ")
}

fn render_post(site: &Site, post: &Post, kind: &str) -> Value {
    let local = |at: NaiveDateTime| {
        (at + site.utc_offset)
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string()
    };
    let gmt = |at: NaiveDateTime| at.format("%Y-%m-%dT%H:%M:%S").to_string();
    let mut body = json!({
        "id": post.id,
        "date": local(post.date_gmt),
        "date_gmt": gmt(post.date_gmt),
        "guid": {"rendered": format!("{}/?p={}", site.url, post.id)},
        "modified": local(post.modified_gmt),
        "modified_gmt": gmt(post.modified_gmt),
        "slug": post.slug,
        "status": "publish",
        "type": kind,
        "link": format!("{}/{}/", site.url, post.slug),
        "title": {"rendered": post.title},
        "content": {"rendered": format!("<p>The text of {}.</p>\n", post.title), "protected": false},
        "excerpt": {"rendered": format!("<p>About {}.</p>\n", post.title), "protected": false},
        "author": 1,
        "featured_media": 0,
        "comment_status": "open",
        "ping_status": "open",
        "template": "",
        // PHP's empty array: `[]`, not `{}`.
        "meta": [],
    });
    let extra = if kind == "page" {
        json!({"parent": 0, "menu_order": 0, "comment_status": "closed"})
    } else {
        json!({"sticky": false, "format": "standard", "categories": [1], "tags": []})
    };
    merge(&mut body, extra);
    body
}

fn merge(body: &mut Value, extra: Value) {
    if let (Value::Object(body), Value::Object(extra)) = (body, extra) {
        body.extend(extra);
    }
}

/// A WordPress REST error: `{"code", "message", "data": {"status", ...}}`.
pub(crate) struct RestError {
    status: StatusCode,
    body: Value,
}

impl RestError {
    pub(crate) fn new(status: StatusCode, code: &str, message: &str) -> Self {
        Self {
            status,
            body: json!({"code": code, "message": message, "data": {"status": status.as_u16()}}),
        }
    }

    /// WordPress's answer for a route it does not have (or a plugin that
    /// is not active).
    pub(crate) fn no_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "rest_no_route",
            "No route was found matching the URL and request method.",
        )
    }

    /// `rest_invalid_param`, with the `params` and `details` WordPress adds.
    fn invalid_param(name: &str, detail_code: &str, message: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            body: json!({
                "code": "rest_invalid_param",
                "message": format!("Invalid parameter(s): {name}"),
                "data": {
                    "status": 400,
                    "params": {name: message},
                    "details": {name: {"code": detail_code, "message": message, "data": null}},
                },
            }),
        }
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

fn int_param(
    query: &HashMap<String, String>,
    name: &str,
    default: usize,
    min: usize,
    max: Option<usize>,
) -> Result<usize, RestError> {
    let Some(value) = query.get(name) else {
        return Ok(default);
    };
    let Ok(value) = value.trim().parse::<usize>() else {
        return Err(RestError::invalid_param(
            name,
            "rest_invalid_type",
            &format!("{name} is not of type integer."),
        ));
    };
    match max {
        Some(max) if !(min..=max).contains(&value) => Err(RestError::invalid_param(
            name,
            "rest_out_of_bounds",
            &format!("{name} must be between {min} (inclusive) and {max} (inclusive)"),
        )),
        None if value < min => Err(RestError::invalid_param(
            name,
            "rest_out_of_bounds",
            &format!("{name} must be greater than or equal to {min}"),
        )),
        _ => Ok(value),
    }
}

fn enum_param(
    query: &HashMap<String, String>,
    name: &str,
    allowed: &[&'static str],
    default: &'static str,
) -> Result<&'static str, RestError> {
    let Some(value) = query.get(name) else {
        return Ok(default);
    };
    allowed
        .iter()
        .find(|allowed| **allowed == value)
        .copied()
        .ok_or_else(|| {
            RestError::invalid_param(
                name,
                "rest_not_in_enum",
                &format!("{name} is not one of {}.", allowed.join(", ")),
            )
        })
}

/// A `modified_after` value as UTC: RFC 3339 with an offset is converted
/// from that offset, and one without is site-local time, as WordPress
/// reads it.
fn parse_date(value: &str, utc_offset: TimeDelta) -> Option<NaiveDateTime> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(value) {
        return Some(at.naive_utc());
    }
    NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|local| local - utc_offset)
}

fn rate_limited(retry_after_secs: u64) -> Response {
    let mut response = RestError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rest_too_many_requests",
        "Too many requests. Please try again later.",
    )
    .into_response();
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
}

/// WordPress's maintenance-mode page.
fn maintenance(retry_after_secs: Option<u64>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Some(seconds) = retry_after_secs {
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    let body = "<!DOCTYPE html><html><head><title>Maintenance</title></head><body>\
                Briefly unavailable for scheduled maintenance. Check back in a minute.</body></html>";
    (StatusCode::SERVICE_UNAVAILABLE, headers, body).into_response()
}

fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(location) => (StatusCode::MOVED_PERMANENTLY, [(LOCATION, location)]).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "invalid redirect location",
        )
            .into_response(),
    }
}

/// The web server's page for a path that is no WordPress site.
fn not_found_page() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!DOCTYPE html><html><body><h1>Not Found</h1></body></html>",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_past_the_end_of_a_non_empty_collection_has_no_range() {
        assert_eq!(page_range(250, 3, 100), Some(200..250));
        assert_eq!(page_range(250, 4, 100), None);
        assert_eq!(page_range(200, 3, 100), None);
    }

    #[test]
    fn every_page_of_an_empty_collection_is_empty() {
        assert_eq!(page_range(0, 1, 100), Some(0..0));
        assert_eq!(page_range(0, 7, 100), Some(0..0));
    }

    #[test]
    fn a_huge_page_number_is_past_the_end() {
        assert_eq!(page_range(5, usize::MAX, 100), None);
    }

    #[test]
    fn links_point_to_neighbouring_pages_with_the_same_query() {
        let header = links(
            "http://sim/wp-json/wp/v2/posts",
            Some("per_page=100&page=2"),
            2,
            3,
        );

        assert_eq!(
            header,
            "<http://sim/wp-json/wp/v2/posts?per_page=100&page=1>; rel=\"prev\", \
             <http://sim/wp-json/wp/v2/posts?per_page=100&page=3>; rel=\"next\""
        );
        assert_eq!(links("http://sim/wp-json/wp/v2/posts", None, 1, 1), "");
    }

    #[test]
    fn per_page_is_validated_not_clamped() {
        let query = HashMap::from([("per_page".to_owned(), "101".to_owned())]);

        let error = int_param(&query, "per_page", 10, 1, Some(MAX_PER_PAGE)).unwrap_err();

        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert_eq!(error.body["code"], "rest_invalid_param");
        assert_eq!(
            error.body["data"]["params"]["per_page"],
            "per_page must be between 1 (inclusive) and 100 (inclusive)"
        );
    }
}
