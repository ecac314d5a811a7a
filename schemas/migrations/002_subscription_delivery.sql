-- Delivery settings a worker needs per subscription, beyond the seed columns.
ALTER TABLE message_subscriptions
    ADD COLUMN backoff_jitter double precision NOT NULL DEFAULT 0.2
        CHECK (backoff_jitter >= 0 AND backoff_jitter <= 1),
    ADD COLUMN concurrency integer NOT NULL DEFAULT 1 CHECK (concurrency BETWEEN 1 AND 1024),
    ADD COLUMN batch_size integer NOT NULL DEFAULT 10 CHECK (batch_size BETWEEN 1 AND 1000),
    ADD COLUMN rate_limit_per_s double precision CHECK (rate_limit_per_s IS NULL OR rate_limit_per_s > 0),
    ADD COLUMN description text NOT NULL DEFAULT '',
    ADD COLUMN managed_by text;  -- the `mqctl apply` scope that owns it; NULL: created by hand
CREATE INDEX message_subscriptions_managed_idx ON message_subscriptions (tenant_id, managed_by)
    WHERE managed_by IS NOT NULL;
