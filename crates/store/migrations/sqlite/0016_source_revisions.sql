-- What a connector's source held when each window of an account was last written (an
-- export's manifests, a table's last export time): a window whose source still shows the same
-- revision is not read again.
CREATE TABLE source_revisions (
    account_id BLOB NOT NULL REFERENCES service_accounts(id) ON DELETE CASCADE,
    window_start TEXT NOT NULL,
    window_end TEXT NOT NULL,
    revision TEXT NOT NULL,
    PRIMARY KEY (account_id, window_start, window_end)
);
