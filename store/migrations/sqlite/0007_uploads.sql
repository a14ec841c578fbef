-- Attachments uploaded on their own, streamed, before the application that names them
-- (large files: up to the configured limit, never whole in memory). Stored in chunks of
-- a fixed size, which are also the fragments procedures download (claim check).
CREATE TABLE uploads (
    id             TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    filename       TEXT NOT NULL,            -- personal data
    media_type     TEXT NOT NULL,
    size           INTEGER,                  -- set when complete
    sha512         TEXT,                     -- set when complete
    created_at     TEXT NOT NULL,
    completed_at   TEXT,
    application_id TEXT REFERENCES applications(id)  -- bound by the intake
);
CREATE INDEX uploads_unbound ON uploads (created_at) WHERE application_id IS NULL;

CREATE TABLE upload_chunks (
    upload_id TEXT NOT NULL REFERENCES uploads(id),
    seq       INTEGER NOT NULL,
    content   BLOB NOT NULL,                 -- personal data
    PRIMARY KEY (upload_id, seq)
);

-- An attachment either holds its content or names the upload that does.
ALTER TABLE attachments ADD COLUMN upload_id TEXT REFERENCES uploads(id);
