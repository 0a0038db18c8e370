-- Services also remember for a few seconds what a list path resolves to (the extensions of a
-- user, the extension of a number). These triggers tell them at once, on the channel
-- access_tokens_changed with the payload `paths`, when users or extensions are added, changed or
-- removed, so that a new extension's calls are listed at once. (Changes of an account's role or
-- organization already send `*`, which makes the services forget everything.) One notification
-- per statement is enough: the services then forget every path.

CREATE FUNCTION notify_path_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('access_tokens_changed', 'paths');
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION notify_path_change() IS 'Tells the services to forget the list paths they resolved.';

CREATE TRIGGER extensions_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON extensions
    FOR EACH STATEMENT EXECUTE FUNCTION notify_path_change();

CREATE TRIGGER users_added_or_removed
    AFTER INSERT OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION notify_path_change();
