//! The simulator's in-memory world: sites, their seeded content, faults.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};

use crate::{
    Collection, Error, SiteChange, TrelloChange,
    config::{GoogleConfig, LinkedInConfig, MetaConfig, Role, SiteConfig, TrelloConfig},
    fault::{Fault, Faults},
    oauth::{self, Provider},
    providers::{google::Google, linkedin::LinkedIn, meta::Meta, trello::Trello},
};

/// A change to a site's or a Trello member's content.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// To the site named by the fault target.
    Site(SiteChange),
    /// To a Trello member's boards.
    Trello {
        /// The member's username.
        member: String,
        /// What changes.
        change: TrelloChange,
    },
}

/// Everything the routes read and the handle changes.
#[derive(Debug)]
pub(crate) struct State {
    /// `http://host:port`, for the links WordPress puts in bodies and headers.
    pub(crate) base_url: String,
    world: Mutex<World>,
}

#[derive(Debug)]
struct World {
    /// Sites by name. A site is replaced, never changed in place, so a
    /// request works on a consistent snapshot without holding the lock.
    sites: HashMap<String, Arc<Site>>,
    faults: Faults,
    /// Requests received per fault target (site name or `google:{user}`),
    /// known or not.
    requests: HashMap<String, u64>,
    /// Content changes waiting for their fault target's request count
    /// (a site's, or a Trello member's) to reach theirs.
    scheduled: Vec<(String, u64, Change)>,
    google: Google,
    trello: Trello,
    meta: Meta,
    linkedin: LinkedIn,
}

impl State {
    pub(crate) fn new(
        base_url: String,
        google: &GoogleConfig,
        trello: &TrelloConfig,
        meta: &MetaConfig,
        linkedin: &LinkedInConfig,
    ) -> Self {
        Self {
            base_url,
            world: Mutex::new(World {
                sites: HashMap::new(),
                faults: Faults::default(),
                requests: HashMap::new(),
                scheduled: Vec::new(),
                google: Google::new(google),
                trello: Trello::new(trello),
                meta: Meta::new(meta),
                linkedin: LinkedIn::new(linkedin),
            }),
        }
    }

    /// Runs `f` on Google's grants and users, under the lock.
    pub(crate) fn google<R>(&self, f: impl FnOnce(&mut Google) -> R) -> R {
        f(&mut self.world().google)
    }

    /// Runs `f` on Trello's tokens and members, under the lock.
    pub(crate) fn trello<R>(&self, f: impl FnOnce(&mut Trello) -> R) -> R {
        f(&mut self.world().trello)
    }

    /// Runs `f` on Meta's grants and users, under the lock.
    pub(crate) fn meta<R>(&self, f: impl FnOnce(&mut Meta) -> R) -> R {
        f(&mut self.world().meta)
    }

    /// Runs `f` on LinkedIn's grants and members, under the lock.
    pub(crate) fn linkedin<R>(&self, f: impl FnOnce(&mut LinkedIn) -> R) -> R {
        f(&mut self.world().linkedin)
    }

    /// Runs `f` on `provider`'s OAuth 2.0 server, under the lock.
    pub(crate) fn oauth<R>(
        &self,
        provider: Provider,
        f: impl FnOnce(&mut oauth::Server) -> R,
    ) -> R {
        let mut world = self.world();
        let server = match provider {
            Provider::Google => &mut world.google.oauth,
            Provider::Meta => &mut world.meta.oauth,
            Provider::LinkedIn => &mut world.linkedin.oauth,
        };
        f(server)
    }

    fn world(&self) -> MutexGuard<'_, World> {
        // A panic while the lock was held leaves plain data behind.
        self.world
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Seeds `config` and serves it, replacing a site of the same name.
    pub(crate) fn add_site(&self, config: &SiteConfig) -> Result<(), Error> {
        let site = Site::seed(&self.base_url, config)?;
        self.world().sites.insert(site.name.clone(), Arc::new(site));
        Ok(())
    }

    /// Counts a request to `site` (a fault target) and takes the fault it
    /// should suffer.
    pub(crate) fn arrive(&self, site: &str) -> Option<Fault> {
        let mut world = self.world();
        let count = world.requests.entry(site.to_owned()).or_default();
        *count += 1;
        let count = *count;
        let (due, waiting) = std::mem::take(&mut world.scheduled)
            .into_iter()
            .partition(|(name, at, _)| name == site && *at <= count);
        world.scheduled = waiting;
        for (_, _, change) in due {
            world.apply(site, &change);
        }
        world.faults.take(site)
    }

