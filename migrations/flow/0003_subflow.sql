-- Subflows. A parent parked on a SubFlow state stays busy ('B') for as long as
-- its child runs, but holds no lease: `parked_on` names the open correlation it
-- waits for, and lease recovery (status 'B' with lease_until in the past) never
-- matches a row whose lease_until is NULL.
ALTER TABLE instances
    ADD COLUMN parked_on uuid,
    -- On a subflow child: the parent to resume, or to tell about a fault, when
    -- the child ends (the correlation row lives in the parent's schema).
    ADD COLUMN parent_flow text,
    ADD COLUMN parent_instance_id uuid,
    ADD COLUMN parent_correlation_id uuid;
