-- What each call's parties say about it, kept on the call's row (issue 11: reports at ten
-- million calls).
--
-- Reports over a month ask, of hundreds of thousands of calls, what their parties say: when the
-- first one rang, the charged party's flow, disposition and destination, whether any party
-- parked, held or recorded the call. Read from the parties, which carry no time, that was one
-- lookup per call, 0.5 to 10 s for a month at 10M calls (BENCHMARKS.md). Kept on the call's row,
-- written by the switch feed in the same statement as the parties themselves, it is read with
-- the call: a report reads one row per call, through the indexes by publication time.
--
-- The rule that makes these figures from a call's parties has two homes, which must agree:
-- phone_call_party_facts below makes them from stored parties (for the backfill here,
-- scripts/seed.sql and hand-made rows, through phone_calls_refresh_party_facts()), and
-- src/switch_feed/repo/facts.rs makes them from the parties a report carries, and the feed
-- writes them with the call. A test applies reports through the feed and compares the two for
-- every call.
--
-- The index of ended calls' parties that 0012 added for the reports is no longer read, and
-- goes: it cost the feed about a quarter more database time per ended call.

ALTER TABLE phone_calls
    ADD COLUMN parties smallint NOT NULL DEFAULT 0,
    ADD COLUMN first_ringing timestamptz,
    ADD COLUMN charged_flow smallint,
    ADD COLUMN charged_disposition smallint,
    ADD COLUMN charged_destination text[],
    ADD COLUMN was_parked boolean NOT NULL DEFAULT false,
    ADD COLUMN was_on_hold boolean NOT NULL DEFAULT false,
    ADD COLUMN was_recorded boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN phone_calls.parties IS
    'Number of the call''s views (parties), kept by the switch feed (see phone_call_party_facts).';
COMMENT ON COLUMN phone_calls.first_ringing IS
    'Earliest ringing of the call''s views; NULL when none rang. Kept by the switch feed.';
COMMENT ON COLUMN phone_calls.charged_flow IS
    'Flow of the charged party: the view with the lowest view_id on the call''s extension; NULL when no view is on it. Kept by the switch feed.';
COMMENT ON COLUMN phone_calls.charged_disposition IS
    'Disposition of the charged party (see charged_flow). Kept by the switch feed.';
COMMENT ON COLUMN phone_calls.charged_destination IS
    'Destination numbers of the charged party (see charged_flow). Kept by the switch feed.';
COMMENT ON COLUMN phone_calls.was_parked IS 'true when any of the call''s views shows it parked. Kept by the switch feed.';
COMMENT ON COLUMN phone_calls.was_on_hold IS 'true when any of the call''s views shows it on hold. Kept by the switch feed.';
COMMENT ON COLUMN phone_calls.was_recorded IS 'true when any of the call''s views shows it recorded. Kept by the switch feed.';

-- The figures each call's stored parties give, as the columns above must hold them. A condition
-- on id reaches both grouped reads, so one call's figures cost two index lookups.
CREATE VIEW phone_call_party_facts AS
SELECT c.id,
       coalesce(a.parties, 0)::smallint AS parties,
       a.first_ringing,
       ch.flow AS charged_flow,
       ch.disposition AS charged_disposition,
       ch.destination AS charged_destination,
       coalesce(a.parked, false) AS was_parked,
       coalesce(a.on_hold, false) AS was_on_hold,
       coalesce(a.recorded, false) AS was_recorded
