-- A decision's appeal information (issue 23): the Rechtsbehelfsbelehrung (personal
-- data like the mailbox text, deleted with it by retention) and the last day on which
-- a Widerspruch may be filed (YYYY-MM-DD). NULL for every other mailbox entry.
ALTER TABLE mailbox ADD COLUMN appeal_text TEXT;
ALTER TABLE mailbox ADD COLUMN appeal_deadline TEXT;
