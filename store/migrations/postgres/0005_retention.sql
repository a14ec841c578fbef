-- Retention: when an application's personal data (payload, attachments, sealed message,
-- documents, mailbox texts, signed receipts) was deleted; the row, history and audit
-- trail stay (ids, states and hashes only).
ALTER TABLE applications ADD COLUMN purged_at TEXT NULL;
