-- The audit log of admin actions (docs/audit.md): one row per queue, subscription,
-- dead-letter, token, tenant or schedule change, from mqctl, `mqctl apply` or mq-api.
-- Written by mq::audit::record() in the transaction of the change itself, so a change
-- without its row (or a row without its change) cannot be committed.
--
-- No foreign keys: a row outlives its tenant, queue and token. Append-only: UPDATE,
-- DELETE and TRUNCATE are refused by triggers, whoever asks; no interface of mq offers
-- either. Retention: none (an operator who must prune does it as the table owner with
-- plain SQL, docs/audit.md "Retention").
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    principal   text NOT NULL CHECK (length(principal) <= 200),
    token_id    text CHECK (length(token_id) <= 64),
    tenant_id   text CHECK (length(tenant_id) <= 64),
    source      text NOT NULL CHECK (length(source) <= 32),
    action      text NOT NULL CHECK (action ~ '^[a-z_]+\.[a-z_]+$'),
    target_kind text NOT NULL CHECK (length(target_kind) <= 32),
    target      text NOT NULL CHECK (length(target) <= 300),
    change      jsonb NOT NULL DEFAULT '{}'::jsonb,
    request_id  text CHECK (length(request_id) <= 64)
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id DESC);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
