-- Durable jobs of a domain: timers, workflow timeouts, async transitions,
-- retries and lease recovery. Claimed with FOR UPDATE SKIP LOCKED.
CREATE TABLE jobs (
    id              uuid PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('timer', 'timeout', 'async', 'retry', 'lease')),
    flow            text NOT NULL,
    instance_id     uuid NOT NULL,
    transition_key  text NOT NULL,
    -- The state the job was armed for; a job whose instance has left it is stale.
    armed_state     text,
    body            jsonb,
    due_at          timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'running', 'done', 'cancelled', 'failed')),
    locked_by       text,
    locked_until    timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX jobs_due ON jobs (due_at) WHERE status = 'pending';
CREATE INDEX jobs_running ON jobs (locked_until) WHERE status = 'running';
CREATE INDEX jobs_by_instance ON jobs (flow, instance_id) WHERE status IN ('pending', 'running');

-- Instance events, written in the transaction that caused them.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    flow          text NOT NULL,
    instance_id   uuid NOT NULL,
    event_type    text NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
