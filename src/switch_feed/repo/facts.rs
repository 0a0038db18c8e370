//! What a call's parties say about it, kept on the call's row (migration 0013): how many there
//! are, when the first rang, the charged party's flow, disposition and destination (the charged
//! party is the view with the lowest id on the call's extension), and whether any parked, held
//! or recorded the call. The reports of `reporting` read these instead of the parties, one row
//! per call.
//!
//! The feed writes them in the same statement as the call and its views, from the parties the
//! call has once the report is applied: the report's views when it carries views, the stored
//! ones when it leaves them out (its extension may still change which party is charged). The
//! same rule for stored parties is the database's view `phone_call_party_facts`; a test applies
//! reports through the feed and compares the two for every call.
//!
//! The pieces are macros that expand to string literals, so that the statements stay constants
//! (`concat!`), printable whole by `phonecalls statements --feed`.

/// The columns of `phone_calls` that [`party_facts!`] gives, in its order.
macro_rules! fact_columns {
    () => {
        "parties, first_ringing, charged_flow, charged_disposition, charged_destination, \
         was_parked, was_on_hold, was_recorded"
    };
}

/// The `ON CONFLICT … DO UPDATE` assignments of those columns.
macro_rules! fact_updates {
    () => {
        "parties = EXCLUDED.parties,
        first_ringing = EXCLUDED.first_ringing,
        charged_flow = EXCLUDED.charged_flow,
        charged_disposition = EXCLUDED.charged_disposition,
        charged_destination = EXCLUDED.charged_destination,
        was_parked = EXCLUDED.was_parked,
        was_on_hold = EXCLUDED.was_on_hold,
        was_recorded = EXCLUDED.was_recorded"
    };
}

/// The columns a statement's `parties` CTE has, read from `phone_call_views` (alias `v`), for the
/// stored parties of calls whose report leaves its views out.
macro_rules! stored_parties {
    () => {
        "v.phone_call_id, v.view_id, v.extension_id, v.flow, v.disposition, v.ringing, v.parked, \
         v.on_hold, v.recording, v.destination"
    };
}

/// A CTE `facts (id, <fact_columns>)`: one row per call of the CTE `planned (id, extension_id,
/// …)`, from the CTE `parties (phone_call_id, view_id, extension_id, flow, disposition, ringing,
/// parked, on_hold, recording, destination)` that holds every party of those calls as the
/// report leaves them. Grouped once for the whole statement, whatever the number of calls.
macro_rules! party_facts {
    () => {
        "facts AS (
    SELECT planned.id, coalesce(a.parties, 0)::smallint AS parties, a.first_ringing,
           ch.flow AS charged_flow, ch.disposition AS charged_disposition,
           ch.destination AS charged_destination, coalesce(a.parked, false) AS was_parked,
           coalesce(a.on_hold, false) AS was_on_hold, coalesce(a.recorded, false) AS was_recorded
    FROM planned
    LEFT JOIN (
        SELECT p.phone_call_id, count(*) AS parties, min(p.ringing) AS first_ringing,
               bool_or(p.parked IS NOT NULL) AS parked, bool_or(p.on_hold IS NOT NULL) AS on_hold,
               bool_or(p.recording IS NOT NULL) AS recorded
        FROM parties p
        GROUP BY p.phone_call_id
    ) AS a ON a.phone_call_id = planned.id
    LEFT JOIN (
        SELECT DISTINCT ON (p.phone_call_id) p.phone_call_id, p.flow, p.disposition, p.destination
        FROM parties p
        JOIN planned k ON k.id = p.phone_call_id AND k.extension_id = p.extension_id
        ORDER BY p.phone_call_id, p.view_id
    ) AS ch ON ch.phone_call_id = planned.id
)"
    };
}

pub(super) use {fact_columns, fact_updates, party_facts, stored_parties};
