//! A WordPress site as the simulator seeds and changes it: its users and
//! application passwords, posts and pages, and the FluentCRM plugin's
//! contacts and lists.

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};

use crate::{
    Collection, Error, SiteChange,
    config::{Role, SiteConfig},
};

/// A seeded site.
#[derive(Debug, Clone)]
pub(crate) struct Site {
    pub(crate) name: String,
    /// `{base_url}/sites/{name}`.
    pub(crate) url: String,
    /// Site-local time minus UTC.
    pub(crate) utc_offset: TimeDelta,
    pub(crate) users: Vec<User>,
    pub(crate) posts: Vec<Post>,
    pub(crate) pages: Vec<Post>,
    pub(crate) crm: Option<Crm>,
    /// Only `/?rest_route=` reaches the REST API; `/wp-json/` is not routed.
    pub(crate) plain_permalinks: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) id: u64,
    pub(crate) username: String,
    pub(crate) role: Role,
    /// Application passwords with everything but letters and digits
    /// removed, as WordPress compares them.
    pub(crate) passwords: Vec<String>,
    pub(crate) registered: NaiveDateTime,
}

/// A post or a page.
#[derive(Debug, Clone)]
pub(crate) struct Post {
    pub(crate) id: u64,
    pub(crate) title: String,
    pub(crate) slug: String,
    pub(crate) date_gmt: NaiveDateTime,
    pub(crate) modified_gmt: NaiveDateTime,
    pub(crate) status: PostStatus,
}

/// Where a post is in its life; listings show published ones only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PostStatus {
    Publish,
    Draft,
    Trash,
}

#[derive(Debug, Clone)]
pub(crate) struct Crm {
    pub(crate) subscribers: Vec<Subscriber>,
    pub(crate) lists: Vec<List>,
}

#[derive(Debug, Clone)]
pub(crate) struct Subscriber {
    pub(crate) id: u64,
    pub(crate) first_name: &'static str,
    pub(crate) last_name: String,
    pub(crate) email: String,
    pub(crate) status: &'static str,
    /// Site-local time, as FluentCRM stores it.
    pub(crate) created_at: NaiveDateTime,
    pub(crate) updated_at: NaiveDateTime,
}

#[derive(Debug, Clone)]
pub(crate) struct List {
    pub(crate) id: u64,
    pub(crate) title: String,
    pub(crate) slug: String,
    pub(crate) subscribers: u64,
    pub(crate) created_at: NaiveDateTime,
    pub(crate) updated_at: NaiveDateTime,
}

const FIRST_NAMES: [&str; 8] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken",
];
const STATUSES: [&str; 4] = ["subscribed", "subscribed", "pending", "unsubscribed"];
const LIST_TITLES: [&str; 4] = ["Newsletter", "Customers", "VIP", "Webinar attendees"];

/// The moment seeded content starts from.
fn epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2024, 1, 1)
        .and_then(|date| date.and_hms_opt(8, 0, 0))
        .expect("a valid date")
}

fn hours(n: u64) -> TimeDelta {
    TimeDelta::hours(i64::try_from(n).expect("seed counts fit in i64"))
}

impl Site {
    pub(crate) fn seed(base_url: &str, config: &SiteConfig) -> Result<Self, Error> {
        check_name(&config.name)?;
        let users = config
            .users
            .iter()
            .zip(1..)
            .map(|(user, id)| User {
                id,
                username: user.username.clone(),
                role: user.role,
                passwords: user
                    .application_passwords
                    .iter()
                    .map(|password| normalize_password(password))
                    .collect(),
                registered: epoch() - TimeDelta::days(30),
            })
            .collect();
        // Posts and pages share WordPress's id space.
        let posts = (1..=u64::from(config.posts))
            .map(|id| post(id, id, "Post"))
            .collect();
        let pages = (1..=u64::from(config.pages))
            .map(|n| post(u64::from(config.posts) + n, n, "Page"))
            .collect();
        let utc_offset = TimeDelta::minutes(i64::from(config.utc_offset_minutes));
        let crm = config.fluentcrm.map(|crm| Crm {
            subscribers: (1..=u64::from(crm.subscribers))
                .map(|id| subscriber(id, utc_offset))
                .collect(),
            lists: (1..=u64::from(crm.lists))
                .map(|id| list(id, u64::from(crm.subscribers), utc_offset))
                .collect(),
        });
        Ok(Self {
            name: config.name.clone(),
            url: format!("{base_url}/sites/{}", config.name),
            utc_offset,
            users,
            posts,
            pages,
            crm,
            plain_permalinks: config.plain_permalinks,
        })
    }

