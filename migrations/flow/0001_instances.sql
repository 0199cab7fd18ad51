-- Tables of one workflow's schema. No foreign keys leave the schema, so a flow
-- schema can move on its own (Citus schema-based sharding stays possible).
CREATE TABLE instances (
    id                uuid PRIMARY KEY,
    key               text,
    flow_version      text NOT NULL,
    -- A active, B busy, C completed, F faulted, P passive (vNext codes).
    status            "char" NOT NULL DEFAULT 'A' CHECK (status IN ('A', 'B', 'C', 'F', 'P')),
    current_state     text NOT NULL,
    data              jsonb NOT NULL DEFAULT '{}',
    data_version      text NOT NULL,
    data_version_no   bigint NOT NULL,
    etag              text NOT NULL,
    tags              text[] NOT NULL DEFAULT '{}',
    -- Lease held while a transition runs external I/O outside a transaction.
    lease_token       uuid,
    lease_until       timestamptz,
    lease_transition  text,
    lease_job_id      uuid,
    has_incident      boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now(),
    modified_at       timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    CONSTRAINT instances_key_unique UNIQUE (key)
);
CREATE INDEX instances_by_state ON instances (current_state, status);
CREATE INDEX instances_by_created ON instances (created_at DESC, id);
CREATE INDEX instances_leased ON instances (lease_until) WHERE status = 'B';

-- Transition history. A row also carries the data snapshot when the hop changed
-- data, which makes every past data version readable.
CREATE TABLE transitions (
    id               uuid PRIMARY KEY,
    instance_id      uuid NOT NULL,
    seq              bigint NOT NULL,
    transition_key   text NOT NULL,
    from_state       text,
    to_state         text NOT NULL,
    trigger_type     smallint NOT NULL,
    -- What caused it: api, auto, timer, timeout, async, retry.
    origin           text NOT NULL,
    body             jsonb,
    headers          jsonb,
    actor            text,
    data_version     text,
    data_version_no  bigint,
    data             jsonb,
    started_at       timestamptz NOT NULL,
    finished_at      timestamptz NOT NULL,
    duration_ms      double precision NOT NULL,
    CONSTRAINT transitions_seq_unique UNIQUE (instance_id, seq)
);
CREATE INDEX transitions_data_versions ON transitions (instance_id, data_version_no)
    WHERE data IS NOT NULL;

-- One row per task execution (each attempt).
CREATE TABLE task_runs (
    id             uuid PRIMARY KEY,
    instance_id    uuid NOT NULL,
    transition_id  uuid,
    task_key       text NOT NULL,
    task_version   text NOT NULL,
    task_type      text NOT NULL,
    -- execution, exit or entry
    phase          text NOT NULL,
    task_order     integer NOT NULL,
    attempt        integer NOT NULL DEFAULT 1,
    status         text NOT NULL CHECK (status IN ('succeeded', 'failed')),
    request        jsonb,
    response       jsonb,
    error          jsonb,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz NOT NULL,
    duration_ms    double precision NOT NULL
);
CREATE INDEX task_runs_by_instance ON task_runs (instance_id, started_at);

-- Parent/child links of subflows and subprocesses.
CREATE TABLE correlations (
    id                 uuid PRIMARY KEY,
    parent_instance_id uuid NOT NULL,
    parent_state       text NOT NULL,
    child_domain       text NOT NULL,
    child_flow         text NOT NULL,
    child_instance_id  uuid NOT NULL UNIQUE,
    kind               "char" NOT NULL CHECK (kind IN ('S', 'P')),
    completed          boolean NOT NULL DEFAULT false,
    outcome            text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    completed_at       timestamptz
);
CREATE INDEX correlations_open ON correlations (parent_instance_id) WHERE NOT completed;

-- What went wrong: one row per failure that stopped or diverted an instance.
CREATE TABLE incidents (
    id              uuid PRIMARY KEY,
    instance_id     uuid NOT NULL,
    state           text,
    transition_key  text,
    task_key        text,
    error_code      text NOT NULL,
    message         text NOT NULL,
    status_code     integer,
    boundary_action text,
    retry_count     integer NOT NULL DEFAULT 0,
    resolved        boolean NOT NULL DEFAULT false,
    resolved_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incidents_by_instance ON incidents (instance_id, created_at DESC);
