-- The change feed (GET /api/v1/changes): what a history entry records, so that a
-- client following its applications' changes can tell a state change (`change`), one
-- that brought the citizen a mailbox entry (`mailbox`) and a note at an unchanged status
-- (`note`: an access, retry now, retention). Entries written before are all `change`.
ALTER TABLE history ADD COLUMN kind TEXT NOT NULL DEFAULT 'change';
