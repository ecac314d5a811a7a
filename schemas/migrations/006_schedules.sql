-- Cron schedules (docs/schedules.md): a message published to a queue at every tick of a
-- cron expression in a time zone. The queue is named, not referenced: deleting a queue
-- leaves its schedules, whose ticks then fail with last_error set until they are changed
-- or deleted. next_tick_at is the compare-and-set guard that makes each tick fire once
-- across mq instances (with the idempotency key schedule:<name>:<tick ms> in Redis).
CREATE TABLE message_schedules (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    queue_name    text NOT NULL CHECK (queue_name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    cron          text NOT NULL CHECK (length(cron) BETWEEN 1 AND 256),
    tz            text NOT NULL DEFAULT 'UTC',
    payload       bytea NOT NULL DEFAULT '',
    headers       jsonb NOT NULL DEFAULT '{}',
    message_key   text NOT NULL DEFAULT '',
    content_type  text NOT NULL DEFAULT '',
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused')),
    misfire       text NOT NULL DEFAULT 'once' CHECK (misfire IN ('once', 'skip')),
    last_tick_at  timestamptz,
    next_tick_at  timestamptz,
    last_message_id text NOT NULL DEFAULT '',
    last_error    text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);
-- The ticker's scan: active schedules whose next tick is due, across tenants.
CREATE INDEX message_schedules_due_idx ON message_schedules (next_tick_at) WHERE status = 'active';
