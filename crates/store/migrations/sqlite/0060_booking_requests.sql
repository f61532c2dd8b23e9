-- What each booking asked for, so that a request id sent again with another slot, subject or
-- attendees is refused instead of answered with the first booking; why an attempt failed, so a
-- failed booking is listed with its reason; and the mailbox's time zone when it was booked, so
-- that lists show local times without asking Outlook again. NULL on bookings made before.
ALTER TABLE calendar_bookings ADD COLUMN request TEXT;
ALTER TABLE calendar_bookings ADD COLUMN problem TEXT;
ALTER TABLE calendar_bookings ADD COLUMN time_zone TEXT;
