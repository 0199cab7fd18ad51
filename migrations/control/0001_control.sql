-- The control database: which domains exist, where they live, and what every
-- migration rollout did. Applied with search_path = vnext_control.
CREATE TABLE domains (
    domain       text PRIMARY KEY,
    database     text NOT NULL UNIQUE,
    -- NULL: the domain lives on the control database's server.
    server_url   text,
    status       text NOT NULL DEFAULT 'active' CHECK (status IN ('provisioning', 'active', 'failed')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE rollouts (
    id            bigserial PRIMARY KEY,
    domain        text NOT NULL,
    schema_name   text NOT NULL,
    version       bigint NOT NULL,
    name          text NOT NULL,
    status        text NOT NULL CHECK (status IN ('applied', 'failed')),
    error         text,
    duration_ms   double precision,
    finished_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rollouts_by_schema ON rollouts (domain, schema_name, finished_at DESC);
