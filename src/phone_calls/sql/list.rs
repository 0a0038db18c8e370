//! The list's statements: what a path resolves to, and the page itself, with the caller's
//! visibility (combined with the path's scope, see `visibility::calls`) ANDed outside the user's
//! filter, each in parentheses.

use uuid::Uuid;

use super::filter::{self, is_view_field};
use super::{ceil_micros, Bind, Sql};
use crate::auth::Caller;
use crate::auth::Role;
use crate::phone_calls::path::{ExtensionRef, ListPath, UserRef};
use crate::phone_calls::query::{ListRequest, ParamError, SortBy};
use crate::phone_calls::visibility;

/// Which calls the path asks for, once resolved against the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// `@owner/@self`: everything the caller may see.
    Visible,
    /// Calls that involve any of these extensions (by id).
    Extensions(Vec<i64>),
}

/// How the path's user and extension are resolved: without the database, or by one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// `@owner/@self`: everything the caller may see; nothing to look up.
    Visible,
    /// Refused without looking anything up.
    Invalid(ParamError),
    /// A statement returning the user's `organization_id` and the ids of the extensions the path
    /// names (`bigint[]`), or no row when the user does not exist.
    User { user: i64, statement: Sql },
    /// A statement returning the extension's `id`, `user_id` and `organization_id`, or no row.
    Owner(Sql),
}

/// The statement that resolves a path for a caller (spec §2.2).
pub fn resolution(caller: &Caller, path: &ListPath) -> Resolution {
    let user = match path.user {
        UserRef::Owner => return owner_resolution(caller, &path.extension),
        // An organization or admin account owns no extensions: `@me` is its whole context, as
        // `@owner` (spec §2.2; 4PSA's client sends `@me/{extension}` from organization apps).
        UserRef::Me if matches!(caller.role, Role::Organization | Role::Admin) => {
            return owner_resolution(caller, &path.extension)
        }
        UserRef::Me => caller.user_id,
        UserRef::Id(id) => id,
    };
    let mut sql = Sql::default();
    sql.push(
        "SELECT u.organization_id, ARRAY(SELECT e.id FROM extensions e WHERE e.user_id = u.id",
    );
    match &path.extension {
        ExtensionRef::All => {}
        ExtensionRef::Full(number) => {
            sql.push(" AND e.number = ")
                .bind(Bind::Text(number.clone()));
        }
        ExtensionRef::Short(number) => {
            sql.push(" AND e.short_number = ")
                .bind(Bind::Text(number.clone()));
        }
    }
    sql.push(" ORDER BY e.id) AS extensions FROM users u WHERE u.id = ")
        .bind(Bind::Int(user));
    Resolution::User {
        user,
        statement: sql,
    }
}

fn owner_resolution(caller: &Caller, extension: &ExtensionRef) -> Resolution {
    let mut sql = Sql::default();
    sql.push("SELECT id, user_id, organization_id FROM extensions WHERE ");
    match extension {
        ExtensionRef::All => return Resolution::Visible,
        ExtensionRef::Full(number) => {
            sql.push("number = ").bind(Bind::Text(number.clone()));
        }
        // A short number means one in the caller's own organization; an admin has none.
        ExtensionRef::Short(number) => match caller.organization_id {
            None => return Resolution::Invalid(ParamError::Extension),
            Some(org) => {
                sql.push("organization_id = ").bind(Bind::Int(org));
                sql.push(" AND short_number = ")
                    .bind(Bind::Text(number.clone()));
            }
        },
    }
    Resolution::Owner(sql)
}

/// The sort expression over alias `alias`.
fn sort_column(sort: SortBy) -> &'static str {
    match sort {
        SortBy::Published => "published",
        SortBy::Answered => "answered",
        SortBy::Id => "id",
        SortBy::Extension => "extension",
    }
}

