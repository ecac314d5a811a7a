-- Who set a subscription's handler (docs/security.md, "Handler trust boundary"):
-- origin 'operator' (mqctl with database access, `mqctl apply`, a worker's YAML file) or
-- 'api' (a token through mq-api); created_by names the writer ("mqctl", "apply:<scope>",
-- "worker", "token:<id>"). Both change whenever type or handler_config change, so they
-- always describe the handler that would run. mq-worker --from-db runs exec and log-to-file
-- subscriptions only with origin 'operator' (and --allow-operator-handlers), and checks the
-- address of every connection of an 'api' webhook.
--
-- Rows from before this migration: nothing says who wrote them, and mq-api accepted exec
-- and log handlers from any tenant-admin token, also on rows `mqctl apply` or a worker file
-- had declared. So every existing row becomes 'api' ("legacy"): untrusted, never run as an
-- exec or log-to-file handler, its webhook checked at connect time. An operator re-confirms
-- a row with `mqctl sub update QUEUE NAME --confirm-handler` (after reading it), or by
-- running `mqctl apply` / the worker file that declares it again.
ALTER TABLE message_subscriptions
    ADD COLUMN origin text NOT NULL DEFAULT 'api' CHECK (origin IN ('operator', 'api')),
    ADD COLUMN created_by text NOT NULL DEFAULT '' CHECK (length(created_by) <= 200);
UPDATE message_subscriptions SET created_by = 'legacy';
