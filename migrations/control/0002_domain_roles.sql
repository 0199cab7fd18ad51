-- Each domain database is reached through a role named like the database. Its
-- password is derived from the configured secret; the SHA-256 of the password
-- in use is kept so provisioning rotates it only when the secret changed.
ALTER TABLE domains ADD COLUMN role_password_sha256 text;
