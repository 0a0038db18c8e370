//! The statements a list request sends to the database, for operators and benchmarks: the same
//! parsing, resolution and compilation as the handler, with the statements collected instead of
//! only run. `phonecalls statements` prints them, as a pgbench script when asked.

use std::fmt::Write as _;

use sqlx::PgPool;

use super::path::{self, CallRef};
use super::query::{self, Field};
use super::repo;
use super::sql::{self, Bind, Resolution, Sql};
use crate::auth::Caller;
use crate::auth::Role;
use crate::http::ApiError;

/// The statements the service runs for `uri` (`/uapi/phoneCalls/...?...`) requested by `user`,
/// in order, once its token is cached, and its path too when `paths_cached` (the service's
/// caches are on: `TOKEN_CACHE_SECONDS` above zero). Resolution runs for real, since the page
/// depends on it. With `baseline`, the page statement is the one of before issue 10
/// (`sql::baseline`), which the benchmark compares with.
pub async fn for_request(
    pool: &PgPool,
    user: i64,
    uri: &str,
    paths_cached: bool,
    baseline: bool,
) -> Result<Vec<Sql>, ApiError> {
    let row: Option<(String, Option<i64>)> =
        sqlx::query_as("SELECT role, organization_id FROM users WHERE id = $1")
            .bind(user)
            .fetch_optional(pool)
            .await?;
    let (role, organization_id) = row.ok_or(ApiError::from(query::ParamError::User))?;
    let role: Role = role.parse().map_err(ApiError::Internal)?;
    let caller = Caller {
        user_id: user,
        role,
        organization_id,
    };
    let (raw_path, raw_query) = uri.split_once('?').unwrap_or((uri, ""));
    let tail = raw_path
        .strip_prefix("/uapi/phoneCalls/")
        .or_else(|| raw_path.strip_prefix("/uapi/phoneCalls"))
        .ok_or(ApiError::NotFound)?;
    let tail = percent_encoding::percent_decode_str(tail).decode_utf8_lossy();
    let list_path = path::parse(&tail)
        .ok_or(ApiError::NotFound)?
        .map_err(ApiError::from)?;
    let request = query::parse(raw_query).map_err(ApiError::from)?;
    let mut statements = Vec::new();
    match sql::resolution(&caller, &list_path) {
        Resolution::User { statement, .. } | Resolution::Owner(statement) if !paths_cached => {
            statements.push(statement)
        }
        _ => {}
    }
    let scope = repo::resolve(pool, &caller, &list_path).await?;
    let call = match list_path.call {
        CallRef::Any => None,
        CallRef::Id(id) => Some(id),
        CallRef::Malformed => return Ok(statements),
    };
    let with_views = request.fields.contains(Field::PhoneCallView);
    let page = if baseline {
        sql::baseline::list
    } else {
        sql::list
    };
    statements.push(page(&caller, &scope, call, &request, with_views));
    Ok(statements)
}

/// A bind as pgbench passes it: text that PostgreSQL converts to the parameter's type.
fn as_text(bind: &Bind) -> String {
    fn array(items: impl Iterator<Item = String>) -> String {
        let quoted: Vec<String> = items
            .map(|item| format!("\"{}\"", item.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect();
        format!("{{{}}}", quoted.join(","))
    }
    match bind {
        Bind::Int(v) => v.to_string(),
        Bind::Ints(v) => array(v.iter().map(i64::to_string)),
        Bind::Text(v) => v.clone(),
        Bind::Texts(v) => array(v.iter().cloned()),
        Bind::Date(v) => v.to_rfc3339(),
        Bind::Dates(v) => array(v.iter().map(|d| d.to_rfc3339())),
        Bind::Uuid(v) => v.to_string(),
        Bind::Uuids(v) => array(v.iter().map(|u| u.to_string())),
    }
}

/// A pgbench script running `statements` as one transaction of the benchmark (one statement
/// per line, `$n` turned into pgbench variables), and the `NAME=VALUE` definitions for `-D`.
pub fn pgbench(statements: &[Sql]) -> (String, Vec<String>) {
    let mut script = String::new();
    let mut defines = Vec::new();
    for (i, statement) in statements.iter().enumerate() {
        let text = statement.text();
        let mut chars = text.chars().peekable();
        while let Some(ch) = chars.next() {
            if ch == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
                let mut n = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    n.push(d);
                    chars.next();
                }
                let _ = write!(script, ":s{}p{n}", i + 1);
            } else if ch == '\n' {
                script.push(' ');
            } else {
                script.push(ch);
            }
        }
        script.push_str(";\n");
        for (n, bind) in statement.binds.iter().enumerate() {
            defines.push(format!("s{}p{}={}", i + 1, n + 1, as_text(bind)));
        }
    }
    (script, defines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgbench_scripts_name_each_statements_parameters() {
        let statements = vec![
            Sql::literal(
                "SELECT $1, $2",
                vec![Bind::Int(7), Bind::Texts(vec!["a\"b".into()])],
            ),
            Sql::literal("SELECT $1 LIMIT\n$10", vec![Bind::Ints(vec![1, 2])]),
        ];
        let (script, defines) = pgbench(&statements);
        assert_eq!(script, "SELECT :s1p1, :s1p2;\nSELECT :s2p1 LIMIT :s2p10;\n");
        assert_eq!(
            defines,
            vec!["s1p1=7", "s1p2={\"a\\\"b\"}", "s2p1={\"1\",\"2\"}"]
        );
    }
}
