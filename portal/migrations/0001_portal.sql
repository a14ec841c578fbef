-- The portal's own data: what is the citizen's (accounts, sessions, drafts with their
-- attachments, payments) and which router application belongs to whom.

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,           -- argon2id PHC string
    trust_level TEXT NOT NULL DEFAULT 'basis',
    master_data TEXT NOT NULL DEFAULT '{}',  -- JSON: person, anschrift, kontakt
    created_at INTEGER NOT NULL
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,                   -- SHA-256 of the cookie's token
    account_id TEXT REFERENCES accounts(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- A draft becomes an application when it is submitted (status 'submitted', with the
-- router's id and receipt). Owned by an account, or by a session when anonymous.
CREATE TABLE drafts (
    id TEXT PRIMARY KEY,
    account_id TEXT REFERENCES accounts(id) ON DELETE CASCADE,
    session_id TEXT,
    service TEXT NOT NULL,
    service_name TEXT NOT NULL,
    region TEXT NOT NULL,
    region_name TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',       -- the citizen's inputs as typed, JSON
    status TEXT NOT NULL DEFAULT 'draft',  -- draft | submitted
    payment_transaction TEXT,
    payment_reference TEXT,
    application_id TEXT,
    receipt TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    submitted_at INTEGER
);
CREATE INDEX drafts_account ON drafts (account_id, status);

CREATE TABLE draft_attachments (
    id TEXT PRIMARY KEY,
    draft_id TEXT NOT NULL REFERENCES drafts(id) ON DELETE CASCADE,
    filename TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    content BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX draft_attachments_draft ON draft_attachments (draft_id);