FROM phone_calls c
LEFT JOIN (
    SELECT v.phone_call_id, count(*) AS parties, min(v.ringing) AS first_ringing,
           bool_or(v.parked IS NOT NULL) AS parked, bool_or(v.on_hold IS NOT NULL) AS on_hold,
           bool_or(v.recording IS NOT NULL) AS recorded
    FROM phone_call_views v
    GROUP BY v.phone_call_id
) AS a ON a.phone_call_id = c.id
LEFT JOIN (
    SELECT DISTINCT ON (v.phone_call_id) v.phone_call_id, v.flow, v.disposition, v.destination
    FROM phone_call_views v
    JOIN phone_calls k ON k.id = v.phone_call_id AND k.extension_id = v.extension_id
    ORDER BY v.phone_call_id, v.view_id
) AS ch ON ch.phone_call_id = c.id;
COMMENT ON VIEW phone_call_party_facts IS
    'What each call''s stored views say about it, as phone_calls.parties to was_recorded must hold it; the switch feed writes the same from the views a report carries (src/switch_feed/repo/facts.rs).';

-- Brings every call's figures in line with its stored views; answers how many calls changed.
-- For calls written other than by the feed: the backfill below, scripts/seed.sql, hand-made
-- rows. Not for the feed's own writes, which never need it.
CREATE FUNCTION phone_calls_refresh_party_facts() RETURNS bigint
    LANGUAGE sql AS $$
WITH changed AS (
    UPDATE phone_calls c
    SET (parties, first_ringing, charged_flow, charged_disposition, charged_destination,
         was_parked, was_on_hold, was_recorded)
      = (f.parties, f.first_ringing, f.charged_flow, f.charged_disposition, f.charged_destination,
         f.was_parked, f.was_on_hold, f.was_recorded)
    FROM phone_call_party_facts f
    WHERE f.id = c.id
      AND (c.parties, c.first_ringing, c.charged_flow, c.charged_disposition, c.charged_destination,
           c.was_parked, c.was_on_hold, c.was_recorded)
          IS DISTINCT FROM
          (f.parties, f.first_ringing, f.charged_flow, f.charged_disposition, f.charged_destination,
           f.was_parked, f.was_on_hold, f.was_recorded)
    RETURNING 1
)
SELECT count(*) FROM changed
$$;
COMMENT ON FUNCTION phone_calls_refresh_party_facts() IS
    'Sets phone_calls.parties to was_recorded from the stored views (phone_call_party_facts) where they differ; answers how many calls changed. For rows written other than by the switch feed.';

