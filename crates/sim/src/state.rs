//! The simulator's in-memory world behind one lock: the sites, each
//! provider's state, faults and scheduled changes.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use chrono::NaiveDateTime;

use crate::{
    Collection, Error, SiteChange, TrelloChange,
    config::{AcmeConfig, GoogleConfig, LinkedInConfig, MetaConfig, SiteConfig, TrelloConfig},
    fault::{Fault, Faults},
    oauth::{self, Provider},
    providers::{
        acme::Acme,
        google::Google,
        linkedin::LinkedIn,
        meta::Meta,
        trello::Trello,
        wordpress::site::{PostStatus, Site},
    },
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
    /// The one tenant Acme serves.
    pub(crate) acme_tenant: String,
    /// The usage events the demo's Lago stored.
    pub(crate) lago: crate::lago::Ledger,
    /// The API of typed-in credentials.
    pub(crate) keyed: crate::providers::keyed::Keyed,
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
    acme: Acme,
}

impl State {
    pub(crate) fn new(
        base_url: String,
        google: &GoogleConfig,
        trello: &TrelloConfig,
        meta: &MetaConfig,
        linkedin: &LinkedInConfig,
        acme: &AcmeConfig,
    ) -> Self {
        Self {
            acme_tenant: acme.tenant.clone(),
            lago: crate::lago::Ledger::default(),
            keyed: crate::providers::keyed::Keyed::default(),
            world: Mutex::new(World {
                sites: HashMap::new(),
                faults: Faults::default(),
                requests: HashMap::new(),
                scheduled: Vec::new(),
                google: Google::new(google),
                trello: Trello::new(trello),
                meta: Meta::new(meta),
                linkedin: LinkedIn::new(linkedin),
                acme: Acme::new(acme, &base_url),
            }),
            base_url,
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
            Provider::Acme => &mut world.acme.oauth,
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
