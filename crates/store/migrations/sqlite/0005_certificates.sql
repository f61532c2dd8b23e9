-- A connection's app may prove itself with a certificate instead of a secret. The sealed column
-- `client_secret` then holds the private key and certificate in PEM; what may be shown of the
-- certificate (its thumbprint and expiry) is kept in clear beside it, for lists and warnings.

ALTER TABLE connections ADD COLUMN credential_kind TEXT NOT NULL DEFAULT 'secret';
ALTER TABLE connections ADD COLUMN certificate_thumbprint TEXT;
ALTER TABLE connections ADD COLUMN certificate_expires_at BIGINT;
