-- Seeds a freshly migrated, empty phonecalls database with a large, realistic data set: the
-- accounts of a telephony platform and a year of call history plus a live set, for query plans
-- (tests/api/plans.rs, scripts/plans) and benchmarks.
--
--   psql -v ON_ERROR_STOP=1 -v calls=1000000 -f scripts/seed.sql "$DATABASE_URL"
--
-- Variables (psql -v name=value), all optional:
--   calls       stored calls, live and ended                   (default 1000000)
--   live        how many of them are live (ended IS NULL)      (default 20000)
--   orgs        organizations                                  (default 200)
--   users       accounts of role user, spread over the orgs    (default 10000)
--   extensions  extensions, spread over the orgs' users        (default 20000)
--   seed        setseed() value in [-1, 1]; same seed and sizes, same data (default 0.5)
--
-- Besides the users: one organization account per organization, one admin ("Root") and one
-- global switch account ("Switch"). Extensions get 3 to 5 digit short numbers, unique in their
-- organization. Ended calls are published over the last year (ending before the last hour),
-- live calls over the last hour; every call has 2 or 3 views on extensions of its organization.
--
-- Everything is set-based: one INSERT ... SELECT per table, no loops. Ids are assigned here
-- (1..n per table) so that the calls and views can compute their extensions arithmetically
-- instead of joining: extension id = k * :orgs_with_users + org, for the k-th (0-based)
-- extension of an organization. That is why the database must be empty. Run it outside a
-- transaction block (it ends with VACUUM ANALYZE, as autovacuum eventually would).

\set ON_ERROR_STOP 1
\if :{?calls}
\else
  \set calls 1000000
\endif
\if :{?live}
\else
  \set live 20000
\endif
\if :{?orgs}
\else
  \set orgs 200
\endif
\if :{?users}
\else
  \set users 10000
\endif
\if :{?extensions}
\else
  \set extensions 20000
\endif
\if :{?seed}
\else
  \set seed 0.5
\endif

SET synchronous_commit = off;
SET client_min_messages = warning;

-- Checks, with the sizes handed over as settings so that a DO block can read them.
SELECT set_config('seed.calls', :'calls', false) AS calls, set_config('seed.live', :'live', false) AS live,
       set_config('seed.orgs', :'orgs', false) AS orgs, set_config('seed.users', :'users', false) AS users,
       set_config('seed.extensions', :'extensions', false) AS extensions \gset checked_
DO $check$
DECLARE
    calls bigint := current_setting('seed.calls')::bigint;
    live bigint := current_setting('seed.live')::bigint;
    orgs bigint := current_setting('seed.orgs')::bigint;
    users bigint := current_setting('seed.users')::bigint;
    extensions bigint := current_setting('seed.extensions')::bigint;
BEGIN
    IF calls < 1 OR live < 0 OR live > calls THEN
        RAISE EXCEPTION 'seed.sql: need calls >= 1 and 0 <= live <= calls (calls %, live %)', calls, live;
    END IF;
    IF orgs NOT BETWEEN 1 AND 9999 THEN
        RAISE EXCEPTION 'seed.sql: orgs must be 1..9999 (four-digit organization codes), not %', orgs;
    END IF;
    IF users < 1 OR extensions < 1 THEN
        RAISE EXCEPTION 'seed.sql: need at least one user and one extension';
    END IF;
    -- The 5-digit plan (10000 + k) holds 90000 extensions per organization.
    IF (extensions + least(orgs, users) - 1) / least(orgs, users) > 90000 THEN
        RAISE EXCEPTION 'seed.sql: more than 90000 extensions per organization do not fit in 5 digits';
    END IF;
    IF EXISTS (SELECT FROM organizations) OR EXISTS (SELECT FROM users)
       OR EXISTS (SELECT FROM extensions) OR EXISTS (SELECT FROM phone_calls) THEN
        RAISE EXCEPTION 'seed.sql: the database must be freshly migrated and empty';
    END IF;
END
$check$;

-- Organizations that get user accounts (and so extensions), and those that get extensions.
SELECT least(:orgs, :users) AS oe, least(:orgs, :users, :extensions) AS oc \gset
SELECT setseed(:seed) \gset

\timing on
\echo seed.sql: :orgs organizations, :users users, :extensions extensions, :calls calls (:live live)