pub(super) fn order_by(sql: &mut Sql, alias: &'static str, request: &ListRequest) {
    let direction = if request.descending { " DESC" } else { " ASC" };
    let collate = if request.sort_by == SortBy::Extension {
        " COLLATE \"C\""
    } else {
        ""
    };
    sql.push(" ORDER BY ")
        .push(alias)
        .push(".")
        .push(sort_column(request.sort_by))
        .push(collate)
        .push(direction)
        .push(", ")
        .push(alias)
        .push(".id")
        .push(direction);
}

/// The columns of a view, one row per view of a page's call (`LEFT JOIN`: a call without views
/// gives one row of NULLs), named as `repo` reads them.
const VIEW_COLUMNS: &str = ", v.view_id, v.extension AS view_extension, v.source, v.destination, v.flow, \
    v.status, v.ringing, v.caller_id, v.recording, v.answered AS view_answered, v.parked, v.parked_pos, \
    v.parked_by, v.on_hold, v.holder, v.disposition";

/// The least of a few page sizes that holds `count` rows, as a constant `LIMIT` around the page.
/// The service runs generic plans (planned without the values: see `Settings::connect_options`),
/// and for a `LIMIT` that is a parameter PostgreSQL assumes a tenth of the matching rows: 2,000
/// for an admin's page of 100 over 20,000 live calls, and it joined them to the owners by reading
/// every extension. With the class in the text it knows the page's size within its class.
fn size_class(count: u32) -> &'static str {
    match count {
        0..=20 => " LIMIT 20",
        21..=100 => " LIMIT 100",
        101..=1000 => " LIMIT 1000",
        _ => " LIMIT 5000",
    }
}

/// Where a page's calls come from: decided by the request's shape, never left to PostgreSQL's
/// estimates. The service runs generic plans (planned without the values), which cannot know
/// how many calls a filter matches, and a plan that bet on too few walked every live call in
/// order and compared each with every matching view: 650 ms where 30 would do. Each source
/// below has one sensible plan whatever the numbers, bounded by what it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The calls that involve some extensions (a user's, or a path's extensions), found by index
    /// probes, then sorted; a view filter probes each one's views. The page reads every match,
    /// so counting them as they pass (`count(*) OVER ()`) costs nothing.
    Involved,
    /// The calls of the live views that match a view filter: the views found through their own
    /// indexes, each call then looked up by id (a `LATERAL` subquery PostgreSQL cannot turn
    /// around). The page reads every match, counted as they pass.
    MatchingViews,
    /// The live calls walked in the order of a sorted index, stopping after `count` (an
    /// organization's status or flow filter probes each walked call's views): `totalResults` is
    /// counted apart, only when the page is full.
    SortedWalk,
}

fn source(caller: &Caller, scope_of_path: &Scope, request: &ListRequest) -> Source {
    let membership = caller.role == Role::User || matches!(scope_of_path, Scope::Extensions(_));
    let view_filter = request.filter.as_ref().filter(|f| is_view_field(f.field));
    match view_filter {
        _ if membership => Source::Involved,
        None => Source::SortedWalk,
        Some(f)
            if visibility::single_organization(caller).is_some() && filter::probes_by_index(f) =>
        {
            Source::SortedWalk
        }
        Some(_) => Source::MatchingViews,
    }
}

/// The columns of a call that a page keeps.
const CALL_COLUMNS: &str =
    "c.id, c.extension, c.extension_id, c.organization_id, c.published, c.answered, c.nonce";

