-- Accounts (issue 25): where a registration began (the page to come back to once the
-- address is confirmed), and password resets by e-mail (a random token, stored hashed,
-- expiring; one use).
ALTER TABLE registrations ADD COLUMN next TEXT;

CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY,            -- SHA-256 of the link's secret
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX password_resets_account ON password_resets (account_id);
