//! A short-lived cache of resolved tokens, so that most requests authenticate without a
//! database round trip. Entries live at most `TOKEN_CACHE_SECONDS` (and never past the token's
//! own expiry); revocations reach it at once through PostgreSQL notifications (`listen`), and
//! anything missed while the notification connection was down is dropped when it comes back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::postgres::PgListener;
use sqlx::PgPool;

use super::token::Caller;

/// The channel the database notifies on when a token is revoked, expires early or disappears,
/// or when an account changes role or organization (payload `*`: forget everything).
pub const CHANNEL: &str = "access_tokens_changed";

/// Most tokens remembered at once; beyond this, the cache starts over.
const MAX_ENTRIES: usize = 100_000;

struct Entry {
    caller: Caller,
    valid_until: Instant,
}

/// Resolved tokens by digest.
pub struct TokenCache {
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], Entry>>,
    /// Whether revocation notices are being received right now.
    listening: AtomicBool,
}

impl TokenCache {
    /// A cache keeping entries for `ttl`; a zero `ttl` disables it.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
            listening: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        // A panic while holding the lock cannot leave the map inconsistent: use it anyway.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, digest: &[u8; 32]) -> Option<Caller> {
        if self.ttl.is_zero() {
            return None;
        }
        let mut entries = self.lock();
        match entries.get(digest) {
            Some(entry) if entry.valid_until > Instant::now() => Some(entry.caller.clone()),
            Some(_) => {
                entries.remove(digest);
                None
            }
            None => None,
        }
    }

    /// Remembers a token that resolved to `caller` and expires at `expires_at`.
    pub fn insert(&self, digest: [u8; 32], caller: Caller, expires_at: DateTime<Utc>) {
        if self.ttl.is_zero() {
            return;
        }
        let left = (expires_at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        let valid_until = Instant::now() + self.ttl.min(left);
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            let now = Instant::now();
            entries.retain(|_, e| e.valid_until > now);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            digest,
            Entry {
                caller,
                valid_until,
            },
        );
    }

    pub fn remove(&self, digest: &[u8; 32]) {
        self.lock().remove(digest);
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

    /// Whether revocation notices are being received (entries cached from now on will hear of
    /// their revocation at once).
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }

    fn apply(&self, payload: &str) {
        let mut digest = [0u8; 32];
        match hex::decode_to_slice(payload, &mut digest) {
            Ok(()) => self.remove(&digest),
            // `*`, or anything unexpected: forget everything rather than risk a stale entry.
            Err(_) => self.clear(),
        }
    }
}

/// Follows token changes for as long as the process runs. While the connection is down the
/// cache keeps serving entries until their short lifetime ends; on every (re)connection it is
/// cleared, since notifications may have been missed.
pub async fn listen(pool: PgPool, cache: std::sync::Arc<TokenCache>) {
    if cache.ttl.is_zero() {
        return;
    }
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::debug!(error = %e, "token notifications: cannot connect; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::debug!(error = %e, "token notifications: cannot listen; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        cache.clear();
        cache.listening.store(true, Ordering::SeqCst);
        tracing::debug!("token notifications: listening");
        // `Ok(None)` or an error: the connection was lost; reconnect (and clear) from the top.
        while let Ok(Some(notification)) = listener.try_recv().await {
            cache.apply(notification.payload());
        }
        cache.listening.store(false, Ordering::SeqCst);
        tracing::warn!("token notifications: connection lost; reconnecting");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::Role;

    fn caller() -> Caller {
        Caller {
            user_id: 1,
            role: Role::User,
            organization_id: Some(2),
        }
    }

    #[test]
    fn entries_expire_with_the_token_or_the_ttl_whichever_is_first() {
        let cache = TokenCache::new(Duration::from_secs(60));
        cache.insert([1; 32], caller(), Utc::now() + chrono::Duration::hours(1));
        cache.insert([2; 32], caller(), Utc::now() - chrono::Duration::seconds(1));
        assert_eq!(cache.get(&[1; 32]), Some(caller()));
        assert_eq!(
            cache.get(&[2; 32]),
            None,
            "an expired token is never served"
        );
        let short = TokenCache::new(Duration::from_millis(1));
        short.insert([1; 32], caller(), Utc::now() + chrono::Duration::hours(1));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(short.get(&[1; 32]), None);
    }

    #[test]
    fn notifications_remove_one_token_or_everything() {
        let cache = TokenCache::new(Duration::from_secs(60));
        let later = Utc::now() + chrono::Duration::hours(1);
        cache.insert([1; 32], caller(), later);
        cache.insert([2; 32], caller(), later);
        cache.apply(&hex::encode([1u8; 32]));
        assert_eq!(cache.get(&[1; 32]), None);
        assert!(cache.get(&[2; 32]).is_some());
        cache.apply("*");
        assert!(cache.is_empty());
    }

    #[test]
    fn a_zero_ttl_disables_the_cache() {
        let cache = TokenCache::new(Duration::ZERO);
        cache.insert([1; 32], caller(), Utc::now() + chrono::Duration::hours(1));
        assert_eq!(cache.get(&[1; 32]), None);
    }
}
