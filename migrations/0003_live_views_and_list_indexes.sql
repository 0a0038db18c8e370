-- What the UAPI list needs to stay fast however much history is stored: views know whether
-- their call is live (kept in step by the database), and every sort and filter of the list has
-- an index over the live set.

-- A call is live while ended IS NULL; `live` spells it out so that views can follow it.
ALTER TABLE phone_calls ADD COLUMN live boolean GENERATED ALWAYS AS (ended IS NULL) STORED;
ALTER TABLE phone_calls ADD CONSTRAINT phone_calls_id_live_key UNIQUE (id, live);
COMMENT ON COLUMN phone_calls.live IS 'true while the call is live (ended IS NULL); generated, never written.';

ALTER TABLE phone_call_views ADD COLUMN call_live boolean;
UPDATE phone_call_views v SET call_live = c.live FROM phone_calls c WHERE c.id = v.phone_call_id;
ALTER TABLE phone_call_views ALTER COLUMN call_live SET NOT NULL;
-- ON UPDATE CASCADE: when a call ends (or is reopened), its views follow in the same statement.
ALTER TABLE phone_call_views ADD CONSTRAINT phone_call_views_live_fkey
    FOREIGN KEY (phone_call_id, call_live) REFERENCES phone_calls (id, live) ON UPDATE CASCADE ON DELETE CASCADE;
COMMENT ON COLUMN phone_call_views.call_live IS
    'Copy of phone_calls.live, kept in step by a cascading foreign key; lets the live views be indexed apart from history.';

-- The calls' UTC date text as the API shows it (2026-11-28T14:40:28Z): what contains and
-- startsWith filters on dates match, and a handy column for reports.
CREATE FUNCTION uapi_date(timestamptz) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN to_char($1 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"');
COMMENT ON FUNCTION uapi_date(timestamptz) IS 'A date as the UAPI writes it: UTC, whole seconds, 2026-11-28T14:40:28Z.';

-- A view's numbers as one text, separated by U+001F (which no stored number contains), so that
-- "contains" on any element can use a trigram index without matching across two numbers.
CREATE FUNCTION uapi_numbers(text[]) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN array_to_string($1, chr(31));
COMMENT ON FUNCTION uapi_numbers(text[]) IS 'Numbers of a view joined by U+001F, for substring search.';

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Sorts (each with id as tie-breaker) and range filters over live calls.
DROP INDEX phone_calls_live_published;
CREATE INDEX phone_calls_live_published ON phone_calls (published, id) WHERE ended IS NULL;
CREATE INDEX phone_calls_live_answered ON phone_calls (answered, id) WHERE ended IS NULL;
CREATE INDEX phone_calls_live_extension_number ON phone_calls ((extension COLLATE "C"), id) WHERE ended IS NULL;
CREATE INDEX phone_calls_live_id ON phone_calls (id) WHERE ended IS NULL;
CREATE INDEX phone_calls_live_id_text ON phone_calls ((id::text COLLATE "C")) WHERE ended IS NULL;
CREATE INDEX phone_calls_live_published_text ON phone_calls ((uapi_date(published) COLLATE "C")) WHERE ended IS NULL;
CREATE INDEX phone_calls_live_answered_text ON phone_calls ((uapi_date(answered) COLLATE "C")) WHERE ended IS NULL;
-- contains (LIKE '%…%') over live calls.
CREATE INDEX phone_calls_live_trgm ON phone_calls
    USING gin ((id::text) gin_trgm_ops, extension gin_trgm_ops, uapi_date(published) gin_trgm_ops,
               uapi_date(answered) gin_trgm_ops)
    WHERE ended IS NULL;

-- Live views: which live calls involve an extension, and view-level filters.
CREATE INDEX phone_call_views_live_extension ON phone_call_views (extension_id, phone_call_id) WHERE call_live;
CREATE INDEX phone_call_views_live_status ON phone_call_views (status, phone_call_id) WHERE call_live;
CREATE INDEX phone_call_views_live_flow ON phone_call_views (flow, phone_call_id) WHERE call_live;
CREATE INDEX phone_call_views_live_caller_id ON phone_call_views ((caller_id COLLATE "C"), phone_call_id) WHERE call_live;
CREATE INDEX phone_call_views_live_numbers ON phone_call_views USING gin (source, destination) WHERE call_live;
CREATE INDEX phone_call_views_live_trgm ON phone_call_views
    USING gin (caller_id gin_trgm_ops, uapi_numbers(source) gin_trgm_ops, uapi_numbers(destination) gin_trgm_ops)
    WHERE call_live;
