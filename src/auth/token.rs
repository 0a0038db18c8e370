//! Opaque secrets (access tokens, app client ids and secrets): generation, digests, and the
//! token table. Plaintext tokens and secrets exist only in the response that hands them out;
//! the database holds SHA-256 digests, and a lookup is by digest.

use crate::db::Sessions;
use crate::metrics;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::time::Duration;

use crate::auth::Role;

/// Every access token starts with this, so that a log scanner or a secret scanner can spot one,
/// and so that garbage is refused before the database is asked.
pub const TOKEN_PREFIX: &str = "pct_";
/// Every client secret starts with this.
pub const SECRET_PREFIX: &str = "pcs_";
/// Every client id starts with this.
pub const CLIENT_ID_PREFIX: &str = "pca_";
/// Random bytes in a token or secret.
const SECRET_BYTES: usize = 32;
/// Length of a token: the prefix and 32 bytes in unpadded base64url.
pub const TOKEN_LEN: usize = TOKEN_PREFIX.len() + 43;

fn random_string(prefix: &str, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(&buf))
}

/// A new access token: `pct_` and 32 random bytes, `[A-Za-z0-9_-]` only.
pub fn generate_token() -> String {
    random_string(TOKEN_PREFIX, SECRET_BYTES)
}

/// A new app client secret.
pub fn generate_client_secret() -> String {
    random_string(SECRET_PREFIX, SECRET_BYTES)
}

/// A new public app client id.
pub fn generate_client_id() -> String {
    random_string(CLIENT_ID_PREFIX, 16)
}

/// SHA-256 of a token or secret, as stored.
pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Whether `candidate` has the shape of a token this service issues. Anything else is refused
/// without a database round trip.
pub fn looks_like_token(candidate: &str) -> bool {
    candidate.len() == TOKEN_LEN
        && candidate.starts_with(TOKEN_PREFIX)
        && candidate
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Compares two digests in time that does not depend on where they differ.
pub fn digests_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The account an authenticated request acts for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Caller {
    pub user_id: i64,
    pub role: Role,
    pub organization_id: Option<i64>,
}

/// A token as handed out once.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Issues a token for `user_id`, valid for `ttl`, optionally on behalf of an app.
pub async fn issue(
    pool: &impl Sessions,
    user_id: i64,
    ttl: Duration,
    app_id: Option<i64>,
) -> Result<IssuedToken, sqlx::Error> {
    let token = generate_token();
    let ttl_seconds = ttl.as_secs_f64();
    let mut session = pool.session().await?;
    let expires_at: DateTime<Utc> = metrics::statement(
        "token_issue",
        sqlx::query_scalar(
            "INSERT INTO access_tokens (token_sha256, user_id, app_id, expires_at)
             VALUES ($1, $2, $3, now() + make_interval(secs => $4))
             RETURNING expires_at",
        )
        .persistent(pool.prepared())
        .bind(digest(&token).as_slice())
        .bind(user_id)
        .bind(app_id)
        .bind(ttl_seconds)
        .fetch_one(&mut *session),
    )
    .await?;
    session.end().await?;
    Ok(IssuedToken { token, expires_at })
}

/// Revokes a token. Returns false when no such token was ever issued; revoking a revoked token
/// again succeeds and keeps the first revocation time.
pub async fn revoke(pool: &impl Sessions, token: &str) -> Result<bool, sqlx::Error> {
    if !looks_like_token(token) {
        return Ok(false);
    }
    let mut session = pool.session().await?;
    let row = sqlx::query(
        "UPDATE access_tokens SET revoked_at = COALESCE(revoked_at, now())
         WHERE token_sha256 = $1 RETURNING id",
    )
    .persistent(pool.prepared())
    .bind(digest(token).as_slice())
    .fetch_optional(&mut *session)
    .await?;
    session.end().await?;
    Ok(row.is_some())
}

/// Resolves a token to its account when it is known, unexpired and not revoked.
pub async fn authenticate(
    pool: &impl Sessions,
    token: &str,
) -> Result<Option<Caller>, sqlx::Error> {
    if !looks_like_token(token) {
        return Ok(None);
    }
    Ok(lookup(pool, &digest(token))
        .await?
        .map(|(caller, _)| caller))
}

/// Resolves a token digest to its account and the token's expiry, when it is valid.
pub async fn lookup(
    pool: &impl Sessions,
    digest: &[u8; 32],
) -> Result<Option<(Caller, DateTime<Utc>)>, sqlx::Error> {
    let mut session = pool.session().await?;
    let row: Option<(i64, String, Option<i64>, DateTime<Utc>)> = metrics::statement(
        "token_lookup",
        sqlx::query_as(
            "SELECT u.id, u.role, u.organization_id, t.expires_at
             FROM access_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL AND t.expires_at > now()",
        )
        .persistent(pool.prepared())
        .bind(digest.as_slice())
        .fetch_optional(&mut *session),
    )
    .await?;
    session.end().await?;
    Ok(
        row.and_then(|(user_id, role, organization_id, expires_at)| {
            Some((
                Caller {
                    user_id,
                    role: role.parse().ok()?,
                    organization_id,
                },
                expires_at,
            ))
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_have_the_documented_shape_and_differ() {
        let a = generate_token();
        let b = generate_token();
        assert!(looks_like_token(&a), "{a}");
        assert_ne!(a, b);
        assert!(a.len() >= 32 + TOKEN_PREFIX.len());
    }

    #[test]
    fn garbage_is_not_a_token() {
        let good = generate_token();
        for bad in [
            String::new(),
            "pct_".into(),
            good[..good.len() - 1].to_string(),
            format!("{good}x"),
            good.replacen("pct_", "pcs_", 1),
            format!("pct_{}", "!".repeat(43)),
            "x".repeat(65536),
        ] {
            assert!(!looks_like_token(&bad), "{bad}");
        }
    }

    #[test]
    fn digests_compare_by_content() {
        assert!(digests_equal(&digest("a"), &digest("a")));
        assert!(!digests_equal(&digest("a"), &digest("b")));
        assert!(!digests_equal(&digest("a"), &[0u8; 3]));
    }
}
