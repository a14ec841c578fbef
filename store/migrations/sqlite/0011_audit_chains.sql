-- The audit trail in chains (issue 20), as in PostgreSQL: an entry names its chain. The
-- SQLite store has one writer and keeps one chain, 'global'; `seq` stays its key.
-- Checkpoints of format 2 (several chains) keep their heads in `heads`; SQLite writes
-- format 1 only.
ALTER TABLE audit_log ADD COLUMN chain TEXT NOT NULL DEFAULT 'global';
ALTER TABLE audit_checkpoints ADD COLUMN heads TEXT NULL;
