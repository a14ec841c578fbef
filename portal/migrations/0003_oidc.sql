-- Sign-in with OpenID Connect (docs/portal.md, "Sign-in"). The trust level belongs to
-- the session now: how the citizen signed in this time, not what the account once reached.

-- 'password': registered with e-mail and password (level basis at most); 'oidc': created
-- on the first sign-in at an identity provider (its e-mail column is a placeholder that
-- no sign-in form can reach, `oidc:<id>`, and its password hash is empty).
ALTER TABLE accounts ADD COLUMN kind TEXT NOT NULL DEFAULT 'password';

-- Which identity (issuer, pseudonymous subject) belongs to which account.
CREATE TABLE account_identities (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    provider TEXT NOT NULL,                -- [[identity_provider]] id
    created_at INTEGER NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX account_identities_account ON account_identities (account_id);

-- The session's level and when its sign-in happened; the last request (idle expiry).
ALTER TABLE sessions ADD COLUMN level TEXT NOT NULL DEFAULT 'basis';
ALTER TABLE sessions ADD COLUMN authenticated_at INTEGER;
ALTER TABLE sessions ADD COLUMN last_seen_at INTEGER;

-- A session signed in at an identity provider: what the ID token said, the token itself
-- (sent to the hub as the assertion, and as id_token_hint at logout) and, only with the
-- citizen's consent, the claims that prefill forms (JSON: person, anschrift).
CREATE TABLE session_identities (
    session_id TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    acr TEXT NOT NULL,
    means TEXT NOT NULL,
    auth_time INTEGER NOT NULL,
    id_token TEXT NOT NULL,
    id_token_expires_at INTEGER NOT NULL,
    prefill TEXT
);

-- Sign-ins under way: the state (only its SHA-256), bound to the session that began it,
-- used once, expiring; the nonce and PKCE verifier it needs at the return.
CREATE TABLE oidc_logins (
    state_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    level TEXT,                            -- the level asked for; NULL: any
    next TEXT NOT NULL,
    consent INTEGER NOT NULL,              -- 1: prefill forms from the identity
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX oidc_logins_expiry ON oidc_logins (expires_at);

-- Logouts at an identity provider under way: the state that comes back with the citizen.
CREATE TABLE oidc_logouts (
    state_hash TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
