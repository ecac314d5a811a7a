-- Message history (docs/history.md): one row per event of a recorded message's life,
-- drained from the partitions' Redis history buffers ({t:q:p}:h) by the history writer.
-- One event table rather than message_records + consumption_records (migration 001): a
-- timeline is one ordered read, and every event kind (published, attempt, dead_lettered,
-- replayed, expired) has the same unique key. Those two tables stay, unused (decisions.md).
CREATE TABLE message_events (
    id                bigserial PRIMARY KEY,
    tenant_id         text NOT NULL,
    topic_name        text NOT NULL,
    partition         integer NOT NULL,
    -- The buffer entry's id: with tenant, queue and partition it makes an event unique, so
    -- a writer that crashed between INSERT and XDEL inserts nothing twice when it re-runs.
    history_id        text NOT NULL,
    message_id        uuid NOT NULL,
    event             text NOT NULL
                      CHECK (event IN ('published', 'attempt', 'dead_lettered', 'replayed', 'expired')),
    at                timestamptz NOT NULL,
    subscription_name text,
    consumer          text,
    attempt           integer,
    outcome           text CHECK (outcome IS NULL OR outcome IN
                      ('acked', 'failed', 'dead_lettered', 'filtered', 'dropped')),
    duration_ms       bigint,
    error             text,
    publisher         text,
    message_key       text,
    headers           jsonb,
    payload_size      bigint,
    trace_id          text,
    stream_id         text,
    detail            text,
    UNIQUE (tenant_id, topic_name, partition, history_id)
);
-- A message's timeline (GET /messages/{id}, mqctl message show).
CREATE INDEX message_events_message_idx ON message_events (message_id, at);
-- A queue's messages, newest first (the list route's keyset pagination).
CREATE INDEX message_events_published_idx ON message_events (tenant_id, topic_name, at DESC, message_id DESC)
    WHERE event = 'published';
-- Retention (HISTORY_RETENTION) deletes by age in batches.
CREATE INDEX message_events_at_idx ON message_events (at);
