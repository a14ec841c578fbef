-- How the applicant was identified (issue 18): the verified identification as JSON
-- (core's `Authentication`: level, means, issuer, pseudonymous subject, time, who vouched,
-- the assertion's hash and, where forwarded, the assertion). NULL: submitted anonymously
-- (and every application accepted before this column). Personal data: retention clears
-- it with the form data; the `accepted` audit entry's content hash binds it.
ALTER TABLE applications ADD COLUMN authentication TEXT NULL;
