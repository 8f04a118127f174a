//! The per-process cache of credential versions.
//!
//! A KV v2 version never changes once written, so `(path, version)` names one value for as
//! long as it exists, and a cached copy can never be stale: it can only outlive the version
//! (destroyed after a rotation, or the connection deleted), and nothing asks for a version
//! that is no longer in use except a run that read the pointer before it moved.
//!
//! Entries hold the data as JSON bytes in a [`SecretSlice`], which zeroizes its memory when
//! dropped: on eviction, on expiry and on [`Cache::forget`]. The cache is bounded in entries
//! and in age: an entry is dropped `ttl` after it was read from Vault, however often it is
//! used, and the oldest entry makes room for a new one. An expired entry is dropped when it is
//! read and swept at the next insert.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use hashlink::LinkedHashMap;
use secrecy::{ExposeSecret as _, SecretSlice};
use serde::de::DeserializeOwned;

/// What identifies one cached value: the secret's path and the version.
type Key = (String, u64);

/// A bounded, expiring map from `(path, version)` to the data read there.
pub(crate) struct Cache {
    entries: Mutex<LinkedHashMap<Key, Entry>>,
    capacity: usize,
    ttl: Duration,
}

struct Entry {
    data: Arc<SecretSlice<u8>>,
    read_at: Instant,
}

impl Cache {
    /// A cache of at most `capacity` entries, each kept at most `ttl`; `capacity` 0 or a zero
    /// `ttl` caches nothing.
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            entries: Mutex::new(LinkedHashMap::new()),
            capacity,
            ttl,
        }
    }

    fn enabled(&self) -> bool {
        self.capacity > 0 && !self.ttl.is_zero()
    }

    /// The value cached for `path` at `version`, if it is there and fresh and is a `T`.
    pub(crate) fn get<T: DeserializeOwned>(&self, path: &str, version: u64) -> Option<T> {
        if !self.enabled() {
            return None;
        }
        let data = {
            let mut entries = self.lock();
            let key = (path.to_owned(), version);
            let entry = entries.get(&key)?;
            if entry.read_at.elapsed() >= self.ttl {
                entries.remove(&key);
                return None;
            }
            Arc::clone(&entry.data)
        };
        serde_json::from_slice(data.expose_secret()).ok()
    }

    /// Keeps `data`, read from `path` at `version`.
    pub(crate) fn insert(&self, path: &str, version: u64, data: &serde_json::Value) {
        if !self.enabled() {
            return;
        }
        let Ok(bytes) = serde_json::to_vec(data) else {
            return;
        };
        let entry = Entry {
            data: Arc::new(SecretSlice::from(bytes)),
            read_at: Instant::now(),
        };
        let mut entries = self.lock();
        // Oldest first: expired entries are at the front.
        while let Some((_, oldest)) = entries.front()
            && oldest.read_at.elapsed() >= self.ttl
        {
            entries.pop_front();
        }
        entries.insert((path.to_owned(), version), entry);
        while entries.len() > self.capacity {
            entries.pop_front();
        }
    }

    /// Drops the entry of `path` at `version`.
    pub(crate) fn remove(&self, path: &str, version: u64) {
        self.lock().remove(&(path.to_owned(), version));
    }

    /// Drops every entry whose path starts with `prefix`.
    pub(crate) fn forget(&self, prefix: &str) {
        self.lock().retain(|(path, _), _| !path.starts_with(prefix));
    }

    /// How many entries are held, expired ones included until swept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LinkedHashMap<Key, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("capacity", &self.capacity)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_cached_version_reads_back_until_it_is_removed() {
        let cache = Cache::new(10, HOUR);
        cache.insert("a", 1, &json!({"credentials": "one"}));

        let read: serde_json::Value = cache.get("a", 1).unwrap();

        assert_eq!(read, json!({"credentials": "one"}));
        assert!(cache.get::<serde_json::Value>("a", 2).is_none());
        cache.remove("a", 1);
        assert!(cache.get::<serde_json::Value>("a", 1).is_none());
    }

    #[test]
    fn the_oldest_entry_makes_room_for_a_new_one() {
        let cache = Cache::new(2, HOUR);
        cache.insert("a", 1, &json!(1));
        cache.insert("a", 2, &json!(2));
        cache.insert("a", 3, &json!(3));

        assert_eq!(cache.len(), 2);
        assert!(cache.get::<u8>("a", 1).is_none());
        assert_eq!(cache.get::<u8>("a", 3), Some(3));
    }

    #[test]
    fn an_entry_expires_however_often_it_is_read() {
        let cache = Cache::new(10, Duration::from_millis(30));
        cache.insert("a", 1, &json!(1));
        assert_eq!(cache.get::<u8>("a", 1), Some(1));

        std::thread::sleep(Duration::from_millis(40));

        assert!(cache.get::<u8>("a", 1).is_none());
        assert_eq!(cache.len(), 0, "a read of an expired entry drops it");
    }

    #[test]
    fn expired_entries_are_swept_when_another_is_inserted() {
        let cache = Cache::new(10, Duration::from_millis(30));
        cache.insert("a", 1, &json!(1));
        cache.insert("b", 1, &json!(1));
        std::thread::sleep(Duration::from_millis(40));

        cache.insert("c", 1, &json!(1));

        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn forgetting_a_prefix_drops_only_its_entries() {
        let cache = Cache::new(10, HOUR);
        cache.insert("tenants/t/connections/c1/credentials", 1, &json!(1));
        cache.insert("tenants/t/connections/c1/credentials", 2, &json!(2));
        cache.insert("tenants/t/connections/c2/credentials", 1, &json!(3));

        cache.forget("tenants/t/connections/c1/");

        assert_eq!(cache.len(), 1);
        assert_eq!(
            cache.get::<u8>("tenants/t/connections/c2/credentials", 1),
            Some(3)
        );
    }

    #[test]
    fn a_zero_capacity_or_ttl_caches_nothing() {
        for cache in [Cache::new(0, HOUR), Cache::new(10, Duration::ZERO)] {
            cache.insert("a", 1, &json!(1));
            assert!(cache.get::<u8>("a", 1).is_none());
        }
    }
}
