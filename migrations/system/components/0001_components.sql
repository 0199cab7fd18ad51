-- One table per sys_* component schema: immutable versions of components.
-- `content` is `json`, not `jsonb`, so a component reads back byte for byte as sent.
CREATE TABLE components (
    key           text NOT NULL,
    version       text NOT NULL,
    -- Numeric parts of `version`, for "latest", major and major.minor selection.
    major         bigint NOT NULL,
    minor         bigint NOT NULL,
    patch         bigint NOT NULL,
    domain        text NOT NULL,
    content       json NOT NULL,
    sha256        text NOT NULL,
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'passive')),
    published_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key, version)
);
CREATE INDEX components_latest ON components (key, major DESC, minor DESC, patch DESC);
