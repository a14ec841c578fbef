-- Refunds (issue 25): a draft that goes unsubmitted — discarded by the citizen, or an
-- abandoned anonymous one swept — gives back a fee already paid. Each refund is recorded
-- here, without personal data: which transaction, how much, why and when.
CREATE TABLE refunds (
    transaction_id    TEXT PRIMARY KEY,
    refund_reference  TEXT NOT NULL,
    payment_reference TEXT,
    amount_cents      INTEGER NOT NULL,
    service           TEXT NOT NULL,
    reason            TEXT NOT NULL,      -- 'discarded' | 'expired'
    refunded_at       INTEGER NOT NULL    -- unix seconds
);
