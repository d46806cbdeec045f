-- Operating the gateway (issue 13): the W3C traceparent an event arrived with, kept on the event and its runs so
-- every job of a run continues that trace; one row per delivery attempt (never a body); and the state of each
-- sink (failing since, disabled after 410 Gone or too many days of failures).
-- Times are integer microseconds since the Unix epoch (UTC), like 0001_init.

ALTER TABLE events ADD COLUMN traceparent TEXT;
ALTER TABLE runs ADD COLUMN traceparent TEXT;

CREATE TABLE delivery_attempts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id    TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt        INTEGER NOT NULL,
    at             INTEGER NOT NULL,
    duration_us    INTEGER NOT NULL,
    status_code    INTEGER,
    error          TEXT,
    response_bytes INTEGER
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, id);

CREATE TABLE sink_states (
    sink            TEXT PRIMARY KEY,
    failing_since   INTEGER,
    disabled_at     INTEGER,
    disabled_reason TEXT
);
