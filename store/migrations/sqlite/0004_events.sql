-- What procedures send back for the citizen: decision documents and mailbox messages
-- (questions, decisions). Personal data: kept here, never in history or audit trail.
CREATE TABLE documents (
    id             TEXT PRIMARY KEY,   -- UUID, the download handle
    application_id TEXT NOT NULL REFERENCES applications(id),
    receipt_id     TEXT NOT NULL,
    filename       TEXT NOT NULL,
    media_type     TEXT NOT NULL,
    size           INTEGER NOT NULL,
    sha512         TEXT NOT NULL,
    content        BLOB NOT NULL,
    created_at     TEXT NOT NULL
);
CREATE INDEX documents_application ON documents (application_id);

CREATE TABLE mailbox (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    application_id TEXT NOT NULL REFERENCES applications(id),
    receipt_id     TEXT NOT NULL,
    kind           TEXT NOT NULL,      -- query | decision | rejected
    text           TEXT NOT NULL,
    document_id    TEXT,
    at             TEXT NOT NULL
);
CREATE INDEX mailbox_application ON mailbox (application_id, seq);
