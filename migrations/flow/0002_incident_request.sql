-- What a retry needs to re-run the transition that faulted: its key, body,
-- headers and how it was triggered.
ALTER TABLE incidents ADD COLUMN request jsonb;
