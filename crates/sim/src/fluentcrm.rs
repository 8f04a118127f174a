//! FluentCRM's `fluent-crm/v2` routes: `subscribers` and `lists`.

use std::{cmp::Ordering, collections::HashMap};

use axum::{Json, extract::Query, http::StatusCode};
use chrono::NaiveDateTime;
use serde_json::{Value, json};

use crate::{
    config::Role,
    state::{Crm, List, Subscriber},
    wordpress::{Caller, RestError},
};

/// FluentCRM's default page size (WordPress's is 10).
const DEFAULT_PER_PAGE: usize = 15;

/// `GET /wp-json/fluent-crm/v2/subscribers`: `{"subscribers": {paginator}}`,
/// sorted by `sort_by` in direction `sort_type`.
pub(crate) async fn subscribers(
    caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, RestError> {
    let crm = authorize(&caller)?;
    let mut items: Vec<&Subscriber> = crm.subscribers.iter().collect();
    let sort_by = query.get("sort_by").map_or("id", String::as_str);
    items.sort_by(|a, b| {
        let by_field = match sort_by {
            "email" => a.email.cmp(&b.email),
            "created_at" => a.created_at.cmp(&b.created_at),
            "updated_at" => a.updated_at.cmp(&b.updated_at),
            _ => Ordering::Equal,
        };
        by_field.then(a.id.cmp(&b.id))
    });
    if descending(&query, "sort_type") {
        items.reverse();
    }
    let paginator = paginate(&items, &query, render_subscriber);
    Ok(Json(json!({"subscribers": paginator})))
}

/// `GET /wp-json/fluent-crm/v2/lists`: `{"lists": {paginator},
/// "pagination": {"total"}}`, sorted by `sort_by` in direction
/// `sort_order` (not `sort_type`).
pub(crate) async fn lists(
    caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, RestError> {
    let crm = authorize(&caller)?;
    let mut items: Vec<&List> = crm.lists.iter().collect();
    let sort_by = query.get("sort_by").map_or("id", String::as_str);
    items.sort_by(|a, b| {
        let by_field = match sort_by {
            "title" => a.title.cmp(&b.title),
            "subscribers" => a.subscribers.cmp(&b.subscribers),
            _ => Ordering::Equal,
        };
        by_field.then(a.id.cmp(&b.id))
    });
    if descending(&query, "sort_order") {
        items.reverse();
    }
    let paginator = paginate(&items, &query, render_list);
    Ok(Json(
        json!({"lists": paginator, "pagination": {"total": items.len()}}),
    ))
}

/// The CRM of the caller's site, if the plugin is active and the caller
/// may read it: 401 when logged out, 403 without the capability.
fn authorize(caller: &Caller) -> Result<&Crm, RestError> {
    let Some(crm) = &caller.site.crm else {
        return Err(RestError::no_route());
    };
    let status = match &caller.user {
        Some(user) if user.role == Role::Administrator => return Ok(crm),
        Some(_) => StatusCode::FORBIDDEN,
        None => StatusCode::UNAUTHORIZED,
    };
    Err(RestError::new(
        status,
        "rest_forbidden",
        "Sorry, you are not allowed to do that.",
    ))
}

fn descending(query: &HashMap<String, String>, param: &str) -> bool {
    !query
        .get(param)
        .is_some_and(|direction| direction.eq_ignore_ascii_case("asc"))
}

/// Laravel's length-aware paginator over `items`. A page past the end has
/// empty `data` (status 200), unlike WordPress core.
fn paginate<T>(items: &[&T], query: &HashMap<String, String>, render: fn(&T) -> Value) -> Value {
    let number = |name: &str, default: usize| {
        query
            .get(name)
            .and_then(|value| value.trim().parse::<usize>().ok())
            .filter(|value| *value >= 1)
            .unwrap_or(default)
    };
    let per_page = number("per_page", DEFAULT_PER_PAGE);
    let page = number("page", 1);
    let total = items.len();
    let last_page = total.div_ceil(per_page).max(1);
    let start = (page - 1).saturating_mul(per_page).min(total);
    let end = start.saturating_add(per_page).min(total);
    let data: Vec<Value> = items[start..end].iter().map(|item| render(item)).collect();
    let (from, to) = if data.is_empty() {
        (Value::Null, Value::Null)
    } else {
        (json!(start + 1), json!(end))
    };
    // FluentCRM's page URLs are relative.
    let page_url = |page: usize| json!(format!("?page={page}"));
    json!({
        "current_page": page,
        "data": data,
        "first_page_url": page_url(1),
        "from": from,
        "last_page": last_page,
        "last_page_url": page_url(last_page),
        "next_page_url": if page < last_page { page_url(page + 1) } else { Value::Null },
        "path": "",
        "per_page": per_page,
        "prev_page_url": if page > 1 { page_url(page - 1) } else { Value::Null },
        "to": to,
        "total": total,
    })
}

/// A contact. Numeric columns come back as strings, as MySQL hands them
/// to PHP.
fn render_subscriber(subscriber: &Subscriber) -> Value {
    let full_name = format!("{} {}", subscriber.first_name, subscriber.last_name);
    json!({
        "id": subscriber.id.to_string(),
        "user_id": null,
        "hash": format!("{:032x}", subscriber.id.wrapping_mul(0x9e37_79b9)),
        "contact_owner": null,
        "company_id": null,
        "prefix": null,
        "first_name": subscriber.first_name,
        "last_name": subscriber.last_name,
        "email": subscriber.email,
        "timezone": null,
        "address_line_1": "",
        "address_line_2": "",
        "postal_code": "",
        "city": "",
        "state": "",
        "country": "",
        "ip": null,
        "latitude": null,
        "longitude": null,
        "total_points": "0",
        "life_time_value": "0",
        "phone": "",
        "status": subscriber.status,
        "contact_type": "lead",
        "source": "web",
        "avatar": null,
        "date_of_birth": "0000-00-00",
        "created_at": timestamp(subscriber.created_at),
        "last_activity": null,
        "updated_at": timestamp(subscriber.updated_at),
        "full_name": full_name,
        "photo": format!("https://www.gravatar.com/avatar/{:032x}?s=128", subscriber.id),
    })
}

fn render_list(list: &List) -> Value {
    json!({
        "id": list.id.to_string(),
        "title": list.title,
        "slug": list.slug,
        "description": "",
        "is_public": "0",
        "created_at": timestamp(list.created_at),
        "updated_at": timestamp(list.updated_at),
        "totalCount": list.subscribers,
        "subscribersCount": list.subscribers,
    })
}

/// FluentCRM's timestamps: site-local, `YYYY-MM-DD HH:MM:SS`, no offset.
fn timestamp(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn ids(items: &[&u64], pairs: &[(&str, &str)]) -> Value {
        paginate(items, &query(pairs), |id| json!(id))
    }

    #[test]
    fn page_past_the_end_has_empty_data() {
        let items: Vec<u64> = (1..=5).collect();
        let refs: Vec<&u64> = items.iter().collect();

        let page = ids(&refs, &[("per_page", "2"), ("page", "9")]);

        assert_eq!(page["data"], json!([]));
        assert_eq!(page["current_page"], 9);
        assert_eq!(page["last_page"], 3);
        assert_eq!(page["from"], Value::Null);
        assert_eq!(page["next_page_url"], Value::Null);
    }

    #[test]
    fn last_page_holds_the_rest() {
        let items: Vec<u64> = (1..=5).collect();
        let refs: Vec<&u64> = items.iter().collect();

        let page = ids(&refs, &[("per_page", "2"), ("page", "3")]);

        assert_eq!(page["data"], json!([5]));
        assert_eq!(
            (page["from"].clone(), page["to"].clone()),
            (json!(5), json!(5))
        );
        assert_eq!(page["total"], 5);
    }

    #[test]
    fn empty_collection_has_one_empty_page() {
        let page = ids(&[], &[]);

        assert_eq!(page["data"], json!([]));
        assert_eq!(
            (page["current_page"].clone(), page["last_page"].clone()),
            (json!(1), json!(1))
        );
        assert_eq!(page["per_page"], 15);
    }
}
