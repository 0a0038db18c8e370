-- Services remember for a few seconds that a presented token is unknown, so that a flood of one
-- unknown token costs one lookup, not one per request. A token issued afterwards must work at
-- once everywhere: its digest is announced on the same channel when it is inserted, and every
-- service forgets it, as it does for a revoked one.

CREATE FUNCTION notify_issued_access_token() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('access_tokens_changed', encode(NEW.token_sha256, 'hex'));
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION notify_issued_access_token() IS 'Tells the services to forget that a token was unknown.';

CREATE TRIGGER access_tokens_issued
    AFTER INSERT ON access_tokens
    FOR EACH ROW EXECUTE FUNCTION notify_issued_access_token();
