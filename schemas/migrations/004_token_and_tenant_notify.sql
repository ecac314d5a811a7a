-- Tokens: only real changes notify. Authentication writes last_used_at (at most once a
-- minute per token); a NOTIFY for that would make every mq-api drop its whole token cache
-- several times a second on a busy platform.
DROP TRIGGER api_tokens_notify ON api_tokens;
CREATE TRIGGER api_tokens_notify
    AFTER INSERT OR DELETE OR UPDATE OF tenant_id, token_hash, token_prefix, role, principal,
        description, expires_at, revoked_at ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION mq_notify_config();

-- Tenants: suspension and publish_rate_limit reach mq-api on the same channel,
-- {"table":"tenants","op":...,"tenant":<id>}.
CREATE FUNCTION mq_notify_tenant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mq_config', json_build_object(
        'table', TG_TABLE_NAME, 'op', TG_OP, 'tenant', COALESCE(NEW.id, OLD.id))::text);
    RETURN NULL;
END $$;
CREATE TRIGGER tenants_notify AFTER INSERT OR UPDATE OR DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION mq_notify_tenant();
