-- API keys. Only the SHA-256 of each secret is kept: the secret is shown once,
-- when the key is created. `scope` is `admin` (everything) or `domain` (the
-- `grants` on `domain`); `roles` are carried for the workflow model's roles.
CREATE TABLE api_keys (
    id             uuid PRIMARY KEY,
    name           text NOT NULL,
    secret_sha256  text NOT NULL UNIQUE,
    scope          text NOT NULL CHECK (scope IN ('admin', 'domain')),
    domain         text,
    grants         text[] NOT NULL DEFAULT '{}',
    roles          text[] NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    last_used_at   timestamptz,
    CHECK ((scope = 'admin') = (domain IS NULL))
);
