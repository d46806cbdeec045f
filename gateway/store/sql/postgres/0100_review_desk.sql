-- The operator review desk: operators, API keys, UI logins, queue items with claims and policies,
-- four-eyes approvals, idempotent decisions and the hash-chained audit trail.
-- Times are integer microseconds since the Unix epoch (UTC), like 0001_init.

CREATE TABLE operators (
    name          TEXT PRIMARY KEY,
    roles         TEXT NOT NULL,
    password_hash TEXT,
    created_at    BIGINT NOT NULL,
    disabled_at   BIGINT
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    operator      TEXT NOT NULL REFERENCES operators (name),
    prefix        TEXT NOT NULL,
    secret_sha256 BYTEA NOT NULL,
    scopes        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX api_keys_operator ON api_keys (operator);

CREATE TABLE ui_sessions (
    id_sha256    BYTEA PRIMARY KEY,
    operator     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX ui_sessions_operator ON ui_sessions (operator);

CREATE TABLE review_items (
    review_id        TEXT PRIMARY KEY REFERENCES reviews (id),
    priority         BIGINT NOT NULL DEFAULT 0,
    escalated_to     TEXT,
    approvals_needed BIGINT NOT NULL DEFAULT 0,
    sla_state        TEXT NOT NULL DEFAULT 'ok',
    claim_due_at     BIGINT,
    decide_due_at    BIGINT,
    expires_at       BIGINT,
    first_claimed_at BIGINT,
    claimed_by       TEXT,
    claimed_at       BIGINT,
    claim_expires_at BIGINT,
    proposal         BYTEA,
    proposal_digest  TEXT,
    proposed_by      TEXT,
    proposed_claimer TEXT,
    proposed_at      BIGINT,
    version          BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX review_items_urgency ON review_items (priority DESC, decide_due_at, review_id);
CREATE INDEX review_items_claimed ON review_items (claimed_by, claim_expires_at);
CREATE INDEX review_items_sla ON review_items (sla_state);
CREATE INDEX reviews_flow_state ON reviews (flow, state, id);

CREATE TABLE review_approvals (
    review_id       TEXT NOT NULL REFERENCES reviews (id),
    operator        TEXT NOT NULL,
    proposal_digest TEXT NOT NULL,
    at              BIGINT NOT NULL,
    PRIMARY KEY (review_id, operator, proposal_digest)
);

CREATE TABLE review_requests (
    review_id   TEXT NOT NULL,
    key         TEXT NOT NULL,
    operator    TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    response    TEXT NOT NULL,
    status      BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    PRIMARY KEY (review_id, key)
);

CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY,
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    object     TEXT NOT NULL,
    details    TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX audit_log_object ON audit_log (object, seq);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()
