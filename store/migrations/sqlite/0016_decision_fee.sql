-- A fee a decision sets (issue 23), for the citizen to pay in the portal: the amount
-- in cents and what it is for (deleted with the mailbox text by retention). NULL for
-- every other mailbox entry.
ALTER TABLE mailbox ADD COLUMN fee_cents BIGINT;
ALTER TABLE mailbox ADD COLUMN fee_purpose TEXT;