-- ---------------------------------------------------------------------------------------------
-- Accounts
-- ---------------------------------------------------------------------------------------------
\echo seed.sql: accounts
INSERT INTO organizations (id, name, code, created_at)
SELECT o,
       (ARRAY['Acme', 'Globex', 'Initech', 'Umbrella', 'Stark', 'Wayne', 'Hooli', 'Vandelay',
              'Wonka', 'Tyrell', 'Cyberdyne', 'Soylent', 'Gringotts', 'Monarch', 'Oscorp'])[1 + o % 15]
         || ' ' || (ARRAY['Ltd', 'Inc', 'GmbH', 'SA', 'LLC', 'BV', 'SRL'])[1 + (o / 15) % 7]
         || ' ' || o,
       lpad(o::text, 4, '0'),
       now() - interval '3 years' + o * interval '1 hour'
FROM generate_series(1, :orgs) AS o;

-- User accounts 1..users (user u in organization (u - 1) % orgs + 1), then one organization
-- account per organization, then the admin and the switch.
INSERT INTO users (id, organization_id, name, role, created_at)
SELECT u, (u - 1) % :orgs + 1,
       (ARRAY['Alice', 'Bob', 'Carol', 'Dave', 'Erin', 'Frank', 'Grace', 'Heidi', 'Ivan', 'Judy',
              'Mallory', 'Niaj', 'Olivia', 'Peggy', 'Rupert', 'Sybil', 'Trent', 'Victor', 'Walter',
              'Yolanda'])[1 + u % 20]
         || ' ' || (ARRAY['Smith', 'Jones', 'Taylor', 'Brown', 'Williams', 'Wilson', 'Johnson',
                          'Davies', 'Müller', 'Schmidt', 'Dubois', 'Rossi', 'Popescu', 'Novak',
                          'García', 'Silva', 'Jansen', 'Nowak', 'Horvat', 'Ionescu'])[1 + (u / 20) % 20],
       'user', now() - interval '2 years' + u * interval '1 minute'
FROM generate_series(1, :users) AS u
UNION ALL
SELECT :users + o.id, o.id, o.name, 'organization', o.created_at
FROM organizations o
UNION ALL
SELECT :users + :orgs + 1, NULL, 'Root', 'admin', now() - interval '3 years'
UNION ALL
SELECT :users + :orgs + 2, NULL, 'Switch', 'switch', now() - interval '3 years';

-- Extension g is the k-th (k = (g - 1) / oe) of organization o = (g - 1) % oe + 1, owned by
-- one of that organization's users in turn. Short numbers follow a per-organization plan of
-- 3, 4 or 5 digits: 100 + k, 1000 + k or 10000 + k.
INSERT INTO extensions (id, organization_id, organization_code, user_id, short_number, created_at)
SELECT g, o, lpad(o::text, 4, '0'),
       o + (k % ((:users - o) / :orgs + 1)) * :orgs,
       ((ARRAY[100, 1000, 10000])[1 + o % 3] + k)::text,
       now() - interval '2 years' + g * interval '1 minute'
FROM (SELECT g, (g - 1) % :oe + 1 AS o, (g - 1) / :oe AS k
      FROM generate_series(1, :extensions) AS g) AS x;

-- Accounts created later get the next ids.
SELECT setval(pg_get_serial_sequence('organizations', 'id'), (SELECT max(id) FROM organizations)) AS organizations,
       setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users)) AS users,
       setval(pg_get_serial_sequence('extensions', 'id'), (SELECT max(id) FROM extensions)) AS extensions
\gset last_

-- ---------------------------------------------------------------------------------------------
-- The calls and views are loaded in one transaction with their foreign keys dropped, then the
-- same foreign keys (pg_get_constraintdef) are added back, which checks every row in one join
-- per key instead of one lookup per row per key: about three times faster, and just as strict.
-- Should anything fail, the transaction rolls back and the schema is as it was.
-- ---------------------------------------------------------------------------------------------
BEGIN;
CREATE TEMP TABLE seed_foreign_keys ON COMMIT DROP AS
SELECT conrelid::regclass AS tbl, conname, pg_get_constraintdef(oid) AS def
FROM pg_constraint
WHERE contype = 'f' AND conrelid IN ('phone_calls'::regclass, 'phone_call_views'::regclass);
SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', tbl, conname) FROM seed_foreign_keys \gexec

