-- The control audit log: key management (admin API and `vnext keys`), and
-- mutating API calls that name no provisioned domain (a publish refused before
-- its domain exists, a start in an unknown domain), or whose domain's own
-- log (`sys_audit.audit_log`) could not be written. Same columns and the same
-- append-only rules as the domain log. Applied with search_path = vnext_control.
CREATE TABLE audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL,
    caller       text NOT NULL,
    key_id       uuid,
    roles        text[] NOT NULL DEFAULT '{}',
    action       text NOT NULL,
    method       text NOT NULL,
    route        text NOT NULL,
    domain       text,
    target       jsonb NOT NULL DEFAULT '{}',
    status       smallint NOT NULL,
    outcome      text NOT NULL,
    trace_id     text,
    duration_ms  double precision
);
CREATE INDEX audit_log_by_time ON audit_log (at);
CREATE INDEX audit_log_by_domain ON audit_log (domain, id) WHERE domain IS NOT NULL;

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
