-- Columnar partitions: one (account, month) of cost records as one blob (cloudbill-core's
-- partition codec), kept in the same transaction as the rows, so reports load millions of
-- records without parsing rows. data_versions lets a warm engine know when to reload.
CREATE TABLE cost_partitions (
    account_id BLOB NOT NULL REFERENCES service_accounts(id) ON DELETE CASCADE,
    domain_id BLOB NOT NULL,
    month TEXT NOT NULL,
    rows_count BIGINT NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (account_id, month)
);
CREATE INDEX cost_partitions_domain_month ON cost_partitions (domain_id, month);

CREATE TABLE data_versions (
    domain_id BLOB PRIMARY KEY REFERENCES domains(id) ON DELETE CASCADE,
    version BIGINT NOT NULL
);
