-- Two more costs of every new call that bought nothing for live calls (BENCHMARKS.md).
--
-- 1. phone_calls.organization_id had its own foreign key to organizations, checked for every
-- call written. The extension foreign key already implies it: it names (extension_id,
-- organization_id, extension), and extensions reference their organization themselves.
ALTER TABLE phone_calls DROP CONSTRAINT phone_calls_organization_id_fkey;

-- 2. The organization history index covered live calls too. The list never needs it (live
-- calls have phone_calls_live_organization), yet every new call was entered in it, and the
-- planner sometimes reached an organization's live calls through it, reading history it then
-- threw away: slower the more history is stored. It now covers ended calls only, which is what
-- reports over history read; a report uses it when it says `ended IS NOT NULL`.
-- (phone_calls_extension_published stays whole: renumbering an organization cascades to its
-- calls by extension, and that lookup carries no condition on ended.)
DROP INDEX phone_calls_organization_published;
CREATE INDEX phone_calls_organization_published ON phone_calls (organization_id, published)
    WHERE ended IS NOT NULL;
COMMENT ON INDEX phone_calls_organization_published IS
    'Ended calls by organization and publication time, for reports over history; a query uses it when it says ended IS NOT NULL.';
