-- Who made a booking, kept beside account_id: removing the account sets account_id to NULL,
-- and the name then tells a booking of a removed account from one made with the connection's
-- own app permissions (which never had an account), so that changing it asks for the account
-- to be connected again instead of trying, and failing, with the app's permissions.
ALTER TABLE calendar_bookings ADD COLUMN account_username TEXT;
UPDATE calendar_bookings SET account_username = (
    SELECT username FROM delegated_accounts WHERE delegated_accounts.id = calendar_bookings.account_id
) WHERE account_id IS NOT NULL;
