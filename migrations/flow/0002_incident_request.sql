-- What a retry needs to re-run the transition that faulted: which hop, its
-- body and headers, and how it was triggered.
ALTER TABLE incidents ADD COLUMN request jsonb;