    /// Applies every scheduled change now, whatever its request count.
    pub(crate) fn apply_scheduled(&self) {
        let mut world = self.world();
        for (target, _, change) in std::mem::take(&mut world.scheduled) {
            world.apply(&target, &change);
        }
    }

    /// See [`SimHandle::change_site`](crate::SimHandle::change_site).
    pub(crate) fn change_site(&self, site: &str, change: &SiteChange) -> Vec<u64> {
        self.world().change_site(site, change)
    }

    /// Schedules `change` for just before `target` (a fault target: a
    /// site name, or `trello:{member}`) answers its `requests`-th request
    /// from now.
    pub(crate) fn schedule_change(&self, target: &str, requests: u64, change: Change) {
        let mut world = self.world();
        let at = world.requests.get(target).copied().unwrap_or(0) + requests.max(1);
        world.scheduled.push((target.to_owned(), at, change));
    }

    /// See [`SimHandle::published`](crate::SimHandle::published).
    pub(crate) fn published(
        &self,
        site: &str,
        collection: Collection,
    ) -> Vec<(u64, NaiveDateTime)> {
        let Some(site) = self.site(site) else {
            return Vec::new();
        };
        let items = match collection {
            Collection::Posts => &site.posts,
            Collection::Pages => &site.pages,
        };
        let mut published: Vec<_> = items
            .iter()
            .filter(|post| post.status == PostStatus::Publish)
            .map(|post| (post.id, post.modified_gmt))
            .collect();
        published.sort_unstable();
        published
    }

    /// See [`SimHandle::subscribers`](crate::SimHandle::subscribers).
    pub(crate) fn subscribers(&self, site: &str) -> Vec<(u64, NaiveDateTime)> {
        let Some(crm) = self.site(site).and_then(|site| site.crm.clone()) else {
            return Vec::new();
        };
        let mut subscribers: Vec<_> = crm
            .subscribers
            .iter()
            .map(|subscriber| (subscriber.id, subscriber.updated_at))
            .collect();
        subscribers.sort_unstable();
        subscribers
    }

    /// See [`SimHandle::crm_lists`](crate::SimHandle::crm_lists).
    pub(crate) fn crm_lists(&self, site: &str) -> Vec<(u64, NaiveDateTime)> {
        let Some(crm) = self.site(site).and_then(|site| site.crm.clone()) else {
            return Vec::new();
        };
        let mut lists: Vec<_> = crm
            .lists
            .iter()
            .map(|list| (list.id, list.updated_at))
            .collect();
        lists.sort_unstable();
        lists
    }

    pub(crate) fn site(&self, name: &str) -> Option<Arc<Site>> {
        self.world().sites.get(name).cloned()
    }

    pub(crate) fn inject(&self, site: Option<&str>, fault: Fault, times: u32) {
        self.world().faults.push(site, fault, times);
    }

    pub(crate) fn clear_faults(&self) {
        self.world().faults.clear();
    }

    /// Removes every application password of `username` on `site`;
    /// `false` when there is no such site or user.
    pub(crate) fn revoke_passwords(&self, site: &str, username: &str) -> bool {
        let mut world = self.world();
        let Some(site) = world.sites.get_mut(site) else {
            return false;
        };
        let Some(index) = site.users.iter().position(|user| user.username == username) else {
            return false;
        };
        Arc::make_mut(site).users[index].passwords.clear();
        true
    }

    pub(crate) fn requests(&self, site: &str) -> u64 {
        self.world().requests.get(site).copied().unwrap_or(0)
    }
}

impl World {
    fn change_site(&mut self, name: &str, change: &SiteChange) -> Vec<u64> {
        let Some(site) = self.sites.get_mut(name) else {
            return Vec::new();
        };
        Arc::make_mut(site).change(change)
    }

    /// Applies a scheduled `change` whose fault target is `target`.
    fn apply(&mut self, target: &str, change: &Change) {
        match change {
            Change::Site(change) => {
                self.change_site(target, change);
            }
            Change::Trello { member, change } => {
                self.trello.change(member, change);
            }
        }
    }
}

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
    fn seed(base_url: &str, config: &SiteConfig) -> Result<Self, Error> {
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
    fn change(&mut self, change: &SiteChange) -> Vec<u64> {
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
