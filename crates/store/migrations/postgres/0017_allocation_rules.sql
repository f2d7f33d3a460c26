-- Shared-cost allocation rules, as their versions: every change (create, update, delete)
-- adds one with the day it applies from and who made it when.
CREATE TABLE allocation_versions (
    rule_id UUID NOT NULL,
    domain_id UUID NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    name TEXT NOT NULL,
    start_day DATE NOT NULL,
    spec TEXT NOT NULL,
    deleted BOOLEAN NOT NULL,
    changed_by TEXT NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (rule_id, version)
);
CREATE INDEX allocation_versions_domain ON allocation_versions (domain_id, name);
