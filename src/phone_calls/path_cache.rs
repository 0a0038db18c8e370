//! What list paths resolve to, remembered for a few seconds (`TOKEN_CACHE_SECONDS`), so that a
//! list request usually costs one statement instead of two.
//!
//! A path's resolution (the extensions of `@me`, of a user id or of one extension number) says
//! only which calls the request asks for; what the caller may see is decided again by every
//! page statement, from the accounts as they are then. A stale entry can therefore never show a
//! call the caller may not see; at worst it misses calls of an extension created a moment ago,
//! or still answers that a just-created user or extension is unknown. Even that lasts only until
//! the database's notification (`paths` on `access_tokens_changed`, sent when users or
//! extensions change) reaches the service, or the entry's few seconds are over.

use std::time::Duration;

use super::path::{ExtensionRef, ListPath, UserRef};
use super::query::ParamError;
use super::repo::{self, ResolveError};
use super::sql::Scope;
use crate::auth::Caller;
use crate::db::Database;
use crate::ttl_cache::TtlCache;

/// Everything a resolution depends on besides the database: the caller as a whole (what it may
/// name is `visibility`'s business, not the key's), and the path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    caller: Caller,
    user: UserRef,
    extension: ExtensionRef,
}

pub struct PathCache {
    entries: TtlCache<Key, Result<Scope, ParamError>>,
}

impl PathCache {
    /// A cache keeping resolutions for `ttl`; a zero `ttl` disables it.
    pub fn new(ttl: Duration) -> Self {
        Self {
            entries: TtlCache::new(ttl),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.entries.is_enabled()
    }

    pub fn clear(&self) {
        self.entries.clear();
    }

    /// Resolves `path` for `caller` as [`repo::resolve`] does, from memory when it can.
    pub async fn resolve(
        &self,
        db: &Database,
        caller: &Caller,
        path: &ListPath,
    ) -> Result<Scope, ResolveError> {
        let key = Key {
            caller: caller.clone(),
            user: path.user,
            extension: path.extension.clone(),
        };
        if let Some(known) = self.entries.get(&key) {
            crate::metrics::cache_lookup("paths", true);
            return known.map_err(ResolveError::Param);
        }
        if self.entries.is_enabled() {
            crate::metrics::cache_lookup("paths", false);
        }
        let read_at = self.entries.generation();
        let (caller, path) = (caller.clone(), path.clone());
        let resolved = db
            .run(|pool| async move { repo::resolve(&pool, &caller, &path).await })
            .await;
        let outcome = match &resolved {
            Ok(scope) => Ok(scope.clone()),
            Err(ResolveError::Param(e)) => Err(*e),
            // The database failed: nothing is known.
            Err(_) => return resolved,
        };
        self.entries.insert(key, outcome, Duration::MAX, read_at);
        resolved
    }
}
