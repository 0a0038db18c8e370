//! The database side of the list: resolving the path's user and extension for the caller, and
//! running the statement that `sql` compiles.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use serde_json::value::RawValue;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{FromRow, PgPool, Postgres, Row};
use uuid::Uuid;

use super::path::{ExtensionRef, ListPath};
use super::query::{ListRequest, ParamError};
use super::sql::{self, Bind, Resolution, Scope};
use super::visibility;
use crate::auth::Caller;

/// Why a path does not resolve.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The path's user or extension is not one the caller may name.
    #[error("{}", .0.code())]
    Param(ParamError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Resolves the path's user and extension to the extensions it names, as the caller may see
/// them. "Does not exist" and "exists but not yours" are the same error.
pub async fn resolve(
    pool: &PgPool,
    caller: &Caller,
    path: &ListPath,
) -> Result<Scope, ResolveError> {
    match sql::resolution(caller, path) {
        Resolution::Visible => Ok(Scope::Visible),
        Resolution::Invalid(e) => Err(ResolveError::Param(e)),
        Resolution::User { user, statement } => {
            let row: Option<(Option<i64>, Vec<i64>)> =
                bind_all(sqlx::query(&statement.text()), &statement.binds)
                    .try_map(|row: PgRow| {
                        Ok((row.try_get("organization_id")?, row.try_get("extensions")?))
                    })
                    .fetch_optional(pool)
                    .await?;
            let Some((organization, extensions)) = row else {
                return Err(ResolveError::Param(ParamError::User));
            };
            if !visibility::may_name_user(caller, user, organization) {
                return Err(ResolveError::Param(ParamError::User));
            }
            if path.extension != ExtensionRef::All && extensions.is_empty() {
                return Err(ResolveError::Param(ParamError::Extension));
            }
            Ok(Scope::Extensions(extensions))
        }
        Resolution::Owner(statement) => {
            let found: Option<(i64, i64, i64)> =
                bind_all(sqlx::query(&statement.text()), &statement.binds)
                    .try_map(|row: PgRow| {
                        Ok((
                            row.try_get("id")?,
                            row.try_get("user_id")?,
                            row.try_get("organization_id")?,
                        ))
                    })
                    .fetch_optional(pool)
                    .await?;
            let visible = found
                .filter(|(_, owner, org)| visibility::may_name_user(caller, *owner, Some(*org)));
            match visible {
                Some((id, _, _)) => Ok(Scope::Extensions(vec![id])),
                None => Err(ResolveError::Param(ParamError::Extension)),
            }
        }
    }
}

/// One call of a page, as stored.
#[derive(Debug)]
pub struct CallRow {
    pub id: Uuid,
    pub extension: String,
    pub owner_id: i64,
    pub owner_name: String,
    pub owner_user_id: i64,
    pub published: DateTime<Utc>,
    pub answered: Option<DateTime<Utc>>,
    pub nonce: Option<String>,
    /// `None` when `fields` leaves the views out, or the call has none.
    pub views: Option<Views>,
}

/// A call's views: as rows, which `model` writes as JSON; or as the JSON PostgreSQL built, which
/// only the baseline statement returns (`list_baseline`).
#[derive(Debug)]
pub enum Views {
    Rows(Vec<ViewRow>),
    Json(Box<RawValue>),
}

/// One view (party) of a call, as stored.
#[derive(Debug, sqlx::FromRow)]
pub struct ViewRow {
    #[sqlx(rename = "view_id")]
    pub id: String,
    #[sqlx(rename = "view_extension")]
    pub extension: String,
    pub source: Vec<String>,
    pub destination: Vec<String>,
    pub flow: i16,
    pub status: i16,
    pub ringing: Option<DateTime<Utc>>,
    pub caller_id: Option<String>,
    pub recording: Option<DateTime<Utc>>,
    #[sqlx(rename = "view_answered")]
    pub answered: Option<DateTime<Utc>>,
    pub parked: Option<DateTime<Utc>>,
    pub parked_pos: Option<i32>,
    pub parked_by: Option<String>,
    pub on_hold: Option<DateTime<Utc>>,
    pub holder: Option<i16>,
    pub disposition: Option<i16>,
}

/// The call's columns of a page statement's row, read by column name.
#[derive(sqlx::FromRow)]
struct CallColumns {
    id: Uuid,
    extension: String,
    owner_id: i64,
    owner_name: String,
    owner_user_id: i64,
    published: DateTime<Utc>,
    answered: Option<DateTime<Utc>>,
    nonce: Option<String>,
    total: i64,
}

impl CallColumns {
    fn into_call(self, views: Option<Views>) -> CallRow {
        CallRow {
            id: self.id,
            extension: self.extension,
            owner_id: self.owner_id,
            owner_name: self.owner_name,
            owner_user_id: self.owner_user_id,
            published: self.published,
            answered: self.answered,
            nonce: self.nonce,
            views,
        }
    }
}

pub fn bind_all<'q>(
    mut query: Query<'q, Postgres, PgArguments>,
    binds: &'q [Bind],
) -> Query<'q, Postgres, PgArguments> {
    for bind in binds {
        query = match bind {
            Bind::Int(v) => query.bind(v),
            Bind::Ints(v) => query.bind(v),
            Bind::Text(v) => query.bind(v),
            Bind::Texts(v) => query.bind(v),
            Bind::Date(v) => query.bind(v),
            Bind::Dates(v) => query.bind(v),
            Bind::Uuid(v) => query.bind(v),
            Bind::Uuids(v) => query.bind(v),
        };
    }
    query
}

