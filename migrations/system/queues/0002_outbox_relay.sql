-- Outbox relay: sent rows are found by age for the retention purge, and the
-- delivery attempts of a row that the broker refused are kept for operators.
ALTER TABLE outbox ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN last_error text;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
