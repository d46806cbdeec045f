-- Events, runs and their timeline, notifications, reviews, deliveries and the work queue.
-- Times are integer microseconds since the Unix epoch (UTC). JSON payload columns are BLOBs
-- written through the store's sealer, so they can be encrypted at rest.

CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    ce_source   TEXT NOT NULL,
    ce_id       TEXT NOT NULL,
    type        TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    body        BLOB,
    response    TEXT NOT NULL,
    UNIQUE (source, ce_source, ce_id)
);

CREATE TABLE runs (
    id              TEXT PRIMARY KEY,
    event_id        TEXT NOT NULL REFERENCES events (id),
    route           TEXT NOT NULL,
    flow            TEXT NOT NULL,
    provider        TEXT NOT NULL,
    template        TEXT NOT NULL,
    status          TEXT NOT NULL,
    provider_status TEXT,
    provider_run_id TEXT,
    idempotency_key TEXT NOT NULL UNIQUE,
    input           BLOB,
    output          BLOB,
    error           BLOB,
    pending         TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    last_news_at    INTEGER,
    version         INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX runs_provider_run ON runs (provider, provider_run_id) WHERE provider_run_id IS NOT NULL;
CREATE INDEX runs_status ON runs (status, id);
CREATE INDEX runs_flow ON runs (flow, id);
CREATE INDEX runs_event ON runs (event_id);

CREATE TABLE run_transitions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      TEXT NOT NULL REFERENCES runs (id),
    at          INTEGER NOT NULL,
    from_status TEXT,
    to_status   TEXT NOT NULL,
    cause       TEXT NOT NULL,
    detail      TEXT
);
CREATE INDEX run_transitions_run ON run_transitions (run_id, id);

CREATE TABLE notifications (
    provider        TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    provider_run_id TEXT NOT NULL,
    run_id          TEXT,
    status          TEXT,
    state_id        TEXT,
    event_type      TEXT,
    received_at     INTEGER NOT NULL,
    PRIMARY KEY (provider, message_id)
);
CREATE INDEX notifications_orphans ON notifications (provider, provider_run_id) WHERE run_id IS NULL;

CREATE TABLE reviews (
    id          TEXT PRIMARY KEY,
    run_id      TEXT NOT NULL REFERENCES runs (id),
    flow        TEXT NOT NULL,
    state       TEXT NOT NULL,
    request     TEXT NOT NULL,
    gathered    BLOB,
    decision    BLOB,
    decided_by  TEXT,
    decided_at  INTEGER,
    last_error  TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    version     INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX reviews_one_open ON reviews (run_id) WHERE state IN ('OPEN', 'DECIDED');
CREATE INDEX reviews_state ON reviews (state, id);
CREATE INDEX reviews_run ON reviews (run_id);

CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    run_id           TEXT NOT NULL REFERENCES runs (id),
    sink             TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    last_error       TEXT,
    last_status_code INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    delivered_at     INTEGER,
    UNIQUE (run_id, sink)
);
CREATE INDEX deliveries_state ON deliveries (state, id);
CREATE INDEX deliveries_sink ON deliveries (sink, id);

CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL,
    ref              TEXT NOT NULL,
    state            TEXT NOT NULL,
    due_at           INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    fence            INTEGER NOT NULL DEFAULT 0,
    rerun            INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    data             TEXT NOT NULL DEFAULT '{}',
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (kind, ref)
);
CREATE INDEX jobs_due ON jobs (due_at) WHERE state IN ('queued', 'running');
