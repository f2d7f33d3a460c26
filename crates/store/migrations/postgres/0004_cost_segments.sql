-- Cost records are kept only as columnar segments (cloudbill-core's lossless partition codec):
-- one or more blobs per (account, month), written and replaced in one transaction. A big
-- import spills a month into several segments (seq) to keep its memory bounded.
-- The row table is renamed, not dropped: the store converts its rows into segments the first
-- time it opens (then empties it). The old partitions were derived from those rows.
ALTER TABLE cost_records RENAME TO legacy_cost_records;
DROP TABLE cost_partitions;
CREATE TABLE cost_segments (
    account_id UUID NOT NULL REFERENCES service_accounts(id) ON DELETE CASCADE,
    domain_id UUID NOT NULL,
    month DATE NOT NULL,
    seq BIGINT NOT NULL,
    rows_count BIGINT NOT NULL,
    payload BYTEA NOT NULL,
    PRIMARY KEY (account_id, month, seq)
);
CREATE INDEX cost_segments_domain_month ON cost_segments (domain_id, month);
-- Segments are already compact; pglz compression would only cost time on every write and read.
ALTER TABLE cost_segments ALTER COLUMN payload SET STORAGE EXTERNAL;
