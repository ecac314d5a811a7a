-- Transactional outbox (docs/outbox.md): a service calls mq.enqueue() in the transaction
-- that writes its own rows; a relay (mq-worker, `mqctl outbox relay`) publishes committed
-- rows in id order, with "outbox-<settings.id>-<row id>" as idempotency key, and deletes
-- them after Redis accepted them. The same file is applied to a service's own database by
-- `mqctl outbox install`, so every statement is idempotent and it touches only schema mq.
CREATE SCHEMA IF NOT EXISTS mq;

-- One row: what makes this database's row ids unique across databases (the idempotency
-- key carries it) and the payload bound mq.enqueue enforces.
CREATE TABLE IF NOT EXISTS mq.outbox_settings (
    singleton         boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    id                uuid NOT NULL DEFAULT gen_random_uuid(),
    max_payload_bytes integer NOT NULL DEFAULT 1048576 CHECK (max_payload_bytes > 0),
    created_at        timestamptz NOT NULL DEFAULT now()
);
INSERT INTO mq.outbox_settings DEFAULT VALUES ON CONFLICT DO NOTHING;

-- A row is pending (failed_at null; retried after next_attempt_at when set) or failed
-- (never publishable as it is: unknown queue, refused payload...; `mqctl outbox retry`).
-- tenant null: the tenant the relay's source is configured with.
CREATE TABLE IF NOT EXISTS mq.outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant          text CHECK (tenant ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    queue           text NOT NULL CHECK (queue ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    payload         text NOT NULL,
    key             text,
    headers         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(headers) = 'object'),
    content_type    text,
    trace_id        text,
    deliver_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    failed_at       timestamptz,
    last_error      text
);
-- The relay's scan: pending rows in id order.
CREATE INDEX IF NOT EXISTS outbox_pending_idx ON mq.outbox (id) WHERE failed_at IS NULL;

-- Wakes the relays (LISTEN mq_outbox) when the inserting transaction commits; a rolled
-- back one notifies nobody. Per statement, so a bulk insert is one notification.
CREATE OR REPLACE FUNCTION mq.outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mq_outbox', '');
    RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS outbox_notify ON mq.outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON mq.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION mq.outbox_notify();

-- mq.enqueue: adds one message to the outbox in the caller's transaction and returns the
-- row id. Checks here what SQL can (names, sizes, headers a JSON object of strings, one of
-- delay_ms / deliver_at); the relay checks the rest (queue exists, schema, encryption).
-- SECURITY DEFINER: a service role needs EXECUTE on it and USAGE on schema mq, not INSERT
-- on the table (docs/outbox.md, "Who may publish").
CREATE OR REPLACE FUNCTION mq.enqueue(
    queue        text,
    payload      text,
    key          text DEFAULT NULL,
    headers      jsonb DEFAULT '{}',
    delay_ms     bigint DEFAULT NULL,
    deliver_at   timestamptz DEFAULT NULL,
    content_type text DEFAULT NULL,
    trace_id     text DEFAULT NULL,
    tenant       text DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_limit integer;
    v_headers jsonb := coalesce(enqueue.headers, '{}'::jsonb);
    v_at timestamptz := enqueue.deliver_at;
    v_id bigint;
BEGIN
    IF enqueue.queue IS NULL OR enqueue.queue !~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' THEN
        RAISE EXCEPTION 'mq.enqueue: queue name % must be 1-64 characters of [A-Za-z0-9._-], starting with a letter or digit',
            coalesce(quote_literal(left(enqueue.queue, 80)), 'NULL') USING ERRCODE = '22023';
    END IF;
    IF enqueue.tenant IS NOT NULL AND enqueue.tenant !~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' THEN
        RAISE EXCEPTION 'mq.enqueue: tenant % is not a valid tenant name', quote_literal(left(enqueue.tenant, 80))
            USING ERRCODE = '22023';
    END IF;
    IF enqueue.payload IS NULL THEN
        RAISE EXCEPTION 'mq.enqueue: payload must not be NULL (use '''' for an empty message)'
            USING ERRCODE = '22023';
    END IF;
    SELECT s.max_payload_bytes INTO v_limit FROM mq.outbox_settings s;
    IF octet_length(enqueue.payload) > coalesce(v_limit, 1048576) THEN
        RAISE EXCEPTION 'mq.enqueue: payload is % bytes, over the limit of % bytes (mq.outbox_settings.max_payload_bytes)',
            octet_length(enqueue.payload), coalesce(v_limit, 1048576) USING ERRCODE = '54000';
    END IF;
    IF enqueue.key IS NOT NULL AND octet_length(enqueue.key) > 1024 THEN
        RAISE EXCEPTION 'mq.enqueue: key is over 1024 bytes' USING ERRCODE = '22023';
    END IF;
    IF jsonb_typeof(v_headers) <> 'object' THEN
        RAISE EXCEPTION 'mq.enqueue: headers must be a JSON object of strings, not a JSON %', jsonb_typeof(v_headers)
            USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_each(v_headers) h WHERE jsonb_typeof(h.value) <> 'string') THEN
        RAISE EXCEPTION 'mq.enqueue: every header value must be a JSON string' USING ERRCODE = '22023';
    END IF;
    IF (SELECT count(*) FROM jsonb_object_keys(v_headers)) > 64 THEN
        RAISE EXCEPTION 'mq.enqueue: at most 64 headers' USING ERRCODE = '22023';
    END IF;
    IF enqueue.delay_ms IS NOT NULL AND v_at IS NOT NULL THEN
        RAISE EXCEPTION 'mq.enqueue: give delay_ms or deliver_at, not both' USING ERRCODE = '22023';
    END IF;
    IF enqueue.delay_ms IS NOT NULL THEN
        IF enqueue.delay_ms < 0 OR enqueue.delay_ms > 31536000000 THEN
            RAISE EXCEPTION 'mq.enqueue: delay_ms must be between 0 and 31536000000 (one year), not %', enqueue.delay_ms
                USING ERRCODE = '22023';
        END IF;
        v_at := clock_timestamp() + make_interval(secs => enqueue.delay_ms / 1000.0);
    END IF;
    IF enqueue.content_type IS NOT NULL AND octet_length(enqueue.content_type) > 255 THEN
        RAISE EXCEPTION 'mq.enqueue: content_type is over 255 bytes' USING ERRCODE = '22023';
    END IF;
    IF enqueue.trace_id IS NOT NULL AND octet_length(enqueue.trace_id) > 128 THEN
        RAISE EXCEPTION 'mq.enqueue: trace_id is over 128 bytes' USING ERRCODE = '22023';
    END IF;
    INSERT INTO mq.outbox (tenant, queue, payload, key, headers, content_type, trace_id, deliver_at)
    VALUES (enqueue.tenant, enqueue.queue, enqueue.payload, enqueue.key, v_headers,
            enqueue.content_type, enqueue.trace_id, v_at)
    RETURNING id INTO v_id;
    RETURN v_id;
END;
$$;
REVOKE ALL ON FUNCTION mq.enqueue(text, text, text, jsonb, bigint, timestamptz, text, text, text) FROM PUBLIC;
