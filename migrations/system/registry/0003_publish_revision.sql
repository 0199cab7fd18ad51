-- Lives in sys_schemas: a counter every publish that stores a component raises
-- in its own transaction. App processes compare it with the revision their
-- cached definitions were compiled at; a changed revision drops the cache.
CREATE TABLE publish_revision (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    revision  bigint NOT NULL
);
INSERT INTO publish_revision (only_row, revision) VALUES (true, 0);
