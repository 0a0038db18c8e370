-- Lighter writes of new calls, which the switch feed makes all day (profiled in BENCHMARKS.md).
--
-- 1. One unique key and one foreign key tie a view to its call, where there were two of each.
--
-- A view must name its call's organization and its call's liveness. Two composite foreign keys
-- did that, each referencing its own unique key of phone_calls ((id, organization_id) and
-- (id, live)); every new call paid for three unique B-tree entries on its id, and every new
-- view for two foreign key checks of the same call row. One key over (id, organization_id,
-- live) says both at once: it is unique because id is, the views reference it, and it cascades
-- updates, so that views follow their call's liveness in the same statement as before.
--
-- The cascade now also carries organization_id, but a call still cannot move to another
-- organization while it has views: their extensions belong to the old one, and the views'
-- extension foreign key, which includes organization_id, refuses the cascaded rows.
ALTER TABLE phone_calls ADD CONSTRAINT phone_calls_id_organization_live_key
    UNIQUE (id, organization_id, live);

ALTER TABLE phone_call_views DROP CONSTRAINT phone_call_views_call_fkey;
ALTER TABLE phone_call_views DROP CONSTRAINT phone_call_views_live_fkey;
ALTER TABLE phone_call_views ADD CONSTRAINT phone_call_views_call_fkey
    FOREIGN KEY (phone_call_id, organization_id, call_live)
    REFERENCES phone_calls (id, organization_id, live) ON UPDATE CASCADE ON DELETE CASCADE;

ALTER TABLE phone_calls DROP CONSTRAINT phone_calls_id_organization_key;
ALTER TABLE phone_calls DROP CONSTRAINT phone_calls_id_live_key;

COMMENT ON CONSTRAINT phone_call_views_call_fkey ON phone_call_views IS
    'A view belongs to a stored call, in its organization, and carries its liveness (call_live follows phone_calls.live by the cascade).';

-- 2. The call id leaves the live trigram index. A call id is 36 characters of random hex, so
-- each new call added about 37 trigrams, nearly all of them rare, to that GIN index: a third of
-- the database's cost of inserting a call, for a filter (an id containing a fragment) that
-- nobody runs often. That filter now reads the live id index (phone_calls_live_id_text) and
-- checks each live id; it stays bounded by the live set, however much history is stored.
DROP INDEX phone_calls_live_trgm;
CREATE INDEX phone_calls_live_trgm ON phone_calls
    USING gin (extension gin_trgm_ops, uapi_date(published) gin_trgm_ops, uapi_date(answered) gin_trgm_ops)
    WHERE ended IS NULL;
