-- The audit trail in chains (issue 20): each hub instance appends to chains of its own
-- (named by its instance id: `<id>`, `<id>/1`, …, one per connection), so that instances
-- commit concurrently instead of one after the other under one advisory lock. The entries written before are the chain 'global'.
-- Signed checkpoints name the head of every chain at once (audit/checkpoint.rs), which
-- ties the chains together.
--
-- Hubs of an older version must not append after this migration (they would link into
-- the global chain without the per-chain guard): `chain` has no default, so their
-- inserts fail instead. Stop all instances, then start the new version.
ALTER TABLE audit_log ADD COLUMN chain TEXT NOT NULL DEFAULT 'global';
ALTER TABLE audit_log ALTER COLUMN chain DROP DEFAULT;
ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey;
ALTER TABLE audit_log ADD PRIMARY KEY (chain, seq);

-- Each chain's end: the highest seq ever issued in it and the hash the next entry links
-- to (the 64 zeros of genesis while it is empty). Updated by every append, in the
-- appending transaction: the row lock orders one chain's appends, and the update's
-- condition (the seq the appender expects) keeps two processes that share an instance
-- id from forking a chain. It also remembers what was issued: entries removed from the
-- end of a chain, or a whole chain, are reported by verification.
CREATE TABLE audit_chains (
    chain TEXT PRIMARY KEY,
    seq   BIGINT NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_chains (chain, seq, hash)
SELECT 'global', i.seq,
       COALESCE((SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1),
                '0000000000000000000000000000000000000000000000000000000000000000')
FROM audit_issued i WHERE i.seq > 0;
DROP TABLE audit_issued;

-- A checkpoint of format 2 names every chain's head: one line per chain
-- ("chain <id> seq <n> hash <hex>", audit/checkpoint.rs); `seq` and `hash` are then 0
-- and ''. Format 1 (the global chain only) keeps `heads` NULL, as before.
ALTER TABLE audit_checkpoints ADD COLUMN heads TEXT NULL;