-- ---------------------------------------------------------------------------------------------
-- Calls: i = 1 .. calls - live are ended, published in order over the year before the last
-- hour (the table grows in time order); the last `live` are live, published in the last hour.
-- Some organizations are much busier than others (o = 1 + floor(oc * r^2)). Each subquery
-- ends in OFFSET 0 so that every random() is drawn once per row.
-- ---------------------------------------------------------------------------------------------
\echo seed.sql: calls
INSERT INTO phone_calls (id, organization_id, extension_id, extension, nonce, published, answered,
                         ended, updated, sequence)
SELECT id, o, k * :oe + o,
       lpad(o::text, 4, '0') || '*' || ((ARRAY[100, 1000, 10000])[1 + o % 3] + k),
       nonce, published, answered,
       ended,
       CASE WHEN live THEN greatest(published, answered)
                           + (now() - greatest(published, answered)) * random()
            ELSE ended END,
       CASE WHEN live THEN 1 + floor(random() * 5) ELSE 2 + floor(random() * 8) END
FROM (
    SELECT id, live, o, k, nonce, published, answered,
           CASE WHEN NOT live THEN
               least(now(), coalesce(answered, published + ring)
                            + CASE WHEN answered IS NULL THEN interval '0'
                                   ELSE interval '1 second' * round(-ln(1 - random()) * 150) END)
           END AS ended
    FROM (
        SELECT id, live, o,
               floor(random() * ((:extensions - o) / :oe + 1))::int AS k,
               nonce, published, ring,
               CASE WHEN random() < CASE WHEN live THEN 0.65 ELSE 0.75 END
                    -- a live call cannot have been answered after now
                    THEN published + least(ring, date_trunc('second', now()) - published) END AS answered
        FROM (
            SELECT overlay(overlay(md5(:'seed' || '/' || i) PLACING '4' FROM 13) PLACING '8' FROM 17)::uuid AS id,
                   i > :calls - :live AS live,
                   1 + floor(:oc * random() ^ 2)::int AS o,
                   CASE WHEN random() < 0.5 THEN 'sw-' || to_hex(i) END AS nonce,
                   date_trunc('second', CASE
                       WHEN i > :calls - :live THEN now() - interval '1 hour' * random()
                       ELSE now() - interval '1 hour'
                            - interval '365 days' * (1 - (i - random()) / greatest(:calls - :live, 1))
                   END) AS published,
                   interval '1 second' * floor(random() * 40) AS ring
            FROM generate_series(1, :calls) AS i
            OFFSET 0
        ) AS a
        OFFSET 0
    ) AS b
    OFFSET 0
) AS c;

-- ---------------------------------------------------------------------------------------------
-- Views: 2 or 3 per call. View n is on the (k + n*s) % ne -th extension of the call's
-- organization (view 00 on the charged extension; 2s < ne keeps the three apart). The call's
-- flow is local (2, 40%), outgoing public (4, 30%) or incoming public (8, 30%); public numbers
-- are London, UK mobile, North American or Berlin numbers.
-- ---------------------------------------------------------------------------------------------
\echo seed.sql: views
INSERT INTO phone_call_views (phone_call_id, view_id, organization_id, extension_id, extension,
                              source, destination, flow, status, ringing, caller_id, recording,
                              answered, parked, parked_pos, parked_by, on_hold, holder,
                              disposition, call_live)
SELECT id, lpad(n::text, 2, '0'), o, kn * :oe + o, num[n + 1],
       CASE WHEN cf = 8 THEN ARRAY[pn] ELSE ARRAY[num[1]] END,
       CASE WHEN status IN (1, 2) AND n = 0 AND cf <> 8 THEN '{}'::text[]
            WHEN cf = 2 THEN num[2:nv]
            WHEN cf = 4 THEN ARRAY[pn]
            ELSE num[1:nv] END,
       vflow, status,
       CASE WHEN status >= 3 OR NOT live THEN published + interval '1 second' * floor(r1 * 3) END,
       CASE WHEN r2 < 0.6 THEN
           CASE WHEN cf = 8 THEN name || ' <' || pn || '>'
                ELSE name || ' <' || split_part(num[1], '*', 2) || '>' END END,
       CASE WHEN vanswered IS NOT NULL AND r3 < 0.1 THEN vanswered + interval '1 second' END,
       vanswered,
       CASE WHEN parked THEN vanswered + (coalesce(ended, now()) - vanswered) * r4 END,
       CASE WHEN parked THEN 1 + floor(r5 * 20)::int END,
       CASE WHEN parked THEN num[1] END,
       CASE WHEN held THEN vanswered + (coalesce(ended, now()) - vanswered) * r4 END,
       CASE WHEN held THEN (n = 0)::int END,
       CASE WHEN live THEN NULL WHEN answered IS NOT NULL THEN 0 ELSE 1 + floor(r5 * 5)::int END,
       live
