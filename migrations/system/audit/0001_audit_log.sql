-- The domain's audit log: one row per mutating API call (start, transition,
-- retry, publish), refused and failed calls included. Append-only: UPDATE,
-- DELETE and TRUNCATE are refused by triggers whoever runs them, and the
-- owner (the domain's role, which the runtime connects as) gives up those
-- privileges too. Rows name who, what and the outcome, never a body or a
-- credential. Applied with search_path = sys_audit.
CREATE TABLE audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL,
    -- `key:<id>`, `jwt:<subject>`, `header:<subject>`, `open` or `anonymous`.
    caller       text NOT NULL,
    key_id       uuid,
    roles        text[] NOT NULL DEFAULT '{}',
    action       text NOT NULL,
    method       text NOT NULL,
    route        text NOT NULL,
    domain       text,
    -- Identifiers of what the call was about (workflow, instance, transition,
    -- component, key id); never payload.
    target       jsonb NOT NULL DEFAULT '{}',
    status       smallint NOT NULL,
    -- `ok`, or the answer's errorCode.
    outcome      text NOT NULL,
    trace_id     text,
    duration_ms  double precision
);
CREATE INDEX audit_log_by_time ON audit_log (at);

CREATE FUNCTION refuse_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % is refused', TG_OP USING ERRCODE = '42501';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_audit_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_change();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC, CURRENT_USER;
