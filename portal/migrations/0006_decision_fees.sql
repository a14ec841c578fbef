-- Fees set by a decision (issue 23), paid after the decision at the payment provider:
-- one per submitted application (its decision is final). The amount is the hub's, read
-- again when the payment starts and when it returns; the reference is the provider's.
CREATE TABLE decision_payments (
    draft_id       TEXT PRIMARY KEY REFERENCES drafts(id) ON DELETE CASCADE,
    transaction_id TEXT NOT NULL,
    amount         TEXT NOT NULL,      -- "30.70"
    reference      TEXT,               -- set once the provider says PAYED
    started_at     INTEGER NOT NULL,   -- unix seconds
    paid_at        INTEGER
);
