//! A short-lived cache of resolved tokens, so that most requests authenticate without a
//! database round trip. Entries live at most `TOKEN_CACHE_SECONDS` (and never past the token's
//! own expiry); revocations reach it at once through PostgreSQL notifications (see
//! `crate::notifications`), and anything missed while the notification connection was down is
//! dropped when it comes back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::token::Caller;
use crate::ttl_cache::TtlCache;

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
        // Read in this order, a notice at any moment since the lookup began is seen by one test.
        let unknown_at = self.unknown.generation();
        if self.entries.generation() != read_at {
            return;
        }
        self.unknown.insert(digest, (), Duration::MAX, unknown_at);
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
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether revocation notices are being received (entries cached from now on will hear of
    /// their revocation at once).
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }

    /// Marks whether revocation notices are being received (see `crate::notifications`).
    pub fn set_listening(&self, listening: bool) {
        self.listening.store(listening, Ordering::SeqCst);
    }

    /// Whether the cache keeps anything at all (`TOKEN_CACHE_SECONDS` above 0).
    pub fn is_enabled(&self) -> bool {
        self.entries.is_enabled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

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
}
