-- The archive's own retention (DEAD_LETTER_RETENTION): purge_archived_dead_letters deletes
-- rows by age across tenants, in batches; this index keeps that from scanning the table.
CREATE INDEX dead_letters_dead_at_idx ON dead_letters (dead_at);
