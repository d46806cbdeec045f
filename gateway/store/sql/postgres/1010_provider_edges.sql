-- Provider edge cases (issue 10): the pause point of a run is looked up in its own stored notifications, and a
-- start made of several calls (TransactionLink legacy cases) keeps the ids its finished calls returned, so a
-- retried start reuses them instead of creating them again.
CREATE INDEX notifications_run ON notifications (run_id, received_at);

CREATE TABLE start_progress (
    run_id     TEXT PRIMARY KEY REFERENCES runs (id),
    data       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
