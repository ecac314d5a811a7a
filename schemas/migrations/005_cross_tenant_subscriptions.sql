-- Subscriptions on another tenant's public queue (docs/auth.md, "Public queues").
-- A subscription belongs to the subscriber's tenant (tenant_id) while its queue (topic_id)
-- may belong to another tenant, so two tenants may each have a subscription of the same
-- name on one public queue: names are unique per queue *and* subscriber tenant.
ALTER TABLE message_subscriptions DROP CONSTRAINT message_subscriptions_topic_id_name_key;
ALTER TABLE message_subscriptions ADD CONSTRAINT message_subscriptions_topic_id_tenant_id_name_key
    UNIQUE (topic_id, tenant_id, name);

-- consumer_group records the Redis consumer group: the name on the subscriber's own queue
-- (as before, so existing groups keep working), "<subscriber tenant>:<name>" on another
-- tenant's queue. Rows from before this migration all name their own tenant's queue.
