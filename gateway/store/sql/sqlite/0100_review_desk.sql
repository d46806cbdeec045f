-- The operator review desk: operators, API keys, UI logins, queue items with claims and policies,
-- four-eyes approvals, idempotent decisions and the hash-chained audit trail.
-- Times are integer microseconds since the Unix epoch (UTC), like 0001_init.

CREATE TABLE operators (
    name          TEXT PRIMARY KEY,
    roles         TEXT NOT NULL,
    password_hash TEXT,
    created_at    INTEGER NOT NULL,
    disabled_at   INTEGER
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    operator      TEXT NOT NULL REFERENCES operators (name),
    prefix        TEXT NOT NULL,
    secret_sha256 BLOB NOT NULL,
    scopes        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);
CREATE INDEX api_keys_operator ON api_keys (operator);

CREATE TABLE ui_sessions (
    id_sha256    BLOB PRIMARY KEY,
    operator     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
CREATE INDEX ui_sessions_operator ON ui_sessions (operator);

CREATE TABLE review_items (
    review_id        TEXT PRIMARY KEY REFERENCES reviews (id),
    priority         INTEGER NOT NULL DEFAULT 0,
    escalated_to     TEXT,
    approvals_needed INTEGER NOT NULL DEFAULT 0,
    sla_state        TEXT NOT NULL DEFAULT 'ok',
    claim_due_at     INTEGER,
    decide_due_at    INTEGER,
    expires_at       INTEGER,
    first_claimed_at INTEGER,
    claimed_by       TEXT,
    claimed_at       INTEGER,
    claim_expires_at INTEGER,
    proposal         BLOB,
    proposal_digest  TEXT,
    proposed_by      TEXT,
    proposed_claimer TEXT,
    proposed_at      INTEGER,
    version          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX review_items_urgency ON review_items (priority DESC, decide_due_at, review_id);
CREATE INDEX review_items_claimed ON review_items (claimed_by, claim_expires_at);
CREATE INDEX review_items_sla ON review_items (sla_state);
CREATE INDEX reviews_flow_state ON reviews (flow, state, id);

CREATE TABLE review_approvals (
    review_id       TEXT NOT NULL REFERENCES reviews (id),
    operator        TEXT NOT NULL,
    proposal_digest TEXT NOT NULL,
    at              INTEGER NOT NULL,
    PRIMARY KEY (review_id, operator, proposal_digest)
);

CREATE TABLE review_requests (
    review_id   TEXT NOT NULL,
    key         TEXT NOT NULL,
    operator    TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    response    TEXT NOT NULL,
    status      INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (review_id, key)
);

CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    object     TEXT NOT NULL,
    details    TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX audit_log_object ON audit_log (object, seq);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END
