-- Payment records (issue 23): every fee paid through the portal — at submission, or the
-- one a decision set — is reported to the hub as a payment record for the authority's
-- accounting (HKR). Reported once; until then the sweep tries again.
ALTER TABLE drafts ADD COLUMN payment_paid_at INTEGER;       -- unix seconds, when the provider confirmed
ALTER TABLE drafts ADD COLUMN payment_reported_at INTEGER;   -- unix seconds, when the hub took the record
ALTER TABLE decision_payments ADD COLUMN reported_at INTEGER;
