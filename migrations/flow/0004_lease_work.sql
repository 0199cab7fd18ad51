-- What the holder of a lease is doing, so that lease recovery can act on it
-- when the holder dies: the request its run re-runs (first hop, body, redacted
-- headers and query, attempt) and the step in flight (the hop and the task
-- entries whose external I/O was running). Both are cleared with the lease.
ALTER TABLE instances
    ADD COLUMN lease_request jsonb,
    ADD COLUMN lease_step jsonb;
