//! What PostgreSQL's notices keep true: one connection of its own listens on [`CHANNEL`], and
//! each notice makes the token cache (`auth::cache`) or the list's path cache
//! (`phone_calls::PathCache`) forget what may have changed, and tells the live streams
//! (`streams::Hub`); on `streams::CHANNEL` it hands the ids of changed live calls to the
//! streams. This module wires the features to the database's notices; none knows of another.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

use crate::auth::cache::TokenCache;
use crate::phone_calls::PathCache;
use crate::streams::{self, Hub};

/// The channel the database notifies on. Payloads: a token's SHA-256 digest in hex when that
/// token is issued, revoked, expires early or disappears; `paths` when accounts or extensions
/// change what a list path resolves to; `*` when an account changes role or organization
/// (forget everything).
pub const CHANNEL: &str = "access_tokens_changed";

/// What the service caches, and its live streams: what the database's notifications keep true.
#[derive(Clone)]
pub struct Caches {
    pub tokens: Arc<TokenCache>,
    pub paths: Arc<PathCache>,
    pub streams: Arc<Hub>,
}

impl Caches {
    fn clear(&self) {
        self.tokens.clear();
        self.paths.clear();
    }

    /// One notification, by channel.
    fn receive(&self, channel: &str, payload: &str) {
        if channel == streams::CHANNEL {
            self.streams.changed(payload);
        } else {
            self.apply(payload);
            self.streams.accounts_changed(payload);
        }
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
    let streaming = caches.streams.is_enabled();
    if !caches.tokens.is_enabled() && !caches.paths.is_enabled() && !streaming {
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
        let channels: &[&str] = if streaming {
            &[CHANNEL, streams::CHANNEL]
        } else {
            &[CHANNEL]
        };
        let listening =
            tokio::time::timeout(CHECK_WITHIN, listener.listen_all(channels.iter().copied())).await;
        if !matches!(listening, Ok(Ok(()))) {
            tracing::debug!("token notifications: cannot listen; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        caches.clear();
        caches.streams.resync();
        cache.set_listening(true);
        tracing::debug!("token notifications: listening");
        follow(&mut listener, &caches).await;
        cache.set_listening(false);
        tracing::warn!("token notifications: connection lost; reconnecting");
    }
}

/// Applies notifications until the connection is lost or stops answering.
async fn follow(listener: &mut PgListener, caches: &Caches) {
    loop {
        tokio::select! {
            received = listener.try_recv() => match received {
                Ok(Some(notification)) => {
                    caches.receive(notification.channel(), notification.payload());
                }
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
    use crate::auth::{Caller, Role};
    use chrono::Utc;

    fn caller() -> Caller {
        Caller {
            user_id: 1,
            role: Role::User,
            organization_id: Some(2),
        }
    }

    #[test]
    fn notifications_remove_one_token_the_paths_or_everything() {
        let caches = Caches {
            tokens: Arc::new(TokenCache::new(Duration::from_secs(60))),
            paths: Arc::new(PathCache::new(Duration::from_secs(60))),
            streams: Hub::new(streams::Limits {
                max_streams: 1,
                per_token: 1,
                heartbeat: Duration::from_secs(15),
                queue: 1,
                resume: Duration::ZERO,
                replay: 1,
                write_timeout: Duration::from_secs(1),
            }),
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
