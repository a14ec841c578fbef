-- kopplung store, SQLite flavour. Personal data lives only in applications.payload and
-- attachments.content (and, sealed, in deliveries.sealed); history never holds any.

CREATE TABLE applications (
    id            TEXT PRIMARY KEY,          -- UUID, the API's handle
    receipt       TEXT NOT NULL UNIQUE,      -- short receipt number for people
    client_id     TEXT NOT NULL,             -- the submitting client
    service_key   TEXT NOT NULL,             -- LeiKa key
    region        TEXT NOT NULL,             -- ARS
    procedure_id  TEXT NOT NULL,
    status        TEXT NOT NULL,
    payload       TEXT NOT NULL,             -- validated form data (JSON): personal data
    created_at    TEXT NOT NULL,             -- RFC 3339, UTC
    updated_at    TEXT NOT NULL
);

CREATE TABLE attachments (
    application_id TEXT NOT NULL REFERENCES applications(id),
    position       INTEGER NOT NULL,
    filename       TEXT NOT NULL,
    media_type     TEXT NOT NULL,
    size           INTEGER NOT NULL,
    sha512         TEXT NOT NULL,
    content        BLOB NOT NULL,            -- personal data
    PRIMARY KEY (application_id, position)
);

-- Answers already given, so a client that retries gets the same one.
CREATE TABLE idempotency_keys (
    client_id      TEXT NOT NULL,
    key            TEXT NOT NULL,
    request_sha256 TEXT NOT NULL,
    application_id TEXT NOT NULL REFERENCES applications(id),
    created_at     TEXT NOT NULL,
    PRIMARY KEY (client_id, key)
);

-- The outbox: one row per application and receiving procedure.
CREATE TABLE deliveries (
    application_id TEXT NOT NULL REFERENCES applications(id),
    service_key    TEXT NOT NULL,            -- copied for the message headers
    procedure_id   TEXT NOT NULL,
    message_id     TEXT NOT NULL UNIQUE,     -- nachrichtenUUID, stable across retries
    message_type   TEXT NOT NULL,
    step           TEXT NOT NULL,            -- prepare | deliver | done | invalid | dead
    due_at         INTEGER NOT NULL,         -- unix ms: not to be worked on before
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    lease_owner    TEXT,
    lease_until    INTEGER,                  -- unix ms
    sealed         BLOB,                     -- the sealed message once prepared
    delivered_at   TEXT,
    PRIMARY KEY (application_id, procedure_id)
);
CREATE INDEX deliveries_due ON deliveries (step, due_at);

-- History and audit trail: every state change, appended in the same transaction.
CREATE TABLE history (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    application_id TEXT NOT NULL REFERENCES applications(id),
    at             TEXT NOT NULL,
    status         TEXT NOT NULL,
    detail         TEXT NOT NULL
);
CREATE INDEX history_application ON history (application_id, seq);
