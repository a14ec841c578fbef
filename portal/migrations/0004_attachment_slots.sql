-- Attachment slots (issue 22): which of the form's kinds of attachment a file fills
-- (e.g. the Wesenstest of a dangerous dog); NULL for a further document.
ALTER TABLE draft_attachments ADD COLUMN slot TEXT;
