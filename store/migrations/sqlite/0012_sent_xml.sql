-- The XÖV message as it was signed and sealed (issue 22): the sealed message is
-- encrypted for the procedure and the hub cannot open it, so the admin view of a
-- message shows this copy, not a render with the mapping in force later. Written with
-- `sealed` in the same statement, cleared with it (reprocess, retention). NULL for
-- messages prepared before this column, and until a message is prepared.
ALTER TABLE deliveries ADD COLUMN sent_xml TEXT;
