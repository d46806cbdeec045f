-- Issue 14: each queue item's subject line (sealed like every payload column) and its blind search index:
-- keyed digests of the subject's words (gateway/store/blind.py), never the words themselves.
ALTER TABLE review_items ADD COLUMN subject BYTEA;

CREATE TABLE review_terms (
    review_id TEXT NOT NULL REFERENCES reviews (id),
    key_id    TEXT NOT NULL,
    digest    TEXT NOT NULL,
    PRIMARY KEY (digest, review_id)
);
CREATE INDEX review_terms_review ON review_terms (review_id);

-- Search by the id the source system gave its event (a CloudEvent id), besides the gateway's own ids.
CREATE INDEX events_ce_id ON events (ce_id);
