//! A short-lived cache of resolved tokens, so that most requests authenticate without a
//! database round trip. Entries live at most `TOKEN_CACHE_SECONDS` (and never past the token's
//! own expiry); revocations reach it at once through PostgreSQL notifications (`listen`, which
//! also keeps the list's path cache true), and anything missed while the notification
//! connection was down is dropped when it comes back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgListener;
use sqlx::PgPool;

use super::token::Caller;
use crate::phone_calls::PathCache;
use crate::ttl_cache::TtlCache;

/// The channel the database notifies on. Payloads: a token's SHA-256 digest in hex when that
/// token is revoked, expires early or disappears; `paths` when accounts or extensions change
/// what a list path resolves to; `*` when an account changes role or organization (forget
/// everything).
pub const CHANNEL: &str = "access_tokens_changed";

/// Resolved tokens by digest.
pub struct TokenCache {
    entries: TtlCache<[u8; 32], Caller>,
    /// Whether revocation notices are being received right now.
    listening: AtomicBool,
}

impl TokenCache {
    /// A cache keeping entries for `ttl`; a zero `ttl` disables it.
    pub fn new(ttl: Duration) -> Self {
        Self {
            entries: TtlCache::new(ttl),
            listening: AtomicBool::new(false),
        }
    }

    pub fn get(&self, digest: &[u8; 32]) -> Option<Caller> {
        self.entries.get(digest)
    }

    /// Take it before looking a token up, and pass it to [`Self::insert`].
    pub fn generation(&self) -> u64 {
        self.entries.generation()
    }

    /// Remembers a token that resolved to `caller` and expires at `expires_at`, unless a
    /// revocation notice arrived since the lookup began (`read_at`, a [`Self::generation`]).
    pub fn insert(
        &self,
        digest: [u8; 32],
        caller: Caller,
        expires_at: DateTime<Utc>,
        read_at: u64,
    ) {
        let left = (expires_at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        self.entries.insert(digest, caller, left, read_at);
    }

    pub fn remove(&self, digest: &[u8; 32]) {
        self.entries.remove(digest);
    }

    pub fn clear(&self) {
        self.entries.clear();
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether revocation notices are being received (entries cached from now on will hear of
    /// their revocation at once).
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }
}

/// What the service caches and the database's notifications keep true.
#[derive(Clone)]
pub struct Caches {
    pub tokens: Arc<TokenCache>,
    pub paths: Arc<PathCache>,
}

impl Caches {
    fn clear(&self) {
        self.tokens.clear();
        self.paths.clear();
    }

    fn apply(&self, payload: &str) {
        let mut digest = [0u8; 32];
        if payload == "paths" {
            self.paths.clear();
        } else if hex::decode_to_slice(payload, &mut digest).is_ok() {
            self.tokens.remove(&digest);
        } else {
            // `*`, or anything unexpected: forget everything rather than risk a stale entry.
            self.clear();
        }
    }
}

/// Follows changes for as long as the process runs. While the connection is down the caches
/// keep serving entries until their short lifetime ends; on every (re)connection they are
/// cleared, since notifications may have been missed.
pub async fn listen(pool: PgPool, caches: Caches) {
    if !caches.tokens.entries.is_enabled() && !caches.paths.is_enabled() {
        return;
    }
    let cache = &caches.tokens;
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
        caches.clear();
        cache.listening.store(true, Ordering::SeqCst);
        tracing::debug!("token notifications: listening");
        // `Ok(None)` or an error: the connection was lost; reconnect (and clear) from the top.
        while let Ok(Some(notification)) = listener.try_recv().await {
            caches.apply(notification.payload());
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
        cache.insert(
            [1; 32],
            caller(),
            Utc::now() + chrono::Duration::hours(1),
            0,
        );
        cache.insert(
            [2; 32],
            caller(),
            Utc::now() - chrono::Duration::seconds(1),
            0,
        );
        assert_eq!(cache.get(&[1; 32]), Some(caller()));
        assert_eq!(
            cache.get(&[2; 32]),
            None,
            "an expired token is never served"
        );
    }

    #[test]
    fn notifications_remove_one_token_the_paths_or_everything() {
        let caches = Caches {
            tokens: Arc::new(TokenCache::new(Duration::from_secs(60))),
            paths: Arc::new(PathCache::new(Duration::from_secs(60))),
        };
        let later = Utc::now() + chrono::Duration::hours(1);
        caches.tokens.insert([1; 32], caller(), later, 0);
        caches.tokens.insert([2; 32], caller(), later, 0);
        caches.apply(&hex::encode([1u8; 32]));
        assert_eq!(caches.tokens.get(&[1; 32]), None);
        assert!(caches.tokens.get(&[2; 32]).is_some());
        caches.apply("paths");
        assert!(
            caches.tokens.get(&[2; 32]).is_some(),
            "paths leave tokens alone"
        );
        caches.apply("*");
        assert!(caches.tokens.is_empty());
    }
}
