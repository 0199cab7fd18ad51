-- Almost every transition changes `current_state`. While an index covered it,
-- each such update wrote a new entry into every index of the table (a non-HOT
-- update). The list's index below leaves the state out: a transition that
-- keeps the status (A to A, the common case) updates the row on its own page
-- without touching an index (heap-only), provided the page has room, which
-- the fill factor keeps for it. Filters by state still narrow by status first.
DROP INDEX instances_by_state;
CREATE INDEX instances_by_status ON instances (status, created_at DESC, id);
ALTER TABLE instances SET (fillfactor = 75);
