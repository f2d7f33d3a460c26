-- cloudbill schema, SQLite flavour. Amounts are TEXT holding exact decimals (SQLite has no
-- exact numeric type); dates are TEXT 'YYYY-MM-DD'; ids are UUID blobs.
CREATE TABLE domains (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    billing_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TEXT NOT NULL
);

CREATE TABLE providers (
    domain_id BLOB NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (domain_id, kind)
);

CREATE TABLE project_groups (
    id BLOB PRIMARY KEY,
    domain_id BLOB NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    parent_id BLOB REFERENCES project_groups(id),
    created_at TEXT NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE projects (
    id BLOB PRIMARY KEY,
    domain_id BLOB NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    group_id BLOB REFERENCES project_groups(id),
    created_at TEXT NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE service_accounts (
    id BLOB PRIMARY KEY,
    domain_id BLOB NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    provider TEXT NOT NULL,
    -- XChaCha20-Poly1305 sealed credentials (nonce || ciphertext); NULL for the file provider.
    credentials BLOB,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE account_assignments (
    account_id BLOB NOT NULL REFERENCES service_accounts(id) ON DELETE CASCADE,
    -- NULL: since the beginning (the first assignment).
    effective_from TEXT,
    project_id BLOB NOT NULL REFERENCES projects(id)
);
CREATE INDEX account_assignments_account ON account_assignments (account_id);

CREATE TABLE cost_records (
    domain_id BLOB NOT NULL,
    account_id BLOB NOT NULL REFERENCES service_accounts(id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    cloud_account TEXT NOT NULL,
    usage_date TEXT NOT NULL,
    region TEXT NOT NULL,
    service TEXT NOT NULL,
    usage_type TEXT NOT NULL,
    instance_type TEXT,
    usage_quantity TEXT NOT NULL,
    cost TEXT NOT NULL,
    currency TEXT NOT NULL,
    effective_cost TEXT,
    list_cost TEXT,
    charge_category TEXT NOT NULL,
    tags TEXT NOT NULL
);
CREATE INDEX cost_records_account_date ON cost_records (account_id, usage_date);
CREATE INDEX cost_records_domain_date ON cost_records (domain_id, usage_date);

CREATE TABLE sync_jobs (
    id BLOB PRIMARY KEY,
    domain_id BLOB NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    account_id BLOB NOT NULL REFERENCES service_accounts(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    window_start TEXT NOT NULL,
    window_end TEXT NOT NULL,
    state TEXT NOT NULL,
    rows_written BIGINT NOT NULL,
    changed_days TEXT NOT NULL,
    error TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX sync_jobs_account ON sync_jobs (account_id, started_at);

CREATE TABLE sync_leases (
    account_id BLOB PRIMARY KEY REFERENCES service_accounts(id) ON DELETE CASCADE,
    holder TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
