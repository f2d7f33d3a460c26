-- Anomaly monitors (their JSON definition) and the anomalies they keep (JSON body; the state
-- column is authoritative; version is the compare-and-set of every write).
CREATE TABLE anomaly_monitors (
    id UUID PRIMARY KEY,
    domain_id UUID NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE anomalies (
    monitor_id UUID NOT NULL REFERENCES anomaly_monitors(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    domain_id UUID NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    version BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (monitor_id, id)
);
CREATE INDEX anomalies_domain ON anomalies (domain_id, state);
