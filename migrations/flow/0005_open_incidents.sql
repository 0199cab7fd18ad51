-- The scheduler counts the unresolved incidents of every workflow on each
-- lease scan (the `vnext_incidents_open` gauge); this keeps that count off
-- the heap of a table that only grows.
CREATE INDEX incidents_open ON incidents (instance_id) WHERE NOT resolved;
