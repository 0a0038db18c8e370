//! Accounts and their credentials: organizations, users, extensions and apps. The command line
//! (`src/cli`) and the demo setup call these; the database constraints are the last line of
//! defence, and the checks here turn their violations into messages an operator can act on.

use serde::Serialize;
use sqlx::PgPool;

use crate::auth::token;

pub use crate::auth::Role;

/// Why an administration command did nothing.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The input is wrong; the message says how. Nothing was written.
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Refuses a command's input with `message` (nothing is written).
pub(crate) fn invalid<T>(message: impl Into<String>) -> Result<T, AdminError> {
    Err(AdminError::Invalid(message.into()))
}

fn check_name(what: &str, name: &str) -> Result<(), AdminError> {
    let len = name.trim().chars().count();
    if len == 0 || len > 255 {
        return invalid(format!("{what} name must have 1 to 255 characters"));
    }
    Ok(())
}

/// The name of the unique constraint a database error violated, if that is what it was.
fn unique_violation(error: &sqlx::Error) -> Option<&str> {
    match error {
        sqlx::Error::Database(db) if db.is_unique_violation() => db.constraint(),
        _ => None,
    }
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct CreatedOrganization {
    pub id: i64,
    pub code: String,
}

/// Creates an organization with a unique four-digit code.
pub async fn create_organization(
    pool: &PgPool,
    name: &str,
    code: &str,
) -> Result<CreatedOrganization, AdminError> {
    check_name("organization", name)?;
    if code.len() != 4 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return invalid(format!(
            "organization code {code:?} must be exactly four digits, such as 0003"
        ));
    }
    let result =
        sqlx::query_scalar("INSERT INTO organizations (name, code) VALUES ($1, $2) RETURNING id")
            .bind(name.trim())
            .bind(code)
            .fetch_one(pool)
            .await;
    match result {
        Ok(id) => Ok(CreatedOrganization {
            id,
            code: code.to_string(),
        }),
        Err(e) if unique_violation(&e) == Some("organizations_code_key") => {
            invalid(format!("organization code {code} is already taken"))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct CreatedUser {
    pub id: i64,
}

/// Creates an account. `organization` is required for organization and user accounts,
/// refused for admin accounts, and optional for switch accounts.
pub async fn create_user(
    pool: &PgPool,
    name: &str,
    role: Role,
    organization: Option<i64>,
) -> Result<CreatedUser, AdminError> {
    check_name("user", name)?;
    match (role, organization) {
        (Role::Admin, Some(_)) => {
            return invalid("an admin account belongs to no organization: leave out --org")
        }
        (Role::Organization | Role::User, None) => {
            return invalid(format!(
                "a {role} account needs an organization: give --org ID"
            ))
        }
        _ => {}
    }
    let mut tx = pool.begin().await?;
    if let Some(org) = organization {
        // Lock the organization so the one-organization-account check below cannot race.
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT id FROM organizations WHERE id = $1 FOR SHARE")
                .bind(org)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return invalid(format!("unknown organization {org}"));
        }
    }
    let result = sqlx::query_scalar(
        "INSERT INTO users (name, role, organization_id) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(name.trim())
    .bind(role.as_str())
    .bind(organization)
    .fetch_one(&mut *tx)
    .await;
    match result {
        Ok(id) => {
            tx.commit().await?;
            Ok(CreatedUser { id })
        }
        Err(e) if unique_violation(&e) == Some("users_one_organization_account") => {
            invalid(format!(
                "organization {} already has its organization account",
                organization.unwrap_or_default()
            ))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct CreatedExtension {
    pub id: i64,
    pub number: String,
}

/// Creates an extension with a 3-to-5-digit short number for an account of role `user`.
pub async fn create_extension(
    pool: &PgPool,
    user: i64,
    short_number: &str,
) -> Result<CreatedExtension, AdminError> {
    if !(3..=5).contains(&short_number.len()) || !short_number.bytes().all(|b| b.is_ascii_digit()) {
        return invalid(format!(
            "extension number {short_number:?} must have 3 to 5 digits, such as 210"
        ));
    }
    let owner: Option<(String, Option<i64>, Option<String>)> = sqlx::query_as(
        "SELECT u.role, u.organization_id, o.code
         FROM users u LEFT JOIN organizations o ON o.id = u.organization_id WHERE u.id = $1",
    )
    .bind(user)
    .fetch_optional(pool)
    .await?;
    let (org, code) = match owner {
        None => return invalid(format!("unknown user {user}")),
        Some((role, Some(org), Some(code))) if role == "user" => (org, code),
        Some((role, _, _)) => {
            return invalid(format!(
            "user {user} is an account of role {role}; extensions belong to accounts of role user"
        ))
        }
    };
    let result: Result<(i64, String), _> = sqlx::query_as(
        "INSERT INTO extensions (organization_id, organization_code, user_id, short_number)
         VALUES ($1, $2, $3, $4) RETURNING id, number",
    )
    .bind(org)
    .bind(&code)
    .bind(user)
    .bind(short_number)
    .fetch_one(pool)
    .await;
    match result {
        Ok((id, number)) => Ok(CreatedExtension { id, number }),
        Err(e) if unique_violation(&e) == Some("extensions_number_key") => invalid(format!(
            "extension number {code}*{short_number} already exists"
        )),
        // The account changed role or organization between the two statements.
        Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => invalid(format!(
            "user {user} is not an account of role user in an organization"
        )),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApp {
    pub client_id: String,
    pub client_secret: String,
}

/// Registers an app to an account. The secret is returned once and stored as a digest.
pub async fn create_app(
    pool: &PgPool,
    user: i64,
    name: &str,
    trusted: bool,
) -> Result<CreatedApp, AdminError> {
    check_name("app", name)?;
    let client_id = token::generate_client_id();
    let client_secret = token::generate_client_secret();
    let result = sqlx::query(
        "INSERT INTO apps (user_id, name, client_id, client_secret_sha256, trusted) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(user)
    .bind(name.trim())
    .bind(&client_id)
    .bind(token::digest(&client_secret).as_slice())
    .bind(trusted)
    .execute(pool)
    .await;
    match result {
        Ok(_) => Ok(CreatedApp {
            client_id,
            client_secret,
        }),
        Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
            invalid(format!("unknown user {user}"))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedTokenOutput {
    pub access_token: String,
    pub expires_at: String,
}

/// Issues a token for an account from the command line.
pub async fn issue_token(
    pool: &PgPool,
    user: i64,
    ttl: std::time::Duration,
) -> Result<IssuedTokenOutput, AdminError> {
    if ttl.is_zero() {
        return invalid("--ttl must be at least 1 second");
    }
    match token::issue(pool, user, ttl, None).await {
        Ok(issued) => Ok(IssuedTokenOutput {
            access_token: issued.token,
            expires_at: crate::time::format_utc(issued.expires_at),
        }),
        Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
            invalid(format!("unknown user {user}"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Revokes a token; an unknown token is an error so that a typo does not pass for a revocation.
pub async fn revoke_token(pool: &PgPool, access_token: &str) -> Result<(), AdminError> {
    if token::revoke(pool, access_token.trim()).await? {
        Ok(())
    } else {
        invalid("unknown token: nothing was revoked")
    }
}
