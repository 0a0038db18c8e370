//! A short-lived cache of resolved tokens, so that most requests authenticate without a
//! database round trip. Entries live at most `TOKEN_CACHE_SECONDS` (and never past the token's
//! own expiry); revocations reach it at once through PostgreSQL notifications (`listen`, which
//! also keeps the list's path cache true), and anything missed while the notification
//! connection was down is dropped when it comes back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

use super::token::Caller;
use crate::phone_calls::PathCache;
use crate::ttl_cache::TtlCache;

/// The channel the database notifies on. Payloads: a token's SHA-256 digest in hex when that
/// token is revoked, expires early or disappears; `paths` when accounts or extensions change
/// what a list path resolves to; `*` when an account changes role or organization (forget
/// everything).
pub const CHANNEL: &str = "access_tokens_changed";

/// Resolved tokens by digest, and digests recently found to be no token at all.
pub struct TokenCache {
    entries: TtlCache<[u8; 32], Caller>,
    /// Well-formed tokens that are not in the database (or revoked, or expired): a flood of one
    /// costs one lookup per lifetime. Bounded like every `TtlCache`, so a flood of distinct ones
    /// cannot grow memory without bound. A token issued later is forgotten here at once (the
    /// database announces every new token's digest, see migration 0010).
    unknown: TtlCache<[u8; 32], ()>,
    /// Whether revocation notices are being received right now.
    listening: AtomicBool,
}

impl TokenCache {
    /// A cache keeping entries for `ttl`; a zero `ttl` disables it.
    pub fn new(ttl: Duration) -> Self {
        Self {
            entries: TtlCache::new(ttl),
            unknown: TtlCache::new(ttl),
            listening: AtomicBool::new(false),
        }
    }

    pub fn get(&self, digest: &[u8; 32]) -> Option<Caller> {
        self.entries.get(digest)
    }

    /// Whether this digest was looked up recently and resolved to no valid token.
    pub fn is_known_unknown(&self, digest: &[u8; 32]) -> bool {
        self.unknown.get(digest).is_some()
    }

    /// Remembers that a digest resolved to no valid token, unless a notice arrived since the
    /// lookup began (`read_at`, a [`Self::generation`] of the token map, which every notice
    /// moves along with the unknown map's): it may have announced this very token.
    pub fn insert_unknown(&self, digest: [u8; 32], read_at: u64) {
        let unknown_read_at = if self.entries.generation() == read_at {
            self.unknown.generation()
        } else {
            return;
        };
        self.unknown
            .insert(digest, (), Duration::MAX, unknown_read_at);
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

    /// Forgets whatever is known of a token: it was revoked, changed, or just issued.
    pub fn remove(&self, digest: &[u8; 32]) {
        self.entries.remove(digest);
        self.unknown.remove(digest);
    }

    pub fn clear(&self) {
        self.entries.clear();
        self.unknown.clear();
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

/// How often a quiet notification connection is checked, and how long the check may take: a
/// connection to a server that froze or became unreachable receives nothing, and would
/// otherwise be believed alive.
const CHECK_EVERY: Duration = Duration::from_secs(10);
const CHECK_WITHIN: Duration = Duration::from_secs(5);

/// Follows changes for as long as the process runs, over a connection of its own (never one of
/// the requests' pool). While the connection is down the caches keep serving entries until their
/// short lifetime ends; on every (re)connection they are cleared, since notifications may have
/// been missed.
pub async fn listen(options: PgConnectOptions, caches: Caches) {
    if !caches.tokens.entries.is_enabled() && !caches.paths.is_enabled() {
        return;
    }
    let cache = &caches.tokens;
    loop {
        // A pool of its own for each connection: a lost connection's farewell (`UNLISTEN *`, sent
        // when its listener is dropped) may hang on a frozen server, and must not hold the way.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(CHECK_WITHIN)
            .connect_lazy_with(options.clone());
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::debug!(error = %e, "token notifications: cannot connect; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let listening = tokio::time::timeout(CHECK_WITHIN, listener.listen(CHANNEL)).await;
        if !matches!(listening, Ok(Ok(()))) {
            tracing::debug!("token notifications: cannot listen; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        caches.clear();
        cache.listening.store(true, Ordering::SeqCst);
        tracing::debug!("token notifications: listening");
        follow(&mut listener, &caches).await;
        cache.listening.store(false, Ordering::SeqCst);
        tracing::warn!("token notifications: connection lost; reconnecting");
    }
}

/// Applies notifications until the connection is lost or stops answering.
async fn follow(listener: &mut PgListener, caches: &Caches) {
    loop {
        tokio::select! {
            received = listener.try_recv() => match received {
                Ok(Some(notification)) => caches.apply(notification.payload()),
                // `Ok(None)` or an error: the connection was lost.
                _ => return,
            },
            () = tokio::time::sleep(CHECK_EVERY) => {
                let check = sqlx::query("SELECT 1").execute(&mut *listener);
                if !matches!(tokio::time::timeout(CHECK_WITHIN, check).await, Ok(Ok(_))) {
                    return;
                }
                // Notifications that arrived during the check were kept for the next receive.
            }
        }
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
