-- Flow schemas created and migrated ahead of need. The first start of a new
-- workflow renames one of them to the workflow's schema (and moves its rows of
-- the migration history along) instead of running the flow migrations itself.
CREATE TABLE spare_schemas (
    schema_name  text PRIMARY KEY,
    created_at   timestamptz NOT NULL DEFAULT now()
);
