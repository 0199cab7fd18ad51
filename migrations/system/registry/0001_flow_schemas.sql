-- Lives in sys_schemas: every flow schema created in this database.
CREATE TABLE flow_schemas (
    flow_key       text PRIMARY KEY,
    schema_name    text NOT NULL UNIQUE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    migrated_at    timestamptz NOT NULL DEFAULT now(),
    -- Highest flow migration applied, and the last failure if one happened since.
    version        bigint NOT NULL DEFAULT 0,
    last_error     text
);
