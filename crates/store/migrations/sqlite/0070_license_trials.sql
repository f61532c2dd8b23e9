-- Whether a SKU's subscription is a trial, and when it next changes state (a trial's end, a
-- renewal), from the tenant's subscriptions; NULL where they could not be read.
ALTER TABLE licenses ADD COLUMN is_trial BOOLEAN;
ALTER TABLE licenses ADD COLUMN next_lifecycle TEXT;