-- Every organization's ended calls by publication time, as 0012 made them, but holding what
-- reporting.concurrency_hourly reads of each call (its organization and end), so that the hour
-- by hour reading of calls in progress never visits the table (an index-only scan; 15% of the
-- question's time at 10M calls). Dropped before the backfill and built after it, once.
DROP INDEX phone_calls_ended_published;

SELECT phone_calls_refresh_party_facts();

CREATE INDEX phone_calls_ended_published ON phone_calls (published) INCLUDE (organization_id, ended)
    WHERE ended IS NOT NULL;
COMMENT ON INDEX phone_calls_ended_published IS
    'Ended calls by publication time, with their organization and end, for reports over every organization (reporting_scoped_calls, index-only in reporting.concurrency_hourly).';

DROP INDEX phone_call_views_ended_reporting;

-- The reporting views read the figures from the calls' rows. New columns go last, as CREATE OR
-- REPLACE VIEW requires; the views keep their names, columns and grants.
CREATE OR REPLACE VIEW reporting_scoped_calls WITH (security_barrier) AS
SELECT id, organization_id, extension_id, extension, published, answered, ended, live, updated,
       parties, first_ringing, charged_flow, charged_disposition, charged_destination,
       was_parked, was_on_hold, was_recorded
FROM phone_calls
WHERE ended IS NOT NULL AND reporting_sees_all()
UNION ALL
SELECT id, organization_id, extension_id, extension, published, answered, ended, live, updated,
       parties, first_ringing, charged_flow, charged_disposition, charged_destination,
       was_parked, was_on_hold, was_recorded
FROM phone_calls
WHERE ended IS NOT NULL AND organization_id = reporting_organization()
UNION ALL
SELECT id, organization_id, extension_id, extension, published, answered, ended, live, updated,
       parties, first_ringing, charged_flow, charged_disposition, charged_destination,
       was_parked, was_on_hold, was_recorded
FROM phone_calls
WHERE ended IS NULL AND reporting_sees_all()
UNION ALL
SELECT id, organization_id, extension_id, extension, published, answered, ended, live, updated,
       parties, first_ringing, charged_flow, charged_disposition, charged_destination,
       was_parked, was_on_hold, was_recorded
FROM phone_calls
WHERE ended IS NULL AND organization_id = reporting_organization();

-- The calls in scope with the figures reports are made of. Time to answer counts from the first
-- ringing (from published when no party rang); the disposition is the charged party's, else
-- answered or unknown.
CREATE OR REPLACE VIEW reporting_call_facts WITH (security_barrier) AS
SELECT c.id, c.organization_id, c.extension_id, c.extension, c.published, c.answered, c.ended,
       c.live, c.updated, c.first_ringing,
       reporting_flow(c.charged_flow) AS flow,
       CASE WHEN c.answered IS NOT NULL
            THEN greatest(c.answered - coalesce(c.first_ringing, c.published), interval '0')
       END AS time_to_answer,
       coalesce(c.ended, now()) - c.answered AS talk_time,
       coalesce(c.ended, now()) - c.published AS duration,
       CASE WHEN NOT c.live THEN
           coalesce(reporting_disposition(c.charged_disposition),
                    CASE WHEN c.answered IS NOT NULL THEN 'answered' ELSE 'unknown' END)
       END AS disposition,
       c.was_parked AS parked,
       c.was_on_hold AS on_hold,
       c.was_recorded AS recorded,
       c.parties::integer AS parties,
       c.charged_destination AS destination
FROM reporting_scoped_calls c;
COMMENT ON VIEW reporting_call_facts IS
    'Calls in scope with the figures reports are made of (first ringing, charged party''s flow, disposition and destination, flags), read from the calls'' rows; the base of reporting.calls and reporting.daily_organization.';

CREATE OR REPLACE VIEW reporting.calls WITH (security_barrier) AS
SELECT f.id AS call_id,
       f.organization_id, o.organization_code, o.organization_name,
       f.extension_id, f.extension, n.user_id, n.user_name,
       f.flow, f.published, f.answered, f.ended, f.live, f.first_ringing,
       f.time_to_answer, f.talk_time, f.duration, f.disposition,
       f.parked, f.on_hold, f.recorded, f.parties, f.updated, f.destination
FROM reporting_call_facts f
JOIN reporting_organization_names o ON o.organization_id = f.organization_id
JOIN reporting_extension_names n ON n.extension_id = f.extension_id;
COMMENT ON COLUMN reporting.calls.destination IS
    'Destination numbers of the charged party (extensions or public numbers such as +442079460000); NULL when no party is on the charged extension.';

-- Analysts' roles check every scan for contradictions (constraint_exclusion), so that the
-- branches of the reporting views that a report's own conditions rule out (live calls in a
-- question about ended ones, say) are skipped without being read: 15% of Q6's time at 10M calls.
-- `phonecalls reporting role create` sets it on new roles; these are the roles made before.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT rr.role_name FROM reporting_roles rr JOIN pg_roles p ON p.rolname = rr.role_name LOOP
        EXECUTE format('ALTER ROLE %I SET constraint_exclusion = on', r.role_name);
    END LOOP;
END
$$;

-- The hour by hour peak of calls in progress, as 0012 defined it, without the end of each call
-- that lasts past the hour: such an end comes after every start of the hour, so it never counts
-- at a start, and sorting it was wasted work.
CREATE OR REPLACE VIEW reporting.concurrency_hourly WITH (security_barrier) AS
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
        WHERE c.stop_at > c.start_at AND (e.delta = 1 OR e.at < h.hour_end)
    ) AS e
    WHERE e.delta = 1
    GROUP BY e.organization_id
) AS x
JOIN reporting_organization_names o ON o.organization_id = x.organization_id;
