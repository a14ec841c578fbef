-- Attachment slots (issue 22): the kind of attachment a form asked for, e.g. the
-- Wesenstest of a dangerous dog; NULL for an attachment of no particular kind.
ALTER TABLE attachments ADD COLUMN slot TEXT;
