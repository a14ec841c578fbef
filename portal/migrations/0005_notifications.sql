-- Notifications by e-mail (docs/portal.md, "Notifications").

-- An account's consent, per kind of news: off until the citizen chooses (NULL), else
-- since when — a change that happened before is not mailed. `email`: an address the
-- account confirmed for notifications, for accounts without one of their own (signed
-- up at an identity provider); `pending_*`: one waiting for its confirmation link.
CREATE TABLE notification_settings (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    mailbox_since INTEGER,                 -- new mailbox entries
    status_since INTEGER,                  -- status changes
    email TEXT,
    pending_email TEXT,
    pending_token_hash TEXT UNIQUE,        -- SHA-256 of the confirmation link's token
    pending_expires_at INTEGER
);

-- An anonymous reporter's status mails for one application, double opt-in: nothing but
-- the confirmation mail goes out before its link was used. One token serves the status
-- page, the confirmation and the stop link of every mail, so the token itself is kept
-- (each mail carries it) beside its SHA-256, by which it is looked up. Deleted when
-- stopped, `[notifications] final_grace_days` after the application became final, or
-- at `expires_at` (the link's lifetime before confirmation, `anonymous_keep_days` after).
CREATE TABLE status_subscriptions (
    token_hash TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    application_id TEXT NOT NULL,          -- the hub's id
    receipt TEXT NOT NULL,
    email TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    confirmed_at INTEGER,                  -- NULL: not confirmed, no status mails
    final_at INTEGER,
    expires_at INTEGER NOT NULL
);
CREATE INDEX status_subscriptions_application ON status_subscriptions (application_id);
CREATE INDEX status_subscriptions_expiry ON status_subscriptions (expires_at);

-- Where the portal is in the hub's change feed (GET /api/v1/changes): one row.
CREATE TABLE change_feed (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    cursor INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- The portal's copy of a submitted application, found by the hub's id.
CREATE INDEX drafts_application ON drafts (application_id);
