-- What each user can use: the service plans of a licence, and those switched off per user.

ALTER TABLE licenses ADD COLUMN plan_details TEXT NOT NULL DEFAULT '[]';
ALTER TABLE contact_licenses ADD COLUMN disabled_plans TEXT NOT NULL DEFAULT '[]';