/// `FROM …` the matching calls, as `c` with [`CALL_COLUMNS`]: live, visible to the caller
/// within the path's scope, matching the user's filter, `updatedSince` and the call id.
fn from_matching(
    sql: &mut Sql,
    source: Source,
    caller: &Caller,
    scope_of_path: &Scope,
    call: Option<Uuid>,
    request: &ListRequest,
) {
    let organization = visibility::single_organization(caller);
    let view_filter = request.filter.as_ref().filter(|f| is_view_field(f.field));
    if let (Source::MatchingViews, Some(f)) = (source, view_filter) {
        // Inside the LATERAL subquery, only the id and liveness: PostgreSQL then looks each
        // call up in the live id index. Given the organization too, a generic plan (which
        // counts on an average organization) probed the organization's sorted index instead,
        // which cannot seek by id: 20 ms for the largest organization's 894 calls.
        sql.push(" FROM (");
        filter::matching_views(sql, f, organization);
        sql.push(" OFFSET 0) AS m CROSS JOIN LATERAL (SELECT ")
            .push(CALL_COLUMNS)
            .push(
                ", c.updated FROM phone_calls c WHERE c.id = m.phone_call_id AND c.ended IS NULL \
                 OFFSET 0) AS c WHERE ",
            );
        call_conditions(sql, caller, scope_of_path, call, request, false);
        return;
    }
    sql.push(" FROM phone_calls c WHERE ");
    call_conditions(sql, caller, scope_of_path, call, request, true);
    if let Some(f) = view_filter {
        sql.push(" AND (");
        filter::probe_views(sql, f, organization);
        sql.push(")");
    }
}

/// The conditions on call `c` of a page, but a view filter: live (unless `live` says it is
/// already known), visible to the caller within the path's scope, a call-level filter,
/// `updatedSince`, the id.
fn call_conditions(
    sql: &mut Sql,
    caller: &Caller,
    scope_of_path: &Scope,
    call: Option<Uuid>,
    request: &ListRequest,
    live: bool,
) {
    if live {
        sql.push("c.ended IS NULL AND ");
    }
    sql.push("(");
    visibility::calls(sql, caller, scope_of_path);
    sql.push(")");
    if let Some(f) = request.filter.as_ref().filter(|f| !is_view_field(f.field)) {
        sql.push(" AND (");
        filter::on_call(sql, f);
        sql.push(")");
    }
    if let Some(since) = request.updated_since {
        sql.push(" AND c.updated >= ")
            .bind(Bind::Date(ceil_micros(since)));
    }
    if let Some(id) = call {
        sql.push(" AND c.id = ").bind(Bind::Uuid(id));
    }
}

