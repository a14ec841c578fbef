-- The reply channel a FIT-Connect sender named for the applicant (`replyChannel` of its
-- metadata, JSON: an e-mail address, De-Mail, …), kept for the procedure: a subscriber
-- finds it in the metadata it collects. Personal data: deleted by retention with the
-- form. NULL for everything else.
ALTER TABLE applications ADD COLUMN reply_channel TEXT;
