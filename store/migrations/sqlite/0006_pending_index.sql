-- The outbox's claim reads pending entries in due order and stops after a small window:
-- this index lets it do so without scanning (and sorting) the whole backlog.
CREATE INDEX deliveries_pending ON deliveries (due_at) WHERE step IN ('prepare', 'deliver');
