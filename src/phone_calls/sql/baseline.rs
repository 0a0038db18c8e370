//! The list's page statement as it was before issue 10, kept verbatim: the views' JSON built by
//! PostgreSQL (a PL/pgSQL `uapi_date()` per date), `count(*) OVER ()` over every match, and the
//! caller's visibility and the path's scope as two separate membership tests. Nothing serves
//! it; it is the baseline that `scripts/bench` measures the service's statements against
//! (`phonecalls statements --baseline`) and that `tests/api/list_compare.rs` compares the
//! service's answers with, byte for byte. Do not improve it.

use uuid::Uuid;

use super::filter::{condition, is_view_field};
use super::{involves, Bind, Sql};
use crate::auth::{Caller, Role};
use crate::phone_calls::query::{Filter, ListRequest};
use crate::phone_calls::visibility;

use super::ceil_micros;
use super::list::Scope;

fn visible_to(sql: &mut Sql, caller: &Caller) {
    match (caller.role, caller.organization_id) {
        (Role::Admin, _) => {
            sql.push("TRUE");
        }
        (Role::Organization, Some(org)) => {
            sql.push("c.organization_id = ").bind(Bind::Int(org));
        }
        (Role::User, _) => {
            let member = sql.fragment(|f| {
                f.push(" IN (SELECT e.id FROM extensions e WHERE e.user_id = ")
                    .bind(Bind::Int(caller.user_id))
                    .push(")");
            });
            involves(sql, &member);
        }
        // A switch sees nothing; so does an organization account without an organization,
        // which the database does not allow anyway.
        _ => {
            sql.push("FALSE");
        }
    }
}

fn scope(sql: &mut Sql, scope: &Scope) {
    match scope {
        Scope::Visible => {
            sql.push("TRUE");
        }
        Scope::Extensions(ids) => {
            let member = sql.fragment(|f| {
                f.push(" = ANY(").bind(Bind::Ints(ids.clone())).push(")");
            });
            involves(sql, &member);
        }
    }
}

fn filter(sql: &mut Sql, filter: &Filter, organization: Option<i64>) {
    if is_view_field(filter.field) {
        // As a semi-join, PostgreSQL may either look each candidate call's views up by key or
        // find the matching live views first through their own indexes. A view is in its
        // call's organization, on an extension of it (the database enforces both), so when
        // every visible call is in one organization, so are the views worth testing. Saying so
        // lets PostgreSQL reach the organization's live views through its extensions (the live
        // extension index) and test the filter, which may be costly (a prefix of any number of
        // a view, say), on those alone: without it, it tested the filter on every live view.
        sql.push("c.id IN (SELECT v.phone_call_id FROM phone_call_views v WHERE v.call_live AND ");
        if let Some(org) = organization {
            let org = sql.fragment(|f| {
                f.bind(Bind::Int(org));
            });
            sql.push("v.organization_id = ")
                .push_fragment(&org)
                .push(" AND v.extension_id IN (SELECT e.id FROM extensions e WHERE e.organization_id = ")
                .push_fragment(&org)
                .push(") AND ");
        }
        condition(sql, filter);
        sql.push(")");
    } else {
        condition(sql, filter);
    }
}

const VIEWS_JSON: &str = "(SELECT json_agg(json_strip_nulls(json_build_object(
    'id', v.view_id, 'extension', v.extension, 'source', v.source, 'destination', v.destination,
    'flow', v.flow, 'status', v.status, 'ringing', uapi_date(v.ringing), 'callerId', v.caller_id,
    'recording', uapi_date(v.recording), 'answered', uapi_date(v.answered), 'parked', uapi_date(v.parked),
    'parkedPos', v.parked_pos, 'parkedBy', v.parked_by, 'onHold', uapi_date(v.on_hold), 'holder', v.holder,
    'disposition', v.disposition)) ORDER BY v.view_id)
  FROM phone_call_views v WHERE v.phone_call_id = p.id)";

/// The baseline page statement: what `sql::list` compiled before issue 10.
pub fn list(
    caller: &Caller,
    scope_of_path: &Scope,
    call: Option<Uuid>,
    request: &ListRequest,
    with_views: bool,
) -> Sql {
    let mut sql = Sql::default();
    sql.push(
        "WITH page AS (SELECT c.id, c.extension, c.extension_id, c.organization_id, c.published, c.answered, \
         c.nonce, count(*) OVER () AS total FROM phone_calls c WHERE c.ended IS NULL AND (",
    );
    visible_to(&mut sql, caller);
    sql.push(") AND (");
    scope(&mut sql, scope_of_path);
    sql.push(")");
    if let Some(f) = &request.filter {
        sql.push(" AND (");
        filter(&mut sql, f, visibility::single_organization(caller));
        sql.push(")");
    }
    if let Some(since) = request.updated_since {
        sql.push(" AND c.updated >= ")
            .bind(Bind::Date(ceil_micros(since)));
    }
    if let Some(id) = call {
        sql.push(" AND c.id = ").bind(Bind::Uuid(id));
    }
    super::list::order_by(&mut sql, "c", request);
    sql.push(" LIMIT ")
        .bind(Bind::Int(i64::from(request.count)));
    sql.push(" OFFSET ")
        .bind(Bind::Int(i64::from(request.start_index)));
    sql.push(
        ") SELECT p.id, p.extension, p.organization_id AS owner_id, o.name AS owner_name, \
         e.user_id AS owner_user_id, p.published, p.answered, p.nonce, p.total, ",
    );
    sql.push(if with_views { VIEWS_JSON } else { "NULL::json" });
    sql.push(" AS views");
    sql.push(" FROM page p JOIN organizations o ON o.id = p.organization_id JOIN extensions e ON e.id = p.extension_id");
    super::list::order_by(&mut sql, "p", request);
    sql
}
