-- Follow-up messages of the citizen (issue 23): the answer to a query, documents sent
-- later, an objection, a payment record. Each is a row of its own, a child of its
-- application (parent_id), with its own message id, outbox entry, history and receipts;
-- the application lists and the change feed show parents only. NULL for applications.
ALTER TABLE applications ADD COLUMN parent_id TEXT REFERENCES applications(id);
ALTER TABLE applications ADD COLUMN follow_up TEXT;   -- antwort | nachreichung | widerspruch | zahlung
ALTER TABLE applications ADD COLUMN refers_to TEXT;   -- the procedure's event id it answers
CREATE INDEX applications_parent ON applications (parent_id) WHERE parent_id IS NOT NULL;
