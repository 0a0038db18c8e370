//! A small in-process map whose entries live a bounded time: what the service remembers about
//! tokens and list paths so that most requests skip a database round trip. A zero lifetime
//! disables it. The database tells the service when to forget entries early (see
//! `notifications::listen`); an answer read from the database before such a notice arrived is
//! then not remembered after it (see [`TtlCache::generation`]).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Most entries remembered at once; beyond this, expired ones go, and if that is not enough,
/// everything does.
const MAX_ENTRIES: usize = 100_000;

pub struct TtlCache<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (V, Instant)>>,
    /// Moves on, under the lock, whenever entries are forgotten.
    generation: AtomicU64,
}

impl<K: Hash + Eq, V: Clone> TtlCache<K, V> {
    /// A cache keeping entries for `ttl`; a zero `ttl` disables it.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
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

    /// Take it before reading what is to be remembered, and pass it to [`Self::insert`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Remembers `value` for the cache's lifetime, or for `at_most` when that is shorter, unless
    /// something was forgotten since `read_at` (a [`Self::generation`]): the notice that made
    /// the cache forget may have been about this very value.
    pub fn insert(&self, key: K, value: V, at_most: Duration, read_at: u64) {
        if !self.is_enabled() {
            return;
        }
        let valid_until = Instant::now() + self.ttl.min(at_most);
        let mut entries = self.lock();
        if self.generation() != read_at {
            return;
        }
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
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.remove(key);
    }

    pub fn clear(&self) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.clear();
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
        cache.insert(1, "a", Duration::MAX, 0);
        cache.insert(2, "b", Duration::ZERO, 0);
        assert_eq!(cache.get(&1), Some("a"));
        assert_eq!(
            cache.get(&2),
            None,
            "an entry past its own bound is never served"
        );
        let short = TtlCache::new(Duration::from_millis(1));
        short.insert(1, "a", Duration::MAX, 0);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(short.get(&1), None);
    }

    #[test]
    fn entries_can_be_forgotten_one_by_one_or_all_at_once() {
        let cache = TtlCache::new(Duration::from_secs(60));
        cache.insert(1, "a", Duration::MAX, 0);
        cache.insert(2, "b", Duration::MAX, 0);
        cache.remove(&1);
        assert_eq!(cache.get(&1), None);
        assert_eq!(cache.get(&2), Some("b"));
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn a_value_read_before_something_was_forgotten_is_not_remembered() {
        let cache = TtlCache::new(Duration::from_secs(60));
        let read_at = cache.generation();
        cache.remove(&7);
        cache.insert(1, "read before the notice", Duration::MAX, read_at);
        assert_eq!(cache.get(&1), None);
        cache.insert(1, "read after it", Duration::MAX, cache.generation());
        assert_eq!(cache.get(&1), Some("read after it"));
    }

    #[test]
    fn a_zero_ttl_disables_the_cache() {
        let cache = TtlCache::new(Duration::ZERO);
        cache.insert(1, "a", Duration::MAX, 0);
        assert_eq!(cache.get(&1), None);
        assert!(!cache.is_enabled());
    }
}
