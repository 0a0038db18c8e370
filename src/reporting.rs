//! Analysts' PostgreSQL roles (`phonecalls reporting role create|drop`, issue 11).
//!
//! What a role may read is decided by the database, not here: migration 0012 creates the
//! `reporting` schema, whose views show each role the organizations its `reporting_roles` row
//! allows (`reporting_sees_all`, `reporting_organization`). This module creates and drops the roles: a login that can read
//! the `reporting` schema and nothing else, read-only by default, with its own statement
//! timeout, and records its scope.
//!
//! The password never reaches the server in clear: the role is created with a SCRAM-SHA-256
//! verifier computed here (what PostgreSQL itself stores), so no server log or
//! `pg_stat_activity` can show it. A generated password is printed once and kept nowhere.

use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::accounts::{invalid, AdminError};

/// Iterations of the SCRAM-SHA-256 verifier (PostgreSQL's default, `scram_iterations`).
const SCRAM_ITERATIONS: u32 = 4096;

/// Statement timeout of a new role unless told otherwise.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// A role name this command accepts: lower case letters, digits and `_`, starting with a letter
/// or `_`, at most 63 bytes, and not `pg_…` (reserved by PostgreSQL). Such a name needs no
/// quoting rules beyond the double quotes it is always written in.
pub fn check_role_name(name: &str) -> Result<(), AdminError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !first_ok || !rest_ok || name.len() > 63 {
        return invalid(
            "role name must be 1 to 63 characters: lower case letters, digits and _, not starting with a digit",
        );
    }
    if name.starts_with("pg_") {
        return invalid("role names starting with pg_ are reserved by PostgreSQL");
    }
    Ok(())
}

/// A password read from standard input: 12 to 256 printable ASCII characters (so that
/// PostgreSQL's SASLprep leaves it as it is and the verifier computed here is the one it
/// expects).
pub fn check_password(password: &str) -> Result<(), AdminError> {
    let len = password.len();
    if !(12..=256).contains(&len) || !password.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return invalid("password must be 12 to 256 printable ASCII characters without spaces");
    }
    Ok(())
}

/// A new random password: 32 letters and digits (about 190 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// PBKDF2-HMAC-SHA-256 with one block of output (RFC 8018), which is SCRAM's `Hi()`.
fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut u = hmac(password, &[salt, &1u32.to_be_bytes()]);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac(password, &[&u]);
        out.iter_mut().zip(u.iter()).for_each(|(o, x)| *o ^= x);
    }
    out
}

/// The SCRAM-SHA-256 verifier PostgreSQL stores for `password` with `salt` (RFC 5802, RFC 7677):
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, each part in base64.
pub fn scram_verifier(password: &str, salt: &[u8], iterations: u32) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let salted = salted_password(password.as_bytes(), salt, iterations);
    let client_key = hmac(&salted, &[b"Client Key"]);
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac(&salted, &[b"Server Key"]);
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        b64.encode(salt),
        b64.encode(stored_key),
        b64.encode(server_key)
    )
}

/// What `reporting role create` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedRole {
    pub role: String,
    /// Only when the command generated it: shown this once, stored nowhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    pub organization_id: Option<i64>,
    pub statement_timeout_ms: u128,
    pub database: String,
}

