-- cloudbill schema, PostgreSQL flavour. Amounts are NUMERIC (exact, scale kept as sent);
-- dates are DATE; ids are UUID; times are TIMESTAMPTZ.
CREATE TABLE domains (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    billing_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE providers (
    domain_id UUID NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (domain_id, kind)
);

CREATE TABLE project_groups (
    id UUID PRIMARY KEY,
    domain_id UUID NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    parent_id UUID REFERENCES project_groups(id),
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE projects (
    id UUID PRIMARY KEY,
    domain_id UUID NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    group_id UUID REFERENCES project_groups(id),
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE service_accounts (
    id UUID PRIMARY KEY,
    domain_id UUID NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    provider TEXT NOT NULL,
    -- XChaCha20-Poly1305 sealed credentials (nonce || ciphertext); NULL for the file provider.
    credentials BYTEA,
    state TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE account_assignments (
    account_id UUID NOT NULL REFERENCES service_accounts(id) ON DELETE CASCADE,
    -- NULL: since the beginning (the first assignment).
    effective_from DATE,
    project_id UUID NOT NULL REFERENCES projects(id)
);
CREATE INDEX account_assignments_account ON account_assignments (account_id);

CREATE TABLE cost_records (
    domain_id UUID NOT NULL,
    account_id UUID NOT NULL REFERENCES service_accounts(id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    cloud_account TEXT NOT NULL,
    usage_date DATE NOT NULL,
    region TEXT NOT NULL,
    service TEXT NOT NULL,
    usage_type TEXT NOT NULL,
    instance_type TEXT,
    usage_quantity NUMERIC NOT NULL,
    cost NUMERIC NOT NULL,
    currency TEXT NOT NULL,
    effective_cost NUMERIC,
    list_cost NUMERIC,
    charge_category TEXT NOT NULL,
    tags TEXT NOT NULL
);
CREATE INDEX cost_records_account_date ON cost_records (account_id, usage_date);
CREATE INDEX cost_records_domain_date ON cost_records (domain_id, usage_date);

CREATE TABLE sync_jobs (
    id UUID PRIMARY KEY,
    domain_id UUID NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    account_id UUID NOT NULL REFERENCES service_accounts(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    window_start DATE NOT NULL,
    window_end DATE NOT NULL,
    state TEXT NOT NULL,
    rows_written BIGINT NOT NULL,
    changed_days TEXT NOT NULL,
    error TEXT,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ
);
CREATE INDEX sync_jobs_account ON sync_jobs (account_id, started_at);

CREATE TABLE sync_leases (
    account_id UUID PRIMARY KEY REFERENCES service_accounts(id) ON DELETE CASCADE,
    holder TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
