-- Shared-cost allocation rules, as their versions: every change (create, update, delete)
-- adds one with the day it applies from and who made it when.
CREATE TABLE allocation_versions (
    rule_id BLOB NOT NULL,
    domain_id BLOB NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    start_day TEXT NOT NULL,
    spec TEXT NOT NULL,
    deleted BOOLEAN NOT NULL,
    changed_by TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    PRIMARY KEY (rule_id, version)
);
CREATE INDEX allocation_versions_domain ON allocation_versions (domain_id, name);
