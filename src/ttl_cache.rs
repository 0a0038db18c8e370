//! A small in-process map whose entries live a bounded time: what the service remembers about
//! tokens and list paths so that most requests skip a database round trip. A zero lifetime
//! disables it. The database tells the service when to forget entries early (see
//! `auth::cache::listen`).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Most entries remembered at once; beyond this, expired ones go, and if that is not enough,
/// everything does.
const MAX_ENTRIES: usize = 100_000;

pub struct TtlCache<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Hash + Eq, V: Clone> TtlCache<K, V> {
    /// A cache keeping entries for `ttl`; a zero `ttl` disables it.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn is_enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, (V, Instant)>> {
        // A panic while holding the lock cannot leave the map inconsistent: use it anyway.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, key: &K) -> Option<V> {
        if !self.is_enabled() {
            return None;
        }
        let mut entries = self.lock();
        match entries.get(key) {
            Some((value, valid_until)) if *valid_until > Instant::now() => Some(value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Remembers `value` for the cache's lifetime, or for `at_most` when that is shorter.
    pub fn insert(&self, key: K, value: V, at_most: Duration) {
        if !self.is_enabled() {
            return;
        }
        let valid_until = Instant::now() + self.ttl.min(at_most);
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            let now = Instant::now();
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (value, valid_until));
    }

    pub fn remove(&self, key: &K) {
        self.lock().remove(key);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_live_the_shorter_of_the_ttl_and_their_own_bound() {
        let cache = TtlCache::new(Duration::from_secs(60));
        cache.insert(1, "a", Duration::MAX);
        cache.insert(2, "b", Duration::ZERO);
        assert_eq!(cache.get(&1), Some("a"));
        assert_eq!(
            cache.get(&2),
            None,
            "an entry past its own bound is never served"
        );
        let short = TtlCache::new(Duration::from_millis(1));
        short.insert(1, "a", Duration::MAX);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(short.get(&1), None);
    }

    #[test]
    fn entries_can_be_forgotten_one_by_one_or_all_at_once() {
        let cache = TtlCache::new(Duration::from_secs(60));
        cache.insert(1, "a", Duration::MAX);
        cache.insert(2, "b", Duration::MAX);
        cache.remove(&1);
        assert_eq!(cache.get(&1), None);
        assert_eq!(cache.get(&2), Some("b"));
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn a_zero_ttl_disables_the_cache() {
        let cache = TtlCache::new(Duration::ZERO);
        cache.insert(1, "a", Duration::MAX);
        assert_eq!(cache.get(&1), None);
        assert!(!cache.is_enabled());
    }
}
