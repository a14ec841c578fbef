-- Registrations wait here until their e-mail address is confirmed; only then is the
-- account created. One per address: a new registration replaces the last. An address
-- that has an account already gets a row too (without a link: nobody can confirm it),
-- so that signing in with the password of a registration says "confirm first" whether
-- or not the address has an account (docs/portal.md, "No enumeration").
CREATE TABLE registrations (
    email TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,           -- argon2id PHC string
    token_hash TEXT,                       -- SHA-256 of the link's token; NULL: no link
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX registrations_token ON registrations (token_hash);
CREATE INDEX registrations_expiry ON registrations (expires_at);

-- Mails waiting for the relay; deleted once sent or given up.
CREATE TABLE mail_outbox (
    id TEXT PRIMARY KEY,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at);

-- The quotas and the retention sweep of anonymous drafts.
CREATE INDEX drafts_session ON drafts (session_id, status);
CREATE INDEX drafts_anonymous_age ON drafts (updated_at) WHERE account_id IS NULL;
