-- Anomaly monitors (their JSON definition) and the anomalies they keep (JSON body; the state
-- column is authoritative; version is the compare-and-set of every write).
CREATE TABLE anomaly_monitors (
    id BLOB PRIMARY KEY,
    domain_id BLOB NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE anomalies (
    monitor_id BLOB NOT NULL REFERENCES anomaly_monitors(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    domain_id BLOB NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (monitor_id, id)
);
CREATE INDEX anomalies_domain ON anomalies (domain_id, state);
