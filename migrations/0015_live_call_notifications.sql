-- Live streams (issue 13): every instance follows the changes of live calls, so that each of its
-- streams hears of a call that starts, changes, ends or disappears without polling. These
-- triggers tell the instances which calls changed, on the channel phone_calls_changed, with the
-- changed ids as the payload (comma-separated, 200 to a notification: 7,399 bytes at most, under
-- NOTIFY's 8,000). They fire once per statement, with its transition table, so a batch of the
-- switch feed (one statement) sends one notification per 200 of its calls; PostgreSQL delivers
-- them at commit, and not at all when the transaction rolls back.
--
-- Only changes that touch a live call are told: a call inserted live, updated while or into
-- being live or out of it (ended), deleted while live. The history (ended calls inserted by a
-- load, pruned by retention) is no stream's business, and a bulk load of history sends nothing.
-- Views are written in the same statement as their call (the feed always updates the call's
-- row, with its sequence), so a change of views is told by its call's id.

CREATE FUNCTION notify_live_calls_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    ids text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        FOR ids IN
            SELECT string_agg(id::text, ',')
            FROM (SELECT id, (row_number() OVER () - 1) / 200 AS chunk FROM new_calls WHERE live) AS n
            GROUP BY chunk
        LOOP
            PERFORM pg_notify('phone_calls_changed', ids);
        END LOOP;
    ELSIF TG_OP = 'UPDATE' THEN
        FOR ids IN
            SELECT string_agg(id::text, ',')
            FROM (SELECT n.id, (row_number() OVER () - 1) / 200 AS chunk
                  FROM new_calls n JOIN old_calls o ON o.id = n.id
                  WHERE n.live OR o.live) AS u
            GROUP BY chunk
        LOOP
            PERFORM pg_notify('phone_calls_changed', ids);
        END LOOP;
    ELSE
        FOR ids IN
            SELECT string_agg(id::text, ',')
            FROM (SELECT id, (row_number() OVER () - 1) / 200 AS chunk FROM old_calls WHERE live) AS d
            GROUP BY chunk
        LOOP
            PERFORM pg_notify('phone_calls_changed', ids);
        END LOOP;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION notify_live_calls_changed() IS
    'Tells the services which live calls changed (channel phone_calls_changed, ids comma-separated, 200 at most per notification).';

CREATE TRIGGER live_calls_inserted
    AFTER INSERT ON phone_calls
    REFERENCING NEW TABLE AS new_calls
    FOR EACH STATEMENT EXECUTE FUNCTION notify_live_calls_changed();

CREATE TRIGGER live_calls_updated
    AFTER UPDATE ON phone_calls
    REFERENCING OLD TABLE AS old_calls NEW TABLE AS new_calls
    FOR EACH STATEMENT EXECUTE FUNCTION notify_live_calls_changed();

CREATE TRIGGER live_calls_deleted
    AFTER DELETE ON phone_calls
    REFERENCING OLD TABLE AS old_calls
    FOR EACH STATEMENT EXECUTE FUNCTION notify_live_calls_changed();
