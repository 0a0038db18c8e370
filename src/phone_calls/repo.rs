//! The database side of the list: resolving the path's user and extension for the caller, and
//! running the statement that `sql` compiles.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use serde_json::value::RawValue;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{Column as _, Postgres, Row};
use uuid::Uuid;

use super::path::{ExtensionRef, ListPath};
use super::query::{ListRequest, ParamError};
use super::sql::{self, Bind, Resolution, Scope};
use super::visibility;
use crate::auth::Caller;
use crate::call::View;
use crate::db::Sessions;
use crate::metrics;

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
    pool: &impl Sessions,
    caller: &Caller,
    path: &ListPath,
) -> Result<Scope, ResolveError> {
    match sql::resolution(caller, path) {
        Resolution::Visible => Ok(Scope::Visible),
        Resolution::Invalid(e) => Err(ResolveError::Param(e)),
        Resolution::User { user, statement } => {
            let text = statement.text();
            let mut session = pool.session().await?;
            let row: Option<(Option<i64>, Vec<i64>)> = metrics::statement(
                "resolve_user",
                bind_all(
                    sqlx::query(&text).persistent(pool.prepared()),
                    &statement.binds,
                )
                .try_map(|row: PgRow| {
                    Ok((row.try_get("organization_id")?, row.try_get("extensions")?))
                })
                .fetch_optional(&mut *session),
            )
            .await?;
            session.end().await?;
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
            let text = statement.text();
            let mut session = pool.session().await?;
            let found: Option<(i64, i64, i64)> = metrics::statement(
                "resolve_extension",
                bind_all(
                    sqlx::query(&text).persistent(pool.prepared()),
                    &statement.binds,
                )
                .try_map(|row: PgRow| {
                    Ok((
                        row.try_get("id")?,
                        row.try_get("user_id")?,
                        row.try_get("organization_id")?,
                    ))
                })
                .fetch_optional(&mut *session),
            )
            .await?;
            session.end().await?;
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
    Rows(Vec<View>),
    Json(Box<RawValue>),
}

/// The page statement's columns (`sql::list`; the baseline's first nine are the same), read by
/// position: a page of 5,000 calls has some 300,000 values, and reading each by name looked
/// the name up every time. Debug builds check the names on every page's first row.
const CALL_COLUMNS: [&str; 9] = [
    "id",
    "extension",
    "owner_id",
    "owner_name",
    "owner_user_id",
    "published",
    "answered",
    "nonce",
    "total",
];
const VIEW_COLUMNS: [&str; 16] = [
    "view_id",
    "view_extension",
    "source",
    "destination",
    "flow",
    "status",
    "ringing",
    "caller_id",
    "recording",
    "view_answered",
    "parked",
    "parked_pos",
    "parked_by",
    "on_hold",
    "holder",
    "disposition",
];

fn debug_check_columns(row: &PgRow, with_views: bool) {
    if cfg!(debug_assertions) {
        let names: Vec<&str> = row.columns().iter().map(|c| c.name()).collect();
        let expected = CALL_COLUMNS
            .iter()
            .chain(VIEW_COLUMNS.iter().filter(|_| with_views));
        assert!(
            names.iter().zip(expected).all(|(name, want)| name == want),
            "page columns out of order: {names:?}"
        );
    }
}

/// The call of a page row, without its views, and the count of every matching call.
pub(crate) fn call_of(row: &PgRow) -> Result<(CallRow, i64), sqlx::Error> {
    let call = CallRow {
        id: row.try_get(0)?,
        extension: row.try_get(1)?,
        owner_id: row.try_get(2)?,
        owner_name: row.try_get(3)?,
        owner_user_id: row.try_get(4)?,
        published: row.try_get(5)?,
        answered: row.try_get(6)?,
        nonce: row.try_get(7)?,
        views: None,
    };
    Ok((call, row.try_get(8)?))
}

/// The view of a page row, if the row has one (a call without views has NULLs there).
pub(crate) fn view_of(row: &PgRow) -> Result<Option<View>, sqlx::Error> {
    const AT: usize = CALL_COLUMNS.len();
    let Some(id) = row.try_get::<Option<String>, _>(AT)? else {
        return Ok(None);
    };
    Ok(Some(View {
        id,
        extension: row.try_get(AT + 1)?,
        source: row.try_get(AT + 2)?,
        destination: row.try_get(AT + 3)?,
        flow: row.try_get(AT + 4)?,
        status: row.try_get(AT + 5)?,
        ringing: row.try_get(AT + 6)?,
        caller_id: row.try_get(AT + 7)?,
        recording: row.try_get(AT + 8)?,
        answered: row.try_get(AT + 9)?,
        parked: row.try_get(AT + 10)?,
        parked_pos: row.try_get(AT + 11)?,
        parked_by: row.try_get(AT + 12)?,
        on_hold: row.try_get(AT + 13)?,
        holder: row.try_get(AT + 14)?,
        disposition: row.try_get(AT + 15)?,
    }))
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
    pool: &impl Sessions,
    caller: &Caller,
    scope: &Scope,
    call: Option<Uuid>,
    request: &ListRequest,
    with_views: bool,
    each: impl FnMut(&CallRow, i64),
) -> Result<(), sqlx::Error> {
    let statement = sql::list(caller, scope, call, request, with_views);
    let text = statement.text();
    let mut session = pool.session().await?;
    let started = std::time::Instant::now();
    let rows = bind_all(
        sqlx::query(&text).persistent(pool.prepared()),
        &statement.binds,
    )
    .fetch(&mut *session);
    let read = read_page(rows, with_views, each).await;
    metrics::statement_finished("list_page", read.is_ok(), started.elapsed());
    read?;
    session.end().await
}

/// Turns the rows of a list statement into calls, handing each to `each` (see [`list`]).
async fn read_page(
    mut rows: impl futures_util::Stream<Item = Result<PgRow, sqlx::Error>> + Unpin,
    with_views: bool,
    mut each: impl FnMut(&CallRow, i64),
) -> Result<(), sqlx::Error> {
    let mut current: Option<(CallRow, i64)> = None;
    while let Some(row) = rows.try_next().await? {
        let row = &row;
        if current.is_none() {
            debug_check_columns(row, with_views);
        }
        let id: Uuid = row.try_get(0)?;
        let view = if with_views { view_of(row)? } else { None };
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
                let (mut call, total) = call_of(row)?;
                call.views = view.map(|v| Views::Rows(vec![v]));
                current = Some((call, total));
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
    pool: &sqlx::PgPool,
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
        let (mut call, total) = call_of(row)?;
        let views: Option<sqlx::types::Json<Box<RawValue>>> = row.try_get("views")?;
        call.views = views.map(|v| Views::Json(v.0));
        each(&call, total);
    }
    Ok(())
}