    /// Applies `change`; returns the ids created or changed.
    pub(crate) fn change(&mut self, change: &SiteChange) -> Vec<u64> {
        let now = now();
        if let Some(crm) = &mut self.crm
            && let Some(ids) = crm.change(change, now + self.utc_offset)
        {
            return ids;
        }
        let (id, status) = match *change {
            SiteChange::Create {
                collection,
                count,
                modified_gmt,
            } => {
                let mut next = self
                    .posts
                    .iter()
                    .chain(&self.pages)
                    .map(|post| post.id)
                    .max()
                    .unwrap_or(0);
                let kind = match collection {
                    Collection::Posts => "Post",
                    Collection::Pages => "Page",
                };
                let at = modified_gmt.unwrap_or(now);
                let created: Vec<Post> = (0..count)
                    .map(|_| {
                        next += 1;
                        Post {
                            id: next,
                            title: format!("{kind} {next}"),
                            slug: format!("{}-{next}", kind.to_lowercase()),
                            date_gmt: at,
                            modified_gmt: at,
                            status: PostStatus::Publish,
                        }
                    })
                    .collect();
                let ids = created.iter().map(|post| post.id).collect();
                match collection {
                    Collection::Posts => self.posts.extend(created),
                    Collection::Pages => self.pages.extend(created),
                }
                return ids;
            }
            SiteChange::Delete { id } => {
                let before = self.posts.len() + self.pages.len();
                self.posts.retain(|post| post.id != id);
                self.pages.retain(|post| post.id != id);
                let deleted = before != self.posts.len() + self.pages.len();
                return if deleted { vec![id] } else { Vec::new() };
            }
            SiteChange::Edit { id } => (id, None),
            SiteChange::Trash { id } => (id, Some(PostStatus::Trash)),
            SiteChange::Unpublish { id } => (id, Some(PostStatus::Draft)),
            SiteChange::Publish { id } => (id, Some(PostStatus::Publish)),
            // A site without FluentCRM has no contacts or lists to change.
            SiteChange::CreateSubscribers { .. }
            | SiteChange::EditSubscriber { .. }
            | SiteChange::DeleteSubscriber { .. }
            | SiteChange::CreateLists { .. }
            | SiteChange::EditList { .. }
            | SiteChange::DeleteList { .. } => return Vec::new(),
        };
        let Some(post) = self
            .posts
            .iter_mut()
            .chain(self.pages.iter_mut())
            .find(|post| post.id == id)
        else {
            return Vec::new();
        };
        post.modified_gmt = now;
        match status {
            Some(status) => post.status = status,
            None => post.title = format!("{} (edited)", post.title.trim_end_matches(" (edited)")),
        }
        vec![id]
    }
}

impl Crm {
    /// Applies `change` if it is a FluentCRM one, at site-local time
    /// `now`; returns the ids created or changed, or `None` for a change to
    /// posts or pages.
    fn change(&mut self, change: &SiteChange, now: NaiveDateTime) -> Option<Vec<u64>> {
        let changed = |found: bool, id: u64| if found { vec![id] } else { Vec::new() };
        Some(match *change {
            SiteChange::CreateSubscribers { count } => {
                let next = self.subscribers.iter().map(|s| s.id).max().unwrap_or(0);
                let created: Vec<Subscriber> = (next + 1..=next + u64::from(count))
                    .map(|id| Subscriber {
                        created_at: now,
                        updated_at: now,
                        ..subscriber(id, TimeDelta::zero())
                    })
                    .collect();
                let ids = created.iter().map(|s| s.id).collect();
                self.subscribers.extend(created);
                ids
            }
            SiteChange::EditSubscriber { id } => {
                let found = self.subscribers.iter_mut().find(|s| s.id == id);
                let edited = found.is_some();
                if let Some(subscriber) = found {
                    subscriber.last_name = format!(
                        "{} (edited)",
                        subscriber.last_name.trim_end_matches(" (edited)")
                    );
                    subscriber.updated_at = now;
                }
                changed(edited, id)
            }
            SiteChange::DeleteSubscriber { id } => {
                let before = self.subscribers.len();
                self.subscribers.retain(|s| s.id != id);
                changed(before != self.subscribers.len(), id)
            }
            SiteChange::CreateLists { count } => {
                let next = self.lists.iter().map(|l| l.id).max().unwrap_or(0);
                let created: Vec<List> = (next + 1..=next + u64::from(count))
                    .map(|id| List {
                        created_at: now,
                        updated_at: now,
                        ..list(id, 0, TimeDelta::zero())
                    })
                    .collect();
                let ids = created.iter().map(|l| l.id).collect();
                self.lists.extend(created);
                ids
            }
            SiteChange::EditList { id } => {
                let found = self.lists.iter_mut().find(|l| l.id == id);
                let edited = found.is_some();
                if let Some(list) = found {
                    list.title = format!("{} (edited)", list.title.trim_end_matches(" (edited)"));
                    list.updated_at = now;
                }
                changed(edited, id)
            }
            SiteChange::DeleteList { id } => {
                let before = self.lists.len();
                self.lists.retain(|l| l.id != id);
                changed(before != self.lists.len(), id)
            }
            SiteChange::Create { .. }
            | SiteChange::Edit { .. }
            | SiteChange::Trash { .. }
            | SiteChange::Unpublish { .. }
            | SiteChange::Publish { .. }
            | SiteChange::Delete { .. } => return None,
        })
    }
}

