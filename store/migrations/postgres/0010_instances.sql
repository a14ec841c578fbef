-- The hub's instances and their heartbeats (issue 19): a live instance stamps its row
-- every few seconds (unix milliseconds); another instance takes over the claims of one
-- whose heartbeat is older than `[delivery] heartbeat_timeout_secs` and deletes its row.
-- Which instance holds a claim is read from the lease token (`<instance>/<unique>`).
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    heartbeat_at BIGINT NOT NULL
);
