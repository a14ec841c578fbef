-- What procedures send back for the citizen: decision documents and mailbox messages
-- (questions, decisions). Personal data: kept here, never in history or audit trail.
CREATE TABLE documents (
    id             TEXT PRIMARY KEY,   -- UUID, the download handle
    application_id TEXT NOT NULL REFERENCES applications(id),
    receipt_id     TEXT NOT NULL,
    filename       TEXT NOT NULL,
    media_type     TEXT NOT NULL,
    size           BIGINT NOT NULL,
    sha512         TEXT NOT NULL,
    content        BYTEA NOT NULL,
    created_at     TEXT NOT NULL       -- RFC 3339, UTC
);
CREATE INDEX documents_application ON documents (application_id);

CREATE TABLE mailbox (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications(id),
    receipt_id     TEXT NOT NULL,
    kind           TEXT NOT NULL,      -- query | decided | rejected
    text           TEXT NOT NULL,
    document_id    TEXT,
    at             TEXT NOT NULL       -- RFC 3339, UTC
);
CREATE INDEX mailbox_application ON mailbox (application_id, seq);
