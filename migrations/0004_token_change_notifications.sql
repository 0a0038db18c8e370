-- Services cache resolved tokens for a few seconds. These triggers tell them at once when a
-- cached answer may be wrong, on the channel access_tokens_changed: the token's SHA-256 digest in
-- hex when a token is revoked, shortened or deleted (also by cascade from its account), and `*`
-- when an account changes role or organization.

CREATE FUNCTION notify_access_token_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('access_tokens_changed', encode(OLD.token_sha256, 'hex'));
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION notify_access_token_change() IS 'Tells the services to forget a cached token.';

CREATE TRIGGER access_tokens_changed
    AFTER UPDATE OF revoked_at, expires_at, user_id, token_sha256 OR DELETE ON access_tokens
    FOR EACH ROW EXECUTE FUNCTION notify_access_token_change();

CREATE FUNCTION notify_account_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.role IS DISTINCT FROM OLD.role OR NEW.organization_id IS DISTINCT FROM OLD.organization_id THEN
        PERFORM pg_notify('access_tokens_changed', '*');
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION notify_account_change() IS 'Tells the services to forget every cached token when an account changes what it may see.';

CREATE TRIGGER users_changed AFTER UPDATE OF role, organization_id ON users
    FOR EACH ROW EXECUTE FUNCTION notify_account_change();
