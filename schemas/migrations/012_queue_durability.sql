-- Per-queue durability of a publish on Redis (docs/cluster.md "Durability and failover"):
-- 'leader' acknowledges once the master stored the message (Redis replication is
-- asynchronous: a failover can lose the last writes); 'replica' acknowledges only after
-- WAIT 1 confirmed that a replica of every node written has it.
ALTER TABLE message_topics
    ADD COLUMN durability text NOT NULL DEFAULT 'leader' CHECK (durability IN ('leader', 'replica'));