/// Creates an analyst's role that reads the `reporting` schema of this database and nothing
/// else, seeing only `organization`'s rows when one is given. `password`: the caller's, or
/// `None` to generate one (returned in [`CreatedRole::password`]).
pub async fn create_role(
    pool: &PgPool,
    name: &str,
    organization: Option<i64>,
    statement_timeout: Duration,
    password: Option<String>,
) -> Result<CreatedRole, AdminError> {
    check_role_name(name)?;
    if statement_timeout.is_zero() || statement_timeout > Duration::from_secs(24 * 3600) {
        return invalid("statement timeout must be from 1 ms to 24 hours");
    }
    let generated = password.is_none();
    let password = match password {
        Some(p) => {
            check_password(&p)?;
            p
        }
        None => generate_password(),
    };
    let mut salt = [0u8; 16];
    rand::rng().fill(&mut salt);
    let verifier = scram_verifier(&password, &salt, SCRAM_ITERATIONS);

    let mut tx = pool.begin().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
    if exists {
        return invalid(format!("role {name} already exists"));
    }
    if let Some(org) = organization {
        let known: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT FROM organizations WHERE id = $1)")
                .bind(org)
                .fetch_one(&mut *tx)
                .await?;
        if !known {
            return invalid(format!("organization {org} does not exist"));
        }
    }
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut *tx)
        .await?;
    let timeout_ms = statement_timeout.as_millis();
    // The name passed check_role_name and the verifier is base64 with `$:`; neither can close
    // its quotes. The database name is quoted the way PostgreSQL quotes identifiers.
    let database_ident = format!("\"{}\"", database.replace('"', "\"\""));
    let statements = [
        format!(
            "CREATE ROLE \"{name}\" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION \
             NOBYPASSRLS PASSWORD '{verifier}'"
        ),
        format!("ALTER ROLE \"{name}\" SET default_transaction_read_only = on"),
        format!("ALTER ROLE \"{name}\" SET statement_timeout = {timeout_ms}"),
        // Reports are planned for their own range each time; JIT compiling them costs more than
        // it saves at these sizes.
        format!("ALTER ROLE \"{name}\" SET jit = off"),
        // Reports read a month of calls per organization through an index whose entries are
        // scattered over the table: cheap from memory or SSD, but PostgreSQL's default cost of a
        // random page (4, for spinning disks) steers it to read every organization's month and
        // filter instead, ten times the work.
        format!("ALTER ROLE \"{name}\" SET random_page_cost = 1.1"),
        // The views read calls as UNION ALL branches, ended and live apart; a report that asks
        // for ended (or live) calls only leaves branches whose conditions contradict it, which
        // PostgreSQL skips without reading only when it checks every scan for contradictions.
        format!("ALTER ROLE \"{name}\" SET constraint_exclusion = on"),
        format!("ALTER ROLE \"{name}\" SET search_path = reporting"),
        format!("GRANT CONNECT ON DATABASE {database_ident} TO \"{name}\""),
        format!("GRANT USAGE ON SCHEMA reporting TO \"{name}\""),
        format!("GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO \"{name}\""),
        // Views a later migration adds to the schema are granted as they are created.
        format!(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA reporting GRANT SELECT ON TABLES TO \"{name}\""
        ),
    ];
    for statement in &statements {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    sqlx::query("INSERT INTO reporting_roles (role_name, organization_id) VALUES ($1, $2)")
        .bind(name)
        .bind(organization)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(CreatedRole {
        role: name.to_string(),
        password: generated.then_some(password),
        organization_id: organization,
        statement_timeout_ms: timeout_ms,
        database,
    })
}

/// Drops a role made by [`create_role`]: its privileges, its scope, then the role. A session it
/// still has open sees no rows from that moment on (its scope is gone) and no view after the
/// privileges are revoked.
pub async fn drop_role(pool: &PgPool, name: &str) -> Result<(), AdminError> {
    check_role_name(name)?;
    let mut tx = pool.begin().await?;
    let known = sqlx::query("DELETE FROM reporting_roles WHERE role_name = $1")
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if known == 0 {
        return invalid(format!(
            "{name} is not a reporting role of this database (phonecalls reporting role create makes them)"
        ));
    }
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut *tx)
        .await?;
    let database_ident = format!("\"{}\"", database.replace('"', "\"\""));
    let statements = [
        format!(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA reporting REVOKE SELECT ON TABLES FROM \"{name}\""
        ),
        format!("REVOKE ALL ON ALL TABLES IN SCHEMA reporting FROM \"{name}\""),
        format!("REVOKE ALL ON SCHEMA reporting FROM \"{name}\""),
        format!("REVOKE ALL ON DATABASE {database_ident} FROM \"{name}\""),
        format!("DROP ROLE \"{name}\""),
    ];
    for statement in &statements {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scram_verifier_reproduces_rfc_7677_exchange() {
        // RFC 7677's example exchange: password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096
        // iterations. A verifier is right when the keys it holds give that exchange's client
        // proof and server signature.
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let salt = b64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let verifier = scram_verifier("pencil", &salt, 4096);
        let (head, keys) = verifier.rsplit_once('$').unwrap();
        assert_eq!(head, "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==");
        let (stored_key, server_key) = keys.split_once(':').unwrap();
        let stored_key = b64.decode(stored_key).unwrap();
        let server_key = b64.decode(server_key).unwrap();
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let server_signature = hmac(&server_key, &[auth_message.as_bytes()]);
        assert_eq!(
            b64.encode(server_signature),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        // ClientKey = ClientProof XOR ClientSignature, and StoredKey = H(ClientKey).
        let client_signature = hmac(&stored_key, &[auth_message.as_bytes()]);
        let proof = b64
            .decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        let client_key: Vec<u8> = proof
            .iter()
            .zip(client_signature.iter())
            .map(|(p, s)| p ^ s)
            .collect();
        assert_eq!(
            Sha256::digest(&client_key).as_slice(),
            stored_key.as_slice()
        );
    }

    #[test]
    fn role_names_are_plain_identifiers() {
        for good in ["analyst", "acme_reports", "_x", "a1"] {
            assert!(check_role_name(good).is_ok(), "{good}");
        }
        let long = "a".repeat(64);
        for bad in [
            "",
            "1a",
            "Analyst",
            "a-b",
            "a b",
            "a\"b",
            "pg_monitor",
            long.as_str(),
        ] {
            assert!(check_role_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_from_standard_input_are_printable_ascii() {
        assert!(check_password("correct-horse-battery").is_ok());
        assert!(check_password("short").is_err());
        assert!(check_password("with a space in it").is_err());
        assert!(check_password("ünïcødé-password").is_err());
        assert_eq!(generate_password().len(), 32);
        assert_ne!(generate_password(), generate_password());
    }
}