/// Runs the list statement and hands each call of the page, in order, to `each`, with the
/// count of every matching call. Its rows come sorted by call, then by view: consecutive rows
/// of one call are its views (a call without views, or a page without them, has one row). Rows
/// are turned into calls as they arrive, so that a large page is never held as rows.
pub async fn list(
    pool: &PgPool,
    caller: &Caller,
    scope: &Scope,
    call: Option<Uuid>,
    request: &ListRequest,
    with_views: bool,
    mut each: impl FnMut(&CallRow, i64),
) -> Result<(), sqlx::Error> {
    let statement = sql::list(caller, scope, call, request, with_views);
    let text = statement.text();
    let mut rows = bind_all(sqlx::query(&text), &statement.binds).fetch(pool);
    let mut current: Option<(CallRow, i64)> = None;
    while let Some(row) = rows.try_next().await? {
        let row = &row;
        let id: Uuid = row.try_get("id")?;
        let view = if with_views && row.try_get::<Option<&str>, _>("view_id")?.is_some() {
            Some(ViewRow::from_row(row)?)
        } else {
            None
        };
        match &mut current {
            Some((call, _)) if call.id == id => {
                if let (Some(Views::Rows(views)), Some(view)) = (&mut call.views, view) {
                    views.push(view);
                }
            }
            _ => {
                if let Some((done, total)) = current.take() {
                    each(&done, total);
                }
                let columns = CallColumns::from_row(row)?;
                let total = columns.total;
                current = Some((columns.into_call(view.map(|v| Views::Rows(vec![v]))), total));
            }
        }
    }
    if let Some((done, total)) = current {
        each(&done, total);
    }
    Ok(())
}

/// Runs the baseline statement (`sql::baseline`), for the comparison test, handing each call to
/// `each` as [`list`] does.
pub async fn list_baseline(
    pool: &PgPool,
    caller: &Caller,
    scope: &Scope,
    call: Option<Uuid>,
    request: &ListRequest,
    with_views: bool,
    mut each: impl FnMut(&CallRow, i64),
) -> Result<(), sqlx::Error> {
    let statement = sql::baseline::list(caller, scope, call, request, with_views);
    let rows = bind_all(sqlx::query(&statement.text()), &statement.binds)
        .fetch_all(pool)
        .await?;
    for row in &rows {
        let columns = CallColumns::from_row(row)?;
        let total = columns.total;
        let views: Option<sqlx::types::Json<Box<RawValue>>> = row.try_get("views")?;
        each(&columns.into_call(views.map(|v| Views::Json(v.0))), total);
    }
    Ok(())
}
