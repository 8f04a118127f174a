//! FluentCRM's `fluent-crm/v2` routes: `subscribers` and `lists`.
//!
//! `subscribers` is FluentCRM's `ContactsQuery`: sorted by one column
//! (`sort_by`, which must be a fillable column or `id`; `sort_type`
//! `DESC` by default) with nothing to break ties, so contacts that share
//! an `updated_at` come in no defined order, which differs between pages;
//! with `filter_type=advanced`, `advanced_filters` (JSON: groups that are
//! OR-ed, of items that are AND-ed, each
//! `{"source": ["subscriber", column], "operator", "value"}`) becomes a
//! plain `WHERE column operator value`, which is how a client asks for
//! contacts changed since a time (`updated_at >= ...`, in site time) or
//! after an id (`id > ...`).

use std::{cmp::Ordering, collections::HashMap};

use axum::{Json, extract::Query, http::StatusCode};
use chrono::{NaiveDate, NaiveDateTime};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    config::Role,
    providers::wordpress::{
        Caller, RestError,
        site::{Crm, List, Subscriber},
    },
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
    let groups = advanced_filters(&query);
    let mut items: Vec<&Subscriber> = crm
        .subscribers
        .iter()
        .filter(|subscriber| {
            groups.is_empty()
                || groups
                    .iter()
                    .any(|group| group.iter().all(|item| item.keeps(subscriber)))
        })
        .collect();
    let sort_by = query.get("sort_by").map_or("id", String::as_str);
    // MySQL returns rows that tie on the sort column in no defined order,
    // and in a different one for another LIMIT/OFFSET: scrambled by page.
    let window = query
        .get("page")
        .and_then(|page| page.parse::<u64>().ok())
        .unwrap_or(1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let scramble = |id: u64| (id.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ window).rotate_left(17);
    items.sort_by(|a, b| {
        let by_field = match sort_by {
            "id" => a.id.cmp(&b.id),
            "email" => a.email.cmp(&b.email),
            "created_at" => a.created_at.cmp(&b.created_at),
            "updated_at" => a.updated_at.cmp(&b.updated_at),
            _ => Ordering::Equal,
        };
        by_field.then_with(|| scramble(a.id).cmp(&scramble(b.id)))
    });
    if descending(&query, "sort_type") {
        items.reverse();
    }
    let paginator = paginate(&items, &query, |subscriber| {
        render_subscriber(subscriber, &crm.lists)
    });
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

/// One item of `advanced_filters`, as FluentCRM reads it.
#[derive(Deserialize)]
struct FilterItem {
    source: Vec<String>,
    operator: String,
    #[serde(default)]
    value: Value,
}

/// The groups of `advanced_filters` when `filter_type=advanced`: items
/// without a source pair or an operator are dropped, as FluentCRM drops
/// them, and so are sources other than the contact's own columns.
fn advanced_filters(query: &HashMap<String, String>) -> Vec<Vec<FilterItem>> {
    if query.get("filter_type").map(String::as_str) != Some("advanced") {
        return Vec::new();
    }
    let Some(groups) = query
        .get("advanced_filters")
        .and_then(|raw| serde_json::from_str::<Vec<Vec<FilterItem>>>(raw).ok())
    else {
        return Vec::new();
    };
    groups
        .into_iter()
        .map(|group| {
            group
                .into_iter()
                .filter(|item| {
                    item.source.len() == 2
                        && item.source[0] == "subscriber"
                        && !item.source[1].is_empty()
                        && !item.operator.is_empty()
                })
                .collect::<Vec<_>>()
        })
        .filter(|group| !group.is_empty())
        .collect()
}

impl FilterItem {
    /// `WHERE column operator value` for `subscriber`.
    fn keeps(&self, subscriber: &Subscriber) -> bool {
        let value = match &self.value {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            _ => return false,
        };
        let ordering = match self.source[1].as_str() {
            "id" => match value.trim().parse::<u64>() {
                Ok(value) => subscriber.id.cmp(&value),
                Err(_) => return false,
            },
            "updated_at" | "created_at" => {
                let Some(value) = mysql_datetime(&value) else {
                    return false;
                };
                let column = if self.source[1] == "updated_at" {
                    subscriber.updated_at
                } else {
                    subscriber.created_at
                };
                column.cmp(&value)
            }
            "email" => subscriber.email.as_str().cmp(value.as_str()),
            "status" => subscriber.status.cmp(value.as_str()),
            // Other columns are not simulated: the item matches nothing.
            _ => return false,
        };
        match self.operator.as_str() {
            "=" => ordering.is_eq(),
            "!=" | "<>" => ordering.is_ne(),
            ">" => ordering.is_gt(),
            ">=" => ordering.is_ge(),
            "<" => ordering.is_lt(),
            "<=" => ordering.is_le(),
            _ => false,
        }
    }
}

/// A string MySQL reads as a DATETIME: `YYYY-MM-DD HH:MM:SS` or a date.
fn mysql_datetime(value: &str) -> Option<NaiveDateTime> {
    let value = value.trim();
    NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S")
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .ok()
                .and_then(|date| date.and_hms_opt(0, 0, 0))
        })
}

fn descending(query: &HashMap<String, String>, param: &str) -> bool {
    !query
        .get(param)
        .is_some_and(|direction| direction.eq_ignore_ascii_case("asc"))
}

/// Laravel's length-aware paginator over `items`. A page past the end has
/// empty `data` (status 200), unlike WordPress core.
fn paginate<T>(
    items: &[&T],
    query: &HashMap<String, String>,
    render: impl Fn(&T) -> Value,
) -> Value {
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

/// Whether contact `subscriber` is on list `list`: a fixed mix, the same
/// on every request, that puts each contact on at least one of the first
/// four lists and gives no two lists the same members.
pub(crate) fn on_list(subscriber: u64, list: u64) -> bool {
    let mixed = subscriber
        .wrapping_mul(list.wrapping_mul(2).wrapping_add(1))
        .wrapping_add(list);
    mixed.is_multiple_of(3) || (subscriber / 3).wrapping_add(list).is_multiple_of(4)
}

/// A contact, with the lists it is on and its tags (none), as the
/// listing loads them. The id is a number (Eloquent casts an incrementing
/// key); other numeric columns come back as strings, as MySQL hands them
/// to PHP.
fn render_subscriber(subscriber: &Subscriber, lists: &[List]) -> Value {
    let full_name = format!("{} {}", subscriber.first_name, subscriber.last_name);
    let on: Vec<Value> = lists
        .iter()
        .filter(|list| on_list(subscriber.id, list.id))
        .map(render_list)
        .collect();
    json!({
        "id": subscriber.id,
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
        "lists": on,
        "tags": [],
    })
}

fn render_list(list: &List) -> Value {
    json!({
        "id": list.id,
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
