-- SQL reporting (issue 11): the `reporting` schema, the only thing analysts' roles may read.
--
-- Who sees what. An analyst's role is created by `phonecalls reporting role create`, which
-- records it in reporting_roles: with an organization, the role sees that organization's rows
-- only; without one, every organization's; a role that is not in reporting_roles sees nothing.
-- reporting_sees_all() and reporting_organization() are the one home of that rule, and every
-- reporting view reads calls through reporting_scoped_calls, which applies it in the scan of the
-- calls itself. The views are owned by the service's role and read tables with its privileges
-- (analysts have none on any table), and they are security barriers: a condition an analyst
-- writes is applied before the view's own only when its functions are leakproof, so no function
-- of theirs ever sees a row outside the scope. Parties are reached only from calls in scope,
-- names only in scope too, so that not even EXPLAIN ANALYZE's row counts tell anything of
-- another organization's rows.
--
-- Speed. Reports ask for a range of time. The calls are read live and ended apart (UNION ALL),
-- each set through its own partial index by publication time (per organization, or across
-- them); the daily and hourly views walk a calendar and read one day or hour at a time, so that
-- a condition on the day or hour bounds what they read; the parties of ended calls are read from
-- an index that holds what reports need of them.

CREATE SCHEMA reporting;
COMMENT ON SCHEMA reporting IS
    'Views for SQL reports over stored calls, live and ended (docs/reporting.md). Analysts'' roles read this schema and nothing else; a role tied to an organization sees only its rows.';