/// The current time in UTC to the second, as WordPress stores it.
fn now() -> NaiveDateTime {
    let now = chrono::Utc::now().naive_utc();
    now - TimeDelta::nanoseconds(i64::from(now.and_utc().timestamp_subsec_nanos()))
}

/// The `n`th post or page, with id `id`, published 5 minutes after the
/// one before (so a site of 100,000 posts is still in the past).
/// Modification times are scattered so that modification order differs
/// from id order, with some ties.
fn post(id: u64, n: u64, kind: &str) -> Post {
    let date_gmt = epoch() + TimeDelta::minutes(i64::try_from(n * 5).unwrap_or(i64::MAX));
    Post {
        id,
        title: format!("{kind} {n}"),
        slug: format!("{}-{n}", kind.to_lowercase()),
        date_gmt,
        modified_gmt: date_gmt + hours((n * 37) % 101 * 3),
        status: PostStatus::Publish,
    }
}

fn subscriber(id: u64, utc_offset: TimeDelta) -> Subscriber {
    let created_at = epoch() + utc_offset + hours(id * 2);
    let index = usize::try_from(id).expect("seed counts fit in usize");
    Subscriber {
        id,
        first_name: FIRST_NAMES[index % FIRST_NAMES.len()],
        last_name: format!("Tester {id}"),
        email: format!("contact{id}@example.test"),
        status: STATUSES[index % STATUSES.len()],
        created_at,
        updated_at: created_at + hours((id * 13) % 50),
    }
}

fn list(id: u64, subscribers: u64, utc_offset: TimeDelta) -> List {
    let index = usize::try_from(id - 1).expect("seed counts fit in usize");
    let title = LIST_TITLES
        .get(index)
        .map_or_else(|| format!("List {id}"), |title| (*title).to_owned());
    let created_at = epoch() + utc_offset + hours(id);
    List {
        id,
        slug: title.to_lowercase().replace(' ', "-"),
        title,
        subscribers: subscribers / id,
        created_at,
        updated_at: created_at + hours(id * 7),
    }
}

/// The password as WordPress compares it: letters and digits only.
pub(crate) fn normalize_password(password: &str) -> String {
    password
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

fn check_name(name: &str) -> Result<(), Error> {
    let valid = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(Error::SiteName {
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeding_is_deterministic() {
        let config = SiteConfig::new("acme").posts(20).pages(3).fluentcrm(30, 5);

        let a = Site::seed("http://sim", &config).unwrap();
        let b = Site::seed("http://sim", &config).unwrap();

        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }

    #[test]
    fn posts_and_pages_share_one_id_space() {
        let site = Site::seed("http://sim", &SiteConfig::new("acme").posts(3).pages(2)).unwrap();

        let ids: Vec<_> = site.posts.iter().chain(&site.pages).map(|p| p.id).collect();
        assert_eq!(ids, [1, 2, 3, 4, 5]);
        assert_eq!(site.pages[0].title, "Page 1");
    }

    #[test]
    fn modification_order_differs_from_id_order() {
        let site = Site::seed("http://sim", &SiteConfig::new("acme").posts(50)).unwrap();

        let mut by_modified = site.posts;
        by_modified.sort_by_key(|post| (post.modified_gmt, post.id));

        let ids: Vec<_> = by_modified.iter().map(|p| p.id).collect();
        assert_ne!(ids, (1..=50).collect::<Vec<_>>());
    }

    #[test]
    fn passwords_compare_without_spaces() {
        assert_eq!(normalize_password("abcd EFGH 1234"), "abcdEFGH1234");
    }

    #[test]
    fn site_names_are_single_path_segments() {
        assert!(check_name("acme_blog-2").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
    }
}
