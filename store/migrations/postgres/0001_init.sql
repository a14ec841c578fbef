-- kopplung store, PostgreSQL flavour: the same tables as migrations/sqlite, for several
-- hub instances sharing one database. Personal data lives only in applications.payload
-- and attachments.content (and, sealed, in deliveries.sealed); history never holds any.
--
-- Times that are handed back as they were stored (and that the audit hash covers) are
-- RFC 3339 text in UTC, exactly as in SQLite; due_at and lease_until are unix
-- milliseconds. Keep the numbering in step with migrations/sqlite.

CREATE TABLE applications (
    id            TEXT PRIMARY KEY,          -- UUID, the API's handle
    receipt       TEXT NOT NULL UNIQUE,      -- short receipt number for people
    client_id     TEXT NOT NULL,             -- the submitting client
    service_key   TEXT NOT NULL,             -- LeiKa key
    region        TEXT NOT NULL,             -- ARS
    procedure_id  TEXT NOT NULL,
    status        TEXT NOT NULL,
    payload       TEXT NOT NULL,             -- validated form data (JSON text, kept as sent): personal data
    created_at    TEXT NOT NULL,             -- RFC 3339, UTC
    updated_at    TEXT NOT NULL
);

CREATE TABLE attachments (
    application_id TEXT NOT NULL REFERENCES applications(id),
    position       BIGINT NOT NULL,
    filename       TEXT NOT NULL,
    media_type     TEXT NOT NULL,
    size           BIGINT NOT NULL,
    sha512         TEXT NOT NULL,
    content        BYTEA NOT NULL,           -- personal data
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
    step           TEXT NOT NULL,            -- prepare | deliver | pickup | done | invalid | dead
    due_at         BIGINT NOT NULL,          -- unix ms: not to be worked on before
    attempts       BIGINT NOT NULL DEFAULT 0,
    last_error     TEXT,
    lease_owner    TEXT,                     -- lease token of the claim that holds the entry
    lease_until    BIGINT,                   -- unix ms; once passed, any instance may claim it
    sealed         BYTEA,                    -- the sealed message once prepared
    delivered_at   TEXT,
    PRIMARY KEY (application_id, procedure_id)
);
CREATE INDEX deliveries_due ON deliveries (step, due_at);
CREATE INDEX deliveries_procedure ON deliveries (procedure_id, step, due_at);

-- History: every state change, appended in the same transaction.
CREATE TABLE history (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications(id),
    at             TEXT NOT NULL,
    status         TEXT NOT NULL,
    detail         TEXT NOT NULL
);
CREATE INDEX history_application ON history (application_id, seq);