/// The one statement of a list request: the page of live calls as plain rows (one per view of
/// each call, or one per call when `fields` leaves the views out), each with its owner and the
/// count of every matching call; `repo` turns them into the API's JSON. Where the calls come
/// from is [`Source`]'s choice; when `totalResults` is counted apart, the matching calls are
/// written a second time for the count.
pub fn list(
    caller: &Caller,
    scope_of_path: &Scope,
    call: Option<Uuid>,
    request: &ListRequest,
    with_views: bool,
) -> Sql {
    let mut sql = Sql::default();
    let source = source(caller, scope_of_path, request);
    let every_match = source != Source::SortedWalk;
    sql.push("WITH page AS (SELECT * FROM (SELECT ")
        .push(CALL_COLUMNS);
    if every_match {
        sql.push(", count(*) OVER () AS total");
    }
    from_matching(&mut sql, source, caller, scope_of_path, call, request);
    order_by(&mut sql, "c", request);
    let count = sql.fragment(|f| {
        f.bind(Bind::Int(i64::from(request.count)));
    });
    let start = sql.fragment(|f| {
        f.bind(Bind::Int(i64::from(request.start_index)));
    });
    sql.push(" LIMIT ")
        .push_fragment(&count)
        .push(" OFFSET ")
        .push_fragment(&start)
        .push(") AS sized")
        .push(size_class(request.count));
    sql.push(
        ") SELECT p.id, p.extension, p.organization_id AS owner_id, o.name AS owner_name, \
         e.user_id AS owner_user_id, p.published, p.answered, p.nonce, ",
    );
    if every_match {
        sql.push("p.total");
    } else {
        // A page with fewer rows than asked for is the last one: it says how many match. Only
        // a full page needs the count, which PostgreSQL then runs (an InitPlan runs when it is
        // first needed) over the narrowest live indexes that answer it; a view filter's
        // matches are counted from the views.
        let counted = match &request.filter {
            Some(f) if is_view_field(f.field) => Source::MatchingViews,
            _ => Source::SortedWalk,
        };
        sql.push("CASE WHEN (SELECT count(*) FROM page) < ")
            .push_fragment(&count)
            .push(" THEN ")
            .push_fragment(&start)
            .push(" + (SELECT count(*) FROM page) ELSE (SELECT count(*)");
        from_matching(&mut sql, counted, caller, scope_of_path, call, request);
        sql.push(") END");
    }
    sql.push(" AS total");
    if with_views {
        sql.push(VIEW_COLUMNS);
    }
    sql.push(
        " FROM page p JOIN organizations o ON o.id = p.organization_id \
         JOIN extensions e ON e.id = p.extension_id",
    );
    if with_views {
        sql.push(" LEFT JOIN phone_call_views v ON v.phone_call_id = p.id");
    }
    order_by(&mut sql, "p", request);
    if with_views {
        sql.push(", v.view_id");
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone_calls::query::parse;

    fn user(id: i64) -> Caller {
        Caller {
            user_id: id,
            role: Role::User,
            organization_id: Some(3),
        }
    }

    /// The `FROM …` of the page's calls, up to its `ORDER BY`.
    fn page_from(sql: &Sql) -> String {
        let text = sql.text();
        let inner = &text["WITH page AS (SELECT * FROM (SELECT ".len()..];
        let start = inner.find(" FROM ").unwrap();
        let end = inner.find(" ORDER BY").unwrap();
        inner[start + 1..end].to_string()
    }

    fn where_clause(sql: &Sql) -> String {
        let text = sql.text();
        let start = text.find("WHERE c.ended IS NULL").unwrap();
        let end = text.find(" ORDER BY").unwrap();
        text[start..end].to_string()
    }

    #[test]
    fn a_users_default_page_binds_the_caller_the_extensions_and_the_page() {
        let sql = list(
            &user(7),
            &Scope::Extensions(vec![11, 12]),
            None,
            &parse("").unwrap(),
            true,
        );
        assert_eq!(
            where_clause(&sql),
            "WHERE c.ended IS NULL AND (c.id IN (SELECT x.id FROM phone_calls x WHERE x.ended IS NULL AND \
             x.extension_id = ANY(ARRAY(SELECT e.id FROM extensions e WHERE e.user_id = $1 AND e.id = ANY($2))) \
             UNION ALL SELECT v.phone_call_id FROM phone_call_views v WHERE v.call_live AND v.extension_id = \
             ANY(ARRAY(SELECT e.id FROM extensions e WHERE e.user_id = $1 AND e.id = ANY($2)))))"
        );
        let text = sql.text();
        assert!(text.contains("ORDER BY c.published ASC, c.id ASC LIMIT $3 OFFSET $4)"));
        // The user's page reads every matching call anyway: counted as they pass.
        assert!(text.contains("count(*) OVER () AS total"), "{text}");
        assert!(text.contains("p.total AS total"), "{text}");
        assert!(
            text.ends_with("ORDER BY p.published ASC, p.id ASC, v.view_id"),
            "{text}"
        );
        assert_eq!(
            sql.binds,
            vec![
                Bind::Int(7),
                Bind::Ints(vec![11, 12]),
                Bind::Int(20),
                Bind::Int(0)
            ]
        );
    }

    #[test]
    fn a_users_view_filter_probes_each_of_its_calls_views_by_key() {
        let sql = list(
            &user(7),
            &Scope::Extensions(vec![11]),
            None,
            &parse("filterBy=callerId&filterOp=startsWith&filterValue=Ann").unwrap(),
            true,
        );
        assert!(
            where_clause(&sql).ends_with(
                " AND (EXISTS (SELECT 1 FROM (SELECT * FROM phone_call_views v WHERE v.phone_call_id = c.id \
                 OFFSET 0) AS v WHERE v.call_live AND (v.caller_id COLLATE \"C\" >= $3 AND v.caller_id COLLATE \"C\" \
                 < $4)))"
            ),
            "{}",
            sql.text()
        );
        assert!(sql.text().contains("count(*) OVER () AS total"));
    }

    #[test]
    fn an_organization_page_filters_destination_by_prefix_with_one_like() {
        let caller = Caller {
            user_id: 2,
            role: Role::Organization,
            organization_id: Some(3),
        };
        let request = parse("count=100&sortOrder=descending&filterBy=destination&filterOp=startsWith&filterValue=%2B4420").unwrap();
        let sql = list(&caller, &Scope::Visible, None, &request, true);
        // The organization's matching views drive, each call looked up by id.
        assert_eq!(
            page_from(&sql),
            "FROM (SELECT DISTINCT v.phone_call_id FROM phone_call_views v WHERE v.call_live AND v.organization_id = $1 \
             AND v.extension_id IN (SELECT e.id FROM extensions e WHERE e.organization_id = $1) AND (chr(31) || \
             array_to_string(v.destination, chr(31))) LIKE $2 OFFSET 0) AS m CROSS JOIN LATERAL (SELECT c.id, \
             c.extension, c.extension_id, c.organization_id, c.published, c.answered, c.nonce, c.updated FROM \
             phone_calls c WHERE c.id = m.phone_call_id AND c.ended IS NULL OFFSET 0) AS c WHERE (c.organization_id = $3)"
        );
        assert!(sql.text().contains("count(*) OVER () AS total"));
        assert!(sql.text().contains("ORDER BY c.published DESC, c.id DESC"));
        assert_eq!(
            sql.binds,
            vec![
                Bind::Int(3),
                Bind::Text("%\u{1f}+4420%".into()),
                Bind::Int(3),
                Bind::Int(100),
                Bind::Int(0)
            ]
        );
    }

    #[test]
    fn an_organizations_status_filter_probes_each_walked_call_and_counts_the_views_as_a_set() {
        let caller = Caller {
            user_id: 2,
            role: Role::Organization,
            organization_id: Some(3),
        };
        let sql = list(
            &caller,
            &Scope::Visible,
            None,
            &parse("filterBy=status&filterValue=5").unwrap(),
            false,
        );
        assert_eq!(
            sql.text(),
            "WITH page AS (SELECT * FROM (SELECT c.id, c.extension, c.extension_id, c.organization_id, c.published, \
             c.answered, c.nonce FROM phone_calls c WHERE c.ended IS NULL AND (c.organization_id = $1) AND (EXISTS \
             (SELECT 1 FROM phone_call_views v WHERE v.phone_call_id = c.id AND v.call_live AND v.organization_id = $2 \
             AND v.status = $3 OFFSET 0)) ORDER BY c.published ASC, c.id ASC LIMIT $4 OFFSET $5) AS sized LIMIT 20) \
             SELECT p.id, p.extension, \
             p.organization_id AS owner_id, o.name AS owner_name, e.user_id AS owner_user_id, p.published, p.answered, \
             p.nonce, CASE WHEN (SELECT count(*) FROM page) < $4 THEN $5 + (SELECT count(*) FROM page) ELSE (SELECT \
             count(*) FROM (SELECT DISTINCT v.phone_call_id FROM phone_call_views v WHERE v.call_live AND \
             v.organization_id = $6 AND v.status = $7 OFFSET 0) AS m CROSS JOIN LATERAL (SELECT c.id, c.extension, \
             c.extension_id, c.organization_id, c.published, c.answered, c.nonce, c.updated FROM phone_calls c WHERE \
             c.id = m.phone_call_id AND c.ended IS NULL OFFSET 0) AS c WHERE (c.organization_id = $8)) END AS total FROM page p JOIN organizations o ON o.id = p.organization_id JOIN extensions e ON e.id = \
             p.extension_id ORDER BY p.published ASC, p.id ASC"
        );
        assert_eq!(
            sql.binds,
            vec![
                Bind::Int(3),
                Bind::Int(3),
                Bind::Int(5),
                Bind::Int(20),
                Bind::Int(0),
                Bind::Int(3),
                Bind::Int(5),
                Bind::Int(3)
            ]
        );
    }

    #[test]
    fn contains_escapes_like_wildcards_and_in_array_is_one_array_bind() {
        let admin = Caller {
            user_id: 1,
            role: Role::Admin,
            organization_id: None,
        };
        let request = parse("filterBy=callerId&filterValue=50%25_off%5C").unwrap();
        let sql = list(&admin, &Scope::Visible, None, &request, false);
        assert!(page_from(&sql).contains("v.caller_id LIKE $1 OFFSET 0) AS m"));
        assert_eq!(sql.binds[0], Bind::Text("%50\\%\\_off\\\\%".into()));
        let text = sql.text();
        assert!(!text.contains("phone_call_views v ON"), "{text}");
        // A view filter: the page reads every call with a matching view, counted as they pass.
        assert!(text.contains("count(*) OVER ()"), "{text}");

        let request =
            parse("filterBy=status&filterOp=inArray&filterValue=3,5&sortBy=extension").unwrap();
        let sql = list(&admin, &Scope::Visible, None, &request, true);
        assert!(page_from(&sql).contains("v.status = ANY($1)"));
        assert_eq!(sql.binds[0], Bind::Ints(vec![3, 5]));
        assert!(sql
            .text()
            .contains("ORDER BY c.extension COLLATE \"C\" ASC, c.id ASC"));
    }

    #[test]
    fn a_page_read_from_a_sorted_index_is_counted_apart_when_it_is_full() {
        let admin = Caller {
            user_id: 1,
            role: Role::Admin,
            organization_id: None,
        };
        let request =
            parse("count=100&sortOrder=descending&filterBy=published&filterOp=greaterThan&filterValue=2026-11-28T00:00:00Z")
                .unwrap();
        let sql = list(&admin, &Scope::Visible, None, &request, true);
        assert_eq!(
            sql.text(),
            "WITH page AS (SELECT * FROM (SELECT c.id, c.extension, c.extension_id, c.organization_id, c.published, \
             c.answered, c.nonce FROM phone_calls c WHERE c.ended IS NULL AND (TRUE) AND (c.published > $1) ORDER BY \
             c.published DESC, c.id DESC LIMIT $2 OFFSET $3) AS sized LIMIT 100) SELECT p.id, p.extension, p.organization_id AS owner_id, o.name AS \
             owner_name, e.user_id AS owner_user_id, p.published, p.answered, p.nonce, CASE WHEN (SELECT count(*) FROM \
             page) < $2 THEN $3 + (SELECT count(*) FROM page) ELSE (SELECT count(*) FROM phone_calls c WHERE c.ended IS \
             NULL AND (TRUE) AND (c.published > $4)) END AS total, v.view_id, v.extension AS view_extension, v.source, \
             v.destination, v.flow, v.status, v.ringing, v.caller_id, v.recording, v.answered AS view_answered, \
             v.parked, v.parked_pos, v.parked_by, v.on_hold, v.holder, v.disposition FROM page p JOIN organizations o \
             ON o.id = p.organization_id JOIN extensions e ON e.id = p.extension_id LEFT JOIN phone_call_views v ON \
             v.phone_call_id = p.id ORDER BY p.published DESC, p.id DESC, v.view_id"
        );
        assert_eq!(sql.binds.len(), 4);
        assert_eq!(sql.binds[1], Bind::Int(100));
        assert_eq!(sql.binds[2], Bind::Int(0));
        assert_eq!(sql.binds[3], sql.binds[0]);
    }

    #[test]
    fn a_page_is_bounded_by_the_least_size_class_that_holds_it() {
        use crate::phone_calls::query::MAX_COUNT;
        for (count, class) in [
            (1, 20),
            (20, 20),
            (21, 100),
            (100, 100),
            (101, 1000),
            (1001, 5000),
        ] {
            assert_eq!(size_class(count), format!(" LIMIT {class}"), "{count}");
        }
        assert_eq!(size_class(MAX_COUNT), format!(" LIMIT {MAX_COUNT}"));
    }

    #[test]
    fn dates_compare_as_instants_or_as_their_utc_text() {
        let admin = Caller {
            user_id: 1,
            role: Role::Admin,
            organization_id: None,
        };
        let sql = list(
            &admin,
            &Scope::Visible,
            None,
            &parse(
                "filterBy=published&filterOp=greaterThan&filterValue=2026-11-28T14:40:28%2B02:00",
            )
            .unwrap(),
            true,
        );
        assert!(where_clause(&sql).contains("c.published > $1"));
        assert_eq!(
            sql.binds[0],
            Bind::Date(crate::time::parse_xs_datetime("2026-11-28T12:40:28Z").unwrap())
        );
        let sql = list(
            &admin,
            &Scope::Visible,
            None,
            &parse("filterBy=answered&filterOp=startsWith&filterValue=2026-11-28").unwrap(),
            true,
        );
        assert!(where_clause(&sql).contains("uapi_date(c.answered) COLLATE \"C\" >= $1 AND uapi_date(c.answered) COLLATE \"C\" < $2"));
        assert_eq!(sql.binds[1], Bind::Text("2026-11-29".into()));
    }

    #[test]
    fn a_switch_sees_nothing_and_ids_compare_as_uuids() {
        let switch = Caller {
            user_id: 9,
            role: Role::Switch,
            organization_id: None,
        };
        let id = Uuid::new_v4();
        let request = parse(&format!(
            "filterBy=id&filterOp=equals&filterValue={id}&updatedSince=2026-11-28T00:00:00Z"
        ))
        .unwrap();
        let sql = list(&switch, &Scope::Visible, Some(id), &request, true);
        assert_eq!(
            where_clause(&sql),
            "WHERE c.ended IS NULL AND (FALSE) AND (c.id = $1) AND c.updated >= $2 AND c.id = $3"
        );
        let upper = list(
            &switch,
            &Scope::Visible,
            None,
            &parse(&format!(
                "filterBy=id&filterOp=equals&filterValue={}",
                id.to_string().to_uppercase()
            ))
            .unwrap(),
            true,
        );
        assert!(where_clause(&upper).contains("(FALSE)"));
    }

    #[test]
    fn dates_finer_than_a_microsecond_keep_their_meaning() {
        let admin = Caller {
            user_id: 1,
            role: Role::Admin,
            organization_id: None,
        };
        let at = |s: &str| crate::time::parse_xs_datetime(s).unwrap();
        let compile = |q: &str| list(&admin, &Scope::Visible, None, &parse(q).unwrap(), false);
        let lt = compile(
            "filterBy=published&filterOp=lessThan&filterValue=2026-11-28T14:40:28.0000001Z",
        );
        assert_eq!(lt.binds[0], Bind::Date(at("2026-11-28T14:40:28.000001Z")));
        let gt = compile(
            "filterBy=published&filterOp=greaterThan&filterValue=2026-11-28T14:40:28.0000001Z",
        );
        assert_eq!(gt.binds[0], Bind::Date(at("2026-11-28T14:40:28Z")));
        let eq =
            compile("filterBy=published&filterOp=equals&filterValue=2026-11-28T14:40:28.0000001Z");
        assert!(where_clause(&eq).contains("(FALSE)"));
        let in_list =
            compile("filterBy=published&filterOp=inArray&filterValue=2026-11-28T14:40:28.0000001Z,2026-11-28T14:40:29Z");
        assert_eq!(
            in_list.binds[0],
            Bind::Dates(vec![at("2026-11-28T14:40:29Z")])
        );
        let since = compile("updatedSince=2026-11-28T14:40:28.0000001Z");
        assert_eq!(
            since.binds[0],
            Bind::Date(at("2026-11-28T14:40:28.000001Z"))
        );
    }
}
