//! Who sees what (spec §1), in one place: the condition every page statement applies (with the
//! path's scope folded in), and the decisions about which users and extensions a caller may name
//! in a path. An `admin` sees every call; an `organization` account its organization's; a `user`
//! the calls that involve its extensions; a `switch` none. A new role changes this file (and the reference model of
//! `tests/api/list_visibility.rs`, which checks it), nothing else.

use super::sql::{involves, Bind, Scope, Sql};
use crate::auth::{Caller, Role};

/// Whether the caller may name a user in a path (`userId`, or the owner of an extension named
/// with `@owner`): itself, anyone for an admin, a user of its own organization for an
/// organization account. `organization` is that user's.
pub fn may_name_user(caller: &Caller, user_id: i64, organization: Option<i64>) -> bool {
    user_id == caller.user_id
        || caller.role == Role::Admin
        || (caller.role == Role::Organization
            && organization.is_some()
            && organization == caller.organization_id)
}

/// The organization of every call the caller may see, when there is one: an organization
/// account sees its organization's calls, and a user the calls involving its extensions, which
/// are all in its organization (a call's views and extension are in the call's organization).
pub fn single_organization(caller: &Caller) -> Option<i64> {
    match caller.role {
        Role::Organization | Role::User => caller.organization_id,
        Role::Admin | Role::Switch => None,
    }
}

/// The SQL condition on a call (alias `c`) that holds for exactly the calls the caller may see
/// among those the path asks for (`scope`), ANDed by every page statement outside the user's
/// filter. Visibility is tested inside the statement, so a stale path cache can never show a
/// foreign call; but it is combined with the path's scope into one membership test, never a
/// second one: for a user, the calls that involve the intersection of its own extensions and
/// the path's, whose ids PostgreSQL computes once and probes both extension indexes with.
pub fn calls(sql: &mut Sql, caller: &Caller, scope: &Scope) {
    let path_extensions = match scope {
        Scope::Visible => None,
        Scope::Extensions(ids) => Some(ids),
    };
    match (caller.role, caller.organization_id) {
        (Role::Admin, _) => match path_extensions {
            None => {
                sql.push("TRUE");
            }
            Some(ids) => {
                let member = sql.fragment(|f| {
                    f.push(" = ANY(").bind(Bind::Ints(ids.clone())).push(")");
                });
                involves(sql, &member);
            }
        },
        (Role::Organization, Some(org)) => {
            sql.push("c.organization_id = ").bind(Bind::Int(org));
            if let Some(ids) = path_extensions {
                let member = sql.fragment(|f| {
                    f.push(" = ANY(").bind(Bind::Ints(ids.clone())).push(")");
                });
                sql.push(" AND ");
                involves(sql, &member);
            }
        }
        (Role::User, _) => {
            let member = sql.fragment(|f| {
                f.push(" = ANY(ARRAY(SELECT e.id FROM extensions e WHERE e.user_id = ")
                    .bind(Bind::Int(caller.user_id));
                if let Some(ids) = path_extensions {
                    f.push(" AND e.id = ANY(")
                        .bind(Bind::Ints(ids.clone()))
                        .push(")");
                }
                f.push("))");
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
