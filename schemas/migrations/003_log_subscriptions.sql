-- mq-worker's built-in `log` handler (one JSON line per message, then ack) is a
-- subscription type of its own.
ALTER TABLE message_subscriptions DROP CONSTRAINT IF EXISTS message_subscriptions_type_check;
ALTER TABLE message_subscriptions ADD CONSTRAINT message_subscriptions_type_check
    CHECK (type IN ('pull', 'webhook', 'exec', 'log'));
