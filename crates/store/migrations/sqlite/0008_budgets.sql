-- Budgets, notification channels, and the notification outbox: events and their deliveries.
-- (next_attempt_ms: milliseconds since the epoch, compared as numbers on both databases.)
-- A budget is kept as its JSON definition; a channel's secret (webhook signing secret, Slack
-- URL, SMTP password) is sealed like account credentials.
CREATE TABLE channels (
    id BLOB PRIMARY KEY,
    domain_id BLOB NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    settings TEXT NOT NULL,
    secret BLOB,
    created_at TEXT NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE budgets (
    id BLOB PRIMARY KEY,
    domain_id BLOB NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    project_id BLOB,
    definition TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (domain_id, name)
);

-- A threshold fired for a period (at most once until cleared).
CREATE TABLE budget_thresholds (
    budget_id BLOB NOT NULL REFERENCES budgets(id) ON DELETE CASCADE,
    notification INTEGER NOT NULL,
    period_start TEXT NOT NULL,
    fired_at TEXT NOT NULL,
    PRIMARY KEY (budget_id, notification, period_start)
);

CREATE TABLE events (
    id BLOB PRIMARY KEY,
    domain_id BLOB NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    subject BLOB NOT NULL,
    subject_name TEXT NOT NULL,
    cause TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX events_subject ON events (domain_id, subject, occurred_at);

-- The outbox: one row per (event, channel), written with its event.
CREATE TABLE deliveries (
    id BLOB PRIMARY KEY,
    domain_id BLOB NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    event_id BLOB NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    channel_id BLOB NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    last_error TEXT,
    created_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_ms);
CREATE INDEX deliveries_domain ON deliveries (domain_id, created_at);
