-- What each data version changed, so a warm engine replaces only those slices instead of
-- reloading the domain: one row per (account, month) a window replace rewrote, (account, no
-- month) for every month of a deleted account, and (no account, no month) for a catalog
-- change (accounts, projects, groups, assignments). Kept for the last versions only;
-- data_versions.log_from is the oldest version whose changes are all still here.
CREATE TABLE data_changes (
    domain_id BLOB NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    account_id BLOB,
    month TEXT
);
CREATE INDEX data_changes_by_version ON data_changes (domain_id, version);
ALTER TABLE data_versions ADD COLUMN log_from BIGINT NOT NULL DEFAULT 1;
-- Versions before this migration were not logged.
UPDATE data_versions SET log_from = version + 1;