FROM (
    SELECT c.*, n, (c.k + n * c.s) % c.ne AS kn,
           CASE WHEN n = 0 THEN c.cf
                WHEN c.cf = 4 AND random() < 0.5 THEN 2
                ELSE c.cf END AS vflow,
           CASE WHEN NOT c.live THEN floor(random() * 6)::int
                WHEN c.answered IS NOT NULL THEN CASE WHEN n < 2 THEN 5 ELSE 3 END
                WHEN n = 0 THEN (ARRAY[1, 2, 4, 4, 4])[1 + floor(random() * 5)::int]
                ELSE 3 END AS status,
           CASE WHEN c.answered IS NOT NULL AND n < 2 THEN c.answered END AS vanswered,
           c.answered IS NOT NULL AND n < 2 AND random() < 0.02 AS parked,
           c.answered IS NOT NULL AND n < 2 AND random() < 0.05 AS held,
           random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5
    FROM (
        SELECT c.*,
               ARRAY(SELECT lpad(c.o::text, 4, '0') || '*' || (c.base + (c.k + m * c.s) % c.ne)
                     FROM generate_series(0, c.nv - 1) AS m ORDER BY m) AS num
        FROM (
            SELECT c.id, c.organization_id AS o, c.live, c.published, c.answered, c.ended,
                   (c.extension_id - c.organization_id) / :oe AS k,
                   (:extensions - c.organization_id) / :oe + 1 AS ne,
                   (ARRAY[100, 1000, 10000])[1 + c.organization_id % 3] AS base,
                   1 + floor(random() * greatest(((:extensions - c.organization_id) / :oe) / 2, 1))::int AS s,
                   2 + (random() < 0.4)::int AS nv,
                   CASE WHEN random() < 0.4 THEN 2 WHEN random() < 0.5 THEN 4 ELSE 8 END AS cf,
                   CASE floor(random() * 5)::int
                       WHEN 0 THEN '+4420' || lpad(floor(random() * 1e8)::text, 8, '0')
                       WHEN 1 THEN '+4420' || lpad(floor(random() * 1e8)::text, 8, '0')
                       WHEN 2 THEN '+447' || lpad(floor(random() * 1e9)::text, 9, '0')
                       WHEN 3 THEN '+1' || (200 + floor(random() * 800)) || lpad(floor(random() * 1e7)::text, 7, '0')
                       ELSE '+4930' || lpad(floor(random() * 1e8)::text, 8, '0')
                   END AS pn,
                   (ARRAY['John Doe', 'Jane Roe', 'Reception', 'Sales', 'Support', 'Anna Berg',
                          'Ravi Patel', 'Li Wei', 'Maria Lopez', 'Tom Ford'])[1 + floor(random() * 10)::int] AS name
            FROM phone_calls AS c
            OFFSET 0
        ) AS c
        OFFSET 0
    ) AS c
    CROSS JOIN LATERAL generate_series(0, c.nv - 1) AS n
    OFFSET 0
) AS v;

-- What the parties say about each call, kept on its row as the switch feed keeps it.
\echo seed.sql: party figures
SELECT phone_calls_refresh_party_facts() AS calls_with_party_figures;

\echo seed.sql: foreign keys
SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s', tbl, conname, def)
FROM seed_foreign_keys ORDER BY tbl::text, conname \gexec
COMMIT;

-- Statistics and the visibility map, as autovacuum would leave them after a bulk load.
\echo seed.sql: vacuum and analyze
VACUUM (ANALYZE) organizations, users, extensions, phone_calls, phone_call_views;
\timing off
SELECT (SELECT count(*) FROM phone_calls) AS calls,
       (SELECT count(*) FROM phone_calls WHERE ended IS NULL) AS live_calls,
       (SELECT count(*) FROM phone_call_views) AS views,
       (SELECT count(*) FROM phone_call_views WHERE call_live) AS live_views;