CREATE TABLE reporting_roles (
    role_name       name        PRIMARY KEY,
    organization_id bigint      REFERENCES organizations (id),
    created_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE reporting_roles IS
    'Analysts'' PostgreSQL roles made by phonecalls reporting role create; not readable by them.';
COMMENT ON COLUMN reporting_roles.organization_id IS
    'The one organization the role sees in the reporting views; NULL: every organization.';

-- What the role that logged in may see in the reporting views: every organization
-- (reporting_sees_all), or one (reporting_organization); neither for a role that is not a
-- reporting role. They read reporting_roles with their owner's privileges, since analysts
-- cannot, for session_user: the role that logged in, which nothing an analyst can run changes
-- (they are members of no role to SET ROLE to). Being functions rather than subqueries, they are
-- decided once per statement and leave the planner free to run a report on parallel workers.
-- Analysts may call them: they tell only their own scope.
CREATE FUNCTION reporting_sees_all() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, public
    RETURN coalesce((SELECT r.organization_id IS NULL FROM reporting_roles r WHERE r.role_name = session_user), false);
COMMENT ON FUNCTION reporting_sees_all() IS
    'true when the role that logged in is a reporting role that sees every organization.';
CREATE FUNCTION reporting_organization() RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, public
    RETURN (SELECT r.organization_id FROM reporting_roles r WHERE r.role_name = session_user);
COMMENT ON FUNCTION reporting_organization() IS
    'The one organization the reporting role that logged in sees; NULL when it sees every organization, and for any other role.';

-- The words the reporting views use for a party's flow, disposition and status.
CREATE FUNCTION reporting_flow(smallint) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE $1 WHEN 2 THEN 'local' WHEN 4 THEN 'outbound' WHEN 8 THEN 'inbound' END;
COMMENT ON FUNCTION reporting_flow(smallint) IS 'A view''s flow as a word: 2 local, 4 outbound, 8 inbound.';
CREATE FUNCTION reporting_disposition(smallint) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (ARRAY['answered', 'busy', 'failed', 'no answer', 'unknown', 'not allowed'])[$1 + 1];
COMMENT ON FUNCTION reporting_disposition(smallint) IS
    'A view''s disposition as words: 0 answered, 1 busy, 2 failed, 3 no answer, 4 unknown, 5 not allowed.';
CREATE FUNCTION reporting_status(smallint) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (ARRAY['unknown', 'off hook', 'trying', 'ringing', 'other side ringing', 'on call'])[$1 + 1];
COMMENT ON FUNCTION reporting_status(smallint) IS
    'A view''s status as words: 0 unknown, 1 off hook, 2 trying, 3 ringing, 4 other side ringing, 5 on call.';

-- Stored calls in scope: ended and live calls apart, each through its own indexes, and for each
-- either every organization's or one organization's. Only the branches that fit the role run
-- (their conditions on the role are decided once, before any row is read), and the
-- planner sizes the work for every organization, the case that needs its parallel workers.
-- Not granted to analysts; every reporting view of calls starts here.
CREATE VIEW reporting_scoped_calls WITH (security_barrier) AS
SELECT id, organization_id, extension_id, extension, published, answered, ended, live, updated
FROM phone_calls
WHERE ended IS NOT NULL AND reporting_sees_all()
UNION ALL
SELECT id, organization_id, extension_id, extension, published, answered, ended, live, updated
FROM phone_calls
WHERE ended IS NOT NULL AND organization_id = reporting_organization()
UNION ALL
SELECT id, organization_id, extension_id, extension, published, answered, ended, live, updated
FROM phone_calls
WHERE ended IS NULL AND reporting_sees_all()
UNION ALL
SELECT id, organization_id, extension_id, extension, published, answered, ended, live, updated
FROM phone_calls
WHERE ended IS NULL AND organization_id = reporting_organization();
COMMENT ON VIEW reporting_scoped_calls IS
    'Stored calls, live and ended, of the organizations the current role may see (reporting_sees_all and reporting_organization); the base of the reporting views of calls.';

-- Ended calls by publication time across organizations, for reports of every organization over
-- a range of time (an organization's range has phone_calls_organization_published). Live
-- calls have phone_calls_live_published.
CREATE INDEX phone_calls_ended_published ON phone_calls (published) WHERE ended IS NOT NULL;
COMMENT ON INDEX phone_calls_ended_published IS
    'Ended calls by publication time, for reports over every organization (reporting_scoped_calls).';

-- The longest an ended call lasted: how far before an hour a call may have started and still be
-- in progress in it (reporting.concurrency_hourly). Read from its own index in one step.
CREATE INDEX phone_calls_ended_duration ON phone_calls ((ended - published)) WHERE ended IS NOT NULL;
COMMENT ON INDEX phone_calls_ended_duration IS
    'Longest duration of an ended call, for reporting.concurrency_hourly: calls in progress during an hour started at most that long before it.';

-- ---------------------------------------------------------------------------------------------
-- reporting.organizations, reporting.extensions
-- ---------------------------------------------------------------------------------------------
CREATE VIEW reporting.organizations WITH (security_barrier) AS
SELECT o.id AS organization_id, o.code AS organization_code, o.name AS organization_name,
       o.created_at
FROM organizations o
WHERE reporting_sees_all()
   OR o.id = reporting_organization();
COMMENT ON VIEW reporting.organizations IS 'The organizations this role may see.';
COMMENT ON COLUMN reporting.organizations.organization_id IS 'Organization id (the API''s ownerId).';
COMMENT ON COLUMN reporting.organizations.organization_code IS 'Four-digit code that prefixes its extension numbers (0003).';
COMMENT ON COLUMN reporting.organizations.organization_name IS 'Display name.';
COMMENT ON COLUMN reporting.organizations.created_at IS 'When the organization was created.';

CREATE VIEW reporting.extensions WITH (security_barrier) AS
SELECT e.id AS extension_id, e.number AS extension, e.short_number, e.organization_id,
       e.user_id, u.name AS user_name, e.created_at
FROM extensions e
JOIN users u ON u.id = e.user_id AND u.organization_id = e.organization_id
WHERE (reporting_sees_all()
       OR e.organization_id = reporting_organization())
  AND (reporting_sees_all()
       OR u.organization_id = reporting_organization());
COMMENT ON VIEW reporting.extensions IS 'Extensions of the organizations this role may see, with the user who owns each.';
COMMENT ON COLUMN reporting.extensions.extension_id IS 'Extension id.';
COMMENT ON COLUMN reporting.extensions.extension IS 'Full number: organization code, star, short number (0003*210).';
COMMENT ON COLUMN reporting.extensions.short_number IS 'Number inside the organization (210).';
COMMENT ON COLUMN reporting.extensions.organization_id IS 'Organization of the extension.';
COMMENT ON COLUMN reporting.extensions.user_id IS 'Account (role user) that owns the extension.';
COMMENT ON COLUMN reporting.extensions.user_name IS 'Name of that account.';
COMMENT ON COLUMN reporting.extensions.created_at IS 'When the extension was created.';

-- ---------------------------------------------------------------------------------------------
-- What each call's parties say about it, in one place: reporting_call_facts
-- ---------------------------------------------------------------------------------------------
-- Reports over a month read a call's parties for hundreds of thousands of calls. Ended calls'
-- parties never change, so this index holds what reports need of them: each call's parties are
-- then one index lookup without touching the table (an index-only scan), about fifteen times
-- cheaper than reading the rows. Live calls' parties, which change all day, are not in it: an
-- entry is written once, when the call ends (BENCHMARKS.md measures that cost to the feed).
CREATE INDEX phone_call_views_ended_reporting ON phone_call_views (phone_call_id, view_id)
    INCLUDE (extension_id, flow, disposition, ringing, answered, parked, on_hold, recording, destination)
    WHERE NOT call_live;
COMMENT ON INDEX phone_call_views_ended_reporting IS
    'Ended calls'' parties with what the reporting views read of them, for index-only lookups per call.';

-- The calls in scope with what their parties tell: when the first party rang, the flow and
-- disposition of the charged party (the lowest view on the call's extension), whether any
-- party parked, held or recorded the call, and the times reports are made of. The parties of
-- ended and of live calls are read apart, each through its own index. Not granted to
-- analysts; reporting.calls and reporting.daily_organization read it.
CREATE VIEW reporting_call_facts WITH (security_barrier) AS
SELECT c.id, c.organization_id, c.extension_id, c.extension, c.published, c.answered, c.ended,
       c.live, c.updated, p.first_ringing,
       reporting_flow(p.charged[2]::smallint) AS flow,
       CASE WHEN c.answered IS NOT NULL
            THEN greatest(c.answered - coalesce(p.first_ringing, c.published), interval '0')
       END AS time_to_answer,
       coalesce(c.ended, now()) - c.answered AS talk_time,
       coalesce(c.ended, now()) - c.published AS duration,
       CASE WHEN NOT c.live THEN
           coalesce(reporting_disposition(nullif(p.charged[3], -1)::smallint),
                    CASE WHEN c.answered IS NOT NULL THEN 'answered' ELSE 'unknown' END)
       END AS disposition,
       coalesce(p.parked, false) AS parked,
       coalesce(p.on_hold, false) AS on_hold,
       coalesce(p.recorded, false) AS recorded,
       coalesce(p.parties, 0) AS parties
FROM reporting_scoped_calls c
LEFT JOIN LATERAL (
    SELECT min(v.ringing) AS first_ringing,
           -- The charged party: the lowest view id among the views on the call's extension,
           -- with its flow and disposition (-1: none), as the smallest such array.
           min(ARRAY[v.view_id::integer, v.flow, coalesce(v.disposition, -1)])
               FILTER (WHERE v.extension_id = c.extension_id) AS charged,
           bool_or(v.parked IS NOT NULL) AS parked,
           bool_or(v.on_hold IS NOT NULL) AS on_hold,
           bool_or(v.recording IS NOT NULL) AS recorded,
           count(*)::integer AS parties
    FROM (SELECT v.view_id, v.extension_id, v.flow, v.disposition, v.ringing, v.parked, v.on_hold, v.recording
          FROM phone_call_views v
          WHERE v.phone_call_id = c.id AND NOT v.call_live AND NOT c.live
          UNION ALL
          SELECT v.view_id, v.extension_id, v.flow, v.disposition, v.ringing, v.parked, v.on_hold, v.recording
          FROM phone_call_views v
          WHERE v.phone_call_id = c.id AND v.call_live AND c.live) AS v
) AS p ON true;
COMMENT ON VIEW reporting_call_facts IS
    'Calls in scope with the figures their parties give (first ringing, charged party''s flow and disposition, flags); the base of reporting.calls and reporting.daily_organization.';

-- Names the reporting views show next to calls: extensions with their users, organizations
-- with their codes, in scope, built like reporting_scoped_calls (every organization's or one
-- organization's, decided once) so that the planner sizes them right and hashes them once for a
-- whole report instead of looking them up per call. A condition an analyst writes on a name is
-- applied to names in scope only: not even EXPLAIN ANALYZE's row counts tell whether another
-- organization has a name.
CREATE VIEW reporting_extension_names AS
SELECT e.id AS extension_id, e.user_id, u.name AS user_name
FROM extensions e
JOIN users u ON u.id = e.user_id
WHERE reporting_sees_all()
UNION ALL
SELECT e.id, e.user_id, u.name
FROM extensions e
JOIN users u ON u.id = e.user_id AND u.organization_id = e.organization_id
WHERE e.organization_id = reporting_organization() AND u.organization_id = reporting_organization()
OFFSET 0;
COMMENT ON VIEW reporting_extension_names IS
    'Extensions in scope with their users'' ids and names, for the reporting views; not granted to analysts.';
CREATE VIEW reporting_organization_names AS
SELECT o.id AS organization_id, o.code AS organization_code, o.name AS organization_name
FROM organizations o
WHERE reporting_sees_all()
UNION ALL
SELECT o.id, o.code, o.name
FROM organizations o
WHERE o.id = reporting_organization()
OFFSET 0;
COMMENT ON VIEW reporting_organization_names IS
    'Organizations in scope with their codes and names, for the reporting views; not granted to analysts.';

-- ---------------------------------------------------------------------------------------------
-- reporting.calls
-- ---------------------------------------------------------------------------------------------
CREATE VIEW reporting.calls WITH (security_barrier) AS
SELECT f.id AS call_id,
       f.organization_id, o.organization_code, o.organization_name,
       f.extension_id, f.extension, n.user_id, n.user_name,
       f.flow, f.published, f.answered, f.ended, f.live, f.first_ringing,
       f.time_to_answer, f.talk_time, f.duration, f.disposition,
       f.parked, f.on_hold, f.recorded, f.parties, f.updated
FROM reporting_call_facts f
JOIN reporting_organization_names o ON o.organization_id = f.organization_id
JOIN reporting_extension_names n ON n.extension_id = f.extension_id;
COMMENT ON VIEW reporting.calls IS
    'One row per stored call, live and ended, of the organizations this role may see. Filter on published for a range of time: it is indexed per organization.';
COMMENT ON COLUMN reporting.calls.call_id IS 'Call id chosen by the switch (the API''s phoneCallId).';
COMMENT ON COLUMN reporting.calls.organization_id IS 'Organization that owns the call (ownerId).';
COMMENT ON COLUMN reporting.calls.organization_code IS 'Its four-digit code.';
COMMENT ON COLUMN reporting.calls.organization_name IS 'Its name.';
COMMENT ON COLUMN reporting.calls.extension_id IS 'Extension charged for the call.';
COMMENT ON COLUMN reporting.calls.extension IS 'Full number of the charged extension (0003*210).';
COMMENT ON COLUMN reporting.calls.user_id IS 'Account that owns the charged extension.';
COMMENT ON COLUMN reporting.calls.user_name IS 'Name of that account.';
COMMENT ON COLUMN reporting.calls.flow IS
    'Flow of the charged party''s view (the lowest view on the charged extension): local, outbound or inbound; NULL when no party is on the charged extension.';
COMMENT ON COLUMN reporting.calls.published IS 'When the call entered the system.';
COMMENT ON COLUMN reporting.calls.answered IS 'When the call was answered; NULL if it was not (yet).';
COMMENT ON COLUMN reporting.calls.ended IS 'When the call ended; NULL while it is live.';
COMMENT ON COLUMN reporting.calls.live IS 'true while the call is in progress (ended IS NULL).';
COMMENT ON COLUMN reporting.calls.first_ringing IS 'When the first party started ringing; NULL when no party reported ringing.';
COMMENT ON COLUMN reporting.calls.time_to_answer IS
    'From the first ringing (or, when no party reported ringing, from published) to answered; NULL for calls not answered.';
COMMENT ON COLUMN reporting.calls.talk_time IS 'ended minus answered; for a live call, until now; NULL for calls not answered.';
COMMENT ON COLUMN reporting.calls.duration IS 'ended minus published: the whole call; for a live call, until now.';
COMMENT ON COLUMN reporting.calls.disposition IS
    'Final disposition: the charged party''s (answered, busy, failed, no answer, unknown, not allowed), else answered when the call was answered and unknown when not; NULL while live.';
COMMENT ON COLUMN reporting.calls.parked IS 'true when any party''s view shows the call parked.';
COMMENT ON COLUMN reporting.calls.on_hold IS 'true when any party''s view shows the call on hold.';
COMMENT ON COLUMN reporting.calls.recorded IS 'true when any party''s view shows the call recorded.';
COMMENT ON COLUMN reporting.calls.parties IS 'Number of parties (views) the switch reported.';
COMMENT ON COLUMN reporting.calls.updated IS 'When a switch report (or phonecalls calls end-stale) last changed the call.';

-- ---------------------------------------------------------------------------------------------
-- reporting.call_parties
-- ---------------------------------------------------------------------------------------------
CREATE VIEW reporting.call_parties WITH (security_barrier) AS
SELECT c.id AS call_id, v.view_id,
       c.organization_id, v.extension_id, v.extension, n.user_id, n.user_name,
       v.source, v.destination,
       reporting_flow(v.flow) AS flow, reporting_status(v.status) AS status,
       v.caller_id, v.ringing, v.answered, v.recording,
       v.parked, v.parked_pos AS parked_position, v.parked_by, v.on_hold, v.holder = 1 AS holder,
       reporting_disposition(v.disposition) AS disposition,
       coalesce(c.ended, now()) - v.answered AS talk_time,
       c.published AS call_published, c.ended AS call_ended, c.live AS call_live
FROM reporting_scoped_calls c
-- Each call's parties by its id, ended and live apart (see reporting_call_facts).
CROSS JOIN LATERAL (
    SELECT v.view_id, v.extension_id, v.extension, v.source, v.destination, v.flow, v.status,
           v.caller_id, v.ringing, v.answered, v.recording, v.parked, v.parked_pos, v.parked_by,
           v.on_hold, v.holder, v.disposition
    FROM phone_call_views v
    WHERE v.phone_call_id = c.id AND NOT v.call_live AND NOT c.live
    UNION ALL
    SELECT v.view_id, v.extension_id, v.extension, v.source, v.destination, v.flow, v.status,
           v.caller_id, v.ringing, v.answered, v.recording, v.parked, v.parked_pos, v.parked_by,
           v.on_hold, v.holder, v.disposition
    FROM phone_call_views v
    WHERE v.phone_call_id = c.id AND v.call_live AND c.live
) AS v
JOIN reporting_extension_names n ON n.extension_id = v.extension_id;
COMMENT ON VIEW reporting.call_parties IS
    'One row per party of a stored call (the API''s phoneCallView), of the organizations this role may see. Filter on call_published for a range of time.';
COMMENT ON COLUMN reporting.call_parties.call_id IS 'The call (reporting.calls.call_id).';
COMMENT ON COLUMN reporting.call_parties.view_id IS 'Party id inside the call: 00, 01, ...';
COMMENT ON COLUMN reporting.call_parties.organization_id IS 'Organization that owns the call.';
COMMENT ON COLUMN reporting.call_parties.extension_id IS 'Extension whose perspective this party is.';
COMMENT ON COLUMN reporting.call_parties.extension IS 'Its full number (0003*210).';
COMMENT ON COLUMN reporting.call_parties.user_id IS 'Account that owns that extension.';
COMMENT ON COLUMN reporting.call_parties.user_name IS 'Name of that account.';
COMMENT ON COLUMN reporting.call_parties.source IS 'Source numbers (extensions or public numbers such as +442079460000).';
COMMENT ON COLUMN reporting.call_parties.destination IS 'Destination numbers (extensions or public numbers).';
COMMENT ON COLUMN reporting.call_parties.flow IS 'local, outbound (to a public number) or inbound (from one).';
COMMENT ON COLUMN reporting.call_parties.status IS 'Last reported status: unknown, off hook, trying, ringing, other side ringing, on call.';
COMMENT ON COLUMN reporting.call_parties.caller_id IS 'Caller id shown to this party.';
COMMENT ON COLUMN reporting.call_parties.ringing IS 'When this party started ringing.';
COMMENT ON COLUMN reporting.call_parties.answered IS 'When this party answered.';
COMMENT ON COLUMN reporting.call_parties.recording IS 'When recording started; NULL when not recorded.';
COMMENT ON COLUMN reporting.call_parties.parked IS 'When the call was parked; NULL when not parked.';
COMMENT ON COLUMN reporting.call_parties.parked_position IS 'Position in the parking lot.';
COMMENT ON COLUMN reporting.call_parties.parked_by IS 'Number that parked the call.';
COMMENT ON COLUMN reporting.call_parties.on_hold IS 'When the call was put on hold; NULL when not on hold.';
COMMENT ON COLUMN reporting.call_parties.holder IS 'true when this party put the call on hold.';
COMMENT ON COLUMN reporting.call_parties.disposition IS 'This party''s disposition (answered, busy, failed, no answer, unknown, not allowed); NULL while the call is live.';
COMMENT ON COLUMN reporting.call_parties.talk_time IS 'From this party''s answer to the call''s end (for a live call, until now); NULL when it did not answer.';
COMMENT ON COLUMN reporting.call_parties.call_published IS 'When the call entered the system.';
COMMENT ON COLUMN reporting.call_parties.call_ended IS 'When the call ended; NULL while it is live.';
COMMENT ON COLUMN reporting.call_parties.call_live IS 'true while the call is in progress.';

-- ---------------------------------------------------------------------------------------------
-- reporting.daily_organization
-- ---------------------------------------------------------------------------------------------
-- A calendar of UTC days from the first stored call's to today's; each day reads that day's
-- calls, so a condition on day bounds the work.
CREATE VIEW reporting.daily_organization WITH (security_barrier) AS
SELECT (d.day_start AT TIME ZONE 'UTC')::date AS day,
       x.organization_id, o.organization_code, o.organization_name,
       x.calls, x.answered,
       round(x.answered::numeric / x.calls, 4) AS answer_rate,
       x.avg_time_to_answer, x.p90_time_to_answer, x.talk_time,
       x.inbound, x.outbound, x.local
FROM (
    SELECT s AS day_start, s + interval '24 hours' AS day_end
    FROM generate_series(
        date_trunc('day', least(
            (SELECT min(ended) - max(ended - published) FROM phone_calls WHERE ended IS NOT NULL),
            (SELECT min(published) FROM phone_calls WHERE ended IS NULL)), 'UTC'),
        now(), interval '24 hours') AS s
    OFFSET 0
) AS d
CROSS JOIN LATERAL (
    SELECT f.organization_id,
           count(*) AS calls,
           count(f.answered) AS answered,
           avg(f.time_to_answer) AS avg_time_to_answer,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY f.time_to_answer) AS p90_time_to_answer,
           coalesce(sum(f.talk_time), interval '0') AS talk_time,
           count(*) FILTER (WHERE f.flow = 'inbound') AS inbound,
           count(*) FILTER (WHERE f.flow = 'outbound') AS outbound,
           count(*) FILTER (WHERE f.flow = 'local') AS local
    FROM reporting_call_facts f
    WHERE f.published >= d.day_start AND f.published < d.day_end
    GROUP BY f.organization_id
) AS x
JOIN reporting_organization_names o ON o.organization_id = x.organization_id;
COMMENT ON VIEW reporting.daily_organization IS
    'Per organization and UTC day (of published): calls, answers, time to answer, talk time and flows. Days without calls have no row. Filter on day (for example day >= current_date - 30) to bound the work.';
COMMENT ON COLUMN reporting.daily_organization.day IS 'UTC day the calls were published on.';
COMMENT ON COLUMN reporting.daily_organization.organization_id IS 'Organization.';
COMMENT ON COLUMN reporting.daily_organization.organization_code IS 'Its four-digit code.';
COMMENT ON COLUMN reporting.daily_organization.organization_name IS 'Its name.';
COMMENT ON COLUMN reporting.daily_organization.calls IS 'Calls published that day, live and ended.';
COMMENT ON COLUMN reporting.daily_organization.answered IS 'Of those, calls answered.';
COMMENT ON COLUMN reporting.daily_organization.answer_rate IS 'answered / calls, from 0 to 1, four decimals.';
COMMENT ON COLUMN reporting.daily_organization.avg_time_to_answer IS 'Average time to answer of the answered calls (reporting.calls.time_to_answer).';
COMMENT ON COLUMN reporting.daily_organization.p90_time_to_answer IS '90th percentile (continuous) of the answered calls'' time to answer.';
COMMENT ON COLUMN reporting.daily_organization.talk_time IS 'Total talk time of the answered calls (live ones until now).';
COMMENT ON COLUMN reporting.daily_organization.inbound IS 'Calls whose charged party''s flow is inbound.';
COMMENT ON COLUMN reporting.daily_organization.outbound IS 'Calls whose charged party''s flow is outbound.';
COMMENT ON COLUMN reporting.daily_organization.local IS 'Calls whose charged party''s flow is local.';

-- ---------------------------------------------------------------------------------------------
-- reporting.concurrency_hourly
-- ---------------------------------------------------------------------------------------------
-- For each UTC hour of a calendar, the calls in progress during it: published before its end,
-- not ended before its start (live calls last until now). Those started at most the longest
-- ended call's duration before the hour (phone_calls_ended_duration) or are live, so each hour
-- reads a bounded range of each index. Each call is clipped to the hour and adds 1 at its start
-- and -1 at its end; the running sum of those, taken in time order with ends before starts at
-- the same instant (a call ending when another starts does not overlap it), is the number of
-- calls in progress, and the peak is its largest value at a start.
CREATE VIEW reporting.concurrency_hourly WITH (security_barrier) AS
SELECT h.hour_start AS hour, x.organization_id, o.organization_code, o.organization_name,
       x.peak_calls
FROM (
    SELECT s AS hour_start, s + interval '1 hour' AS hour_end,
           s - coalesce((SELECT max(ended - published) FROM phone_calls WHERE ended IS NOT NULL), interval '0')
               AS earliest_start
    FROM generate_series(
        date_trunc('hour', least(
            (SELECT min(ended) - max(ended - published) FROM phone_calls WHERE ended IS NOT NULL),
            (SELECT min(published) FROM phone_calls WHERE ended IS NULL)), 'UTC'),
        now(), interval '1 hour') AS s
    OFFSET 0
) AS h
CROSS JOIN LATERAL (
    SELECT e.organization_id, max(e.level) AS peak_calls
    FROM (
        SELECT c.organization_id, e.delta,
               sum(e.delta) OVER (PARTITION BY c.organization_id ORDER BY e.at, e.delta
                                  ROWS UNBOUNDED PRECEDING) AS level
        FROM (
            SELECT c.organization_id, greatest(c.published, h.hour_start) AS start_at,
                   least(c.ended, h.hour_end) AS stop_at
            FROM reporting_scoped_calls c
            WHERE c.ended IS NOT NULL AND c.ended > h.hour_start
              AND c.published < h.hour_end AND c.published >= h.earliest_start
            UNION ALL
            SELECT c.organization_id, greatest(c.published, h.hour_start), least(now(), h.hour_end)
            FROM reporting_scoped_calls c
            WHERE c.ended IS NULL AND c.published < h.hour_end
        ) AS c
        CROSS JOIN LATERAL (VALUES (c.start_at, 1), (c.stop_at, -1)) AS e (at, delta)
        WHERE c.stop_at > c.start_at
    ) AS e
    WHERE e.delta = 1
    GROUP BY e.organization_id
) AS x
JOIN reporting_organization_names o ON o.organization_id = x.organization_id;
COMMENT ON VIEW reporting.concurrency_hourly IS
    'Per organization and UTC hour: the most calls in progress at the same time during that hour, what capacity and licences are sized by. A call is in progress from published until ended (live calls until now). Hours without calls in progress have no row. Filter on hour to bound the work.';
COMMENT ON COLUMN reporting.concurrency_hourly.hour IS 'Start of the UTC hour.';
COMMENT ON COLUMN reporting.concurrency_hourly.organization_id IS 'Organization.';
COMMENT ON COLUMN reporting.concurrency_hourly.organization_code IS 'Its four-digit code.';
COMMENT ON COLUMN reporting.concurrency_hourly.organization_name IS 'Its name.';
COMMENT ON COLUMN reporting.concurrency_hourly.peak_calls IS
    'Most calls in progress at one instant during the hour; a call ending at the instant another starts does not overlap it.';
