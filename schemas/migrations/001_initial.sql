-- mq metadata: tenants, tokens, queues (topics), subscriptions, dead-letter archive,
-- consumption failures and opt-in message audit records. Messages themselves live in Redis.


CREATE TABLE tenants (
    id           text PRIMARY KEY
                 CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    display_name text NOT NULL DEFAULT '',
    status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    publish_rate_limit integer CHECK (publish_rate_limit IS NULL OR publish_rate_limit > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    token_hash   bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),  -- sha-256
    token_prefix text NOT NULL,                -- first characters, to recognise a token
    role         text NOT NULL CHECK (role IN ('admin', 'tenant-admin', 'producer', 'consumer')),
    principal    text NOT NULL,
    description  text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_tenant_idx ON api_tokens (tenant_id);

CREATE TABLE message_topics (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       text NOT NULL REFERENCES tenants(id) ON DELETE RESTRICT,
    name            text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    description     text NOT NULL DEFAULT '',
    partition_count integer NOT NULL DEFAULT 1 CHECK (partition_count BETWEEN 1 AND 256),
    retention_ms    bigint  NOT NULL DEFAULT 604800000 CHECK (retention_ms > 0),
    max_length      bigint  CHECK (max_length IS NULL OR max_length > 0),  -- NULL: unlimited
    dedup_window_ms bigint  NOT NULL DEFAULT 86400000 CHECK (dedup_window_ms > 0),
    schema_definition jsonb,
    encryption      text    NOT NULL DEFAULT 'none' CHECK (encryption IN ('none', 'aes-256-gcm')),
    record_messages boolean NOT NULL DEFAULT false,  -- opt-in audit rows in message_records
    allowed_producers text[] NOT NULL DEFAULT '{}',  -- empty: any producer of the tenant
    allowed_consumers text[] NOT NULL DEFAULT '{}',
    is_public       boolean NOT NULL DEFAULT false,
    status          text    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deleting')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

CREATE TABLE message_subscriptions (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       text NOT NULL REFERENCES tenants(id) ON DELETE RESTRICT,
    topic_id        uuid NOT NULL REFERENCES message_topics(id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    consumer_group  text NOT NULL,
    type            text NOT NULL DEFAULT 'pull' CHECK (type IN ('pull', 'webhook', 'exec')),
    handler_config  jsonb NOT NULL DEFAULT '{}',
    start_from      text NOT NULL DEFAULT 'latest' CHECK (start_from IN ('earliest', 'latest')),
    max_attempts    integer NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    initial_backoff_ms bigint NOT NULL DEFAULT 1000 CHECK (initial_backoff_ms >= 0),
    max_backoff_ms  bigint NOT NULL DEFAULT 300000 CHECK (max_backoff_ms >= 0),
    backoff_multiplier double precision NOT NULL DEFAULT 2.0 CHECK (backoff_multiplier >= 1.0),
    visibility_timeout_ms bigint NOT NULL DEFAULT 30000 CHECK (visibility_timeout_ms > 0),
    dead_letter_enabled boolean NOT NULL DEFAULT true,
    filter          jsonb,
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (topic_id, name)
);
CREATE INDEX message_subscriptions_tenant_idx ON message_subscriptions (tenant_id);

CREATE TABLE dead_letters (
    id              bigserial PRIMARY KEY,
    tenant_id       text NOT NULL,
    topic_name      text NOT NULL,
    subscription_name text NOT NULL,
    partition       integer NOT NULL,
    message_id      uuid NOT NULL,
    stream_id       text NOT NULL,   -- id in the partition's :dlq stream
    message_key     text,
    headers         jsonb,
    payload         bytea NOT NULL,
    reason          text NOT NULL,
    last_error      text,
    attempts        integer NOT NULL,
    published_at    timestamptz,
    dead_at         timestamptz NOT NULL,
    replayed_at     timestamptz,
    UNIQUE (tenant_id, topic_name, partition, stream_id)
);
CREATE INDEX dead_letters_lookup_idx
    ON dead_letters (tenant_id, topic_name, subscription_name, dead_at DESC);
CREATE INDEX dead_letters_message_idx ON dead_letters (message_id);

CREATE TABLE consumption_records (
    id              bigserial PRIMARY KEY,
    tenant_id       text NOT NULL,
    topic_name      text NOT NULL,
    subscription_name text NOT NULL,
    message_id      uuid NOT NULL,
    attempt         integer NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('acked', 'failed', 'dead_lettered', 'filtered')),
    error           text,
    duration_ms     integer,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consumption_records_lookup_idx
    ON consumption_records (tenant_id, topic_name, subscription_name, recorded_at DESC);
CREATE INDEX consumption_records_message_idx ON consumption_records (message_id);

CREATE TABLE message_records (
    message_id      uuid PRIMARY KEY,
    tenant_id       text NOT NULL,
    topic_name      text NOT NULL,
    partition       integer NOT NULL,
    message_key     text,
    payload_size    integer NOT NULL,
    published_at    timestamptz NOT NULL,
    publisher       text
);
CREATE INDEX message_records_topic_idx ON message_records (tenant_id, topic_name, published_at DESC);

-- One channel for config changes; mq-api refreshes its cache on it.
CREATE FUNCTION mq_notify_config() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mq_config', json_build_object(
        'table', TG_TABLE_NAME, 'op', TG_OP,
        'tenant', COALESCE(NEW.tenant_id, OLD.tenant_id))::text);
    RETURN NULL;
END $$;

CREATE TRIGGER message_topics_notify AFTER INSERT OR UPDATE OR DELETE ON message_topics
    FOR EACH ROW EXECUTE FUNCTION mq_notify_config();
CREATE TRIGGER message_subscriptions_notify AFTER INSERT OR UPDATE OR DELETE ON message_subscriptions
    FOR EACH ROW EXECUTE FUNCTION mq_notify_config();
CREATE TRIGGER api_tokens_notify AFTER INSERT OR UPDATE OR DELETE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION mq_notify_config();
