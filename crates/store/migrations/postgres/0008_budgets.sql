-- Budgets, notification channels, and the notification outbox: events and their deliveries.
-- (next_attempt_ms: milliseconds since the epoch, compared as numbers on both databases.)
-- A budget is kept as its JSON definition; a channel's secret (webhook signing secret, Slack
-- URL, SMTP password) is sealed like account credentials.
CREATE TABLE channels (
    id UUID PRIMARY KEY,
    domain_id UUID NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    settings TEXT NOT NULL,
    secret BYTEA,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE budgets (
    id UUID PRIMARY KEY,
    domain_id UUID NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    project_id UUID,
    definition TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (domain_id, name)
);

-- A threshold fired for a period (at most once until cleared).
CREATE TABLE budget_thresholds (
    budget_id UUID NOT NULL REFERENCES budgets(id) ON DELETE CASCADE,
    notification BIGINT NOT NULL,
    period_start DATE NOT NULL,
    fired_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (budget_id, notification, period_start)
);

CREATE TABLE events (
    id UUID PRIMARY KEY,
    domain_id UUID NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    subject UUID NOT NULL,
    subject_name TEXT NOT NULL,
    cause TEXT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX events_subject ON events (domain_id, subject, occurred_at);

-- The outbox: one row per (event, channel), written with its event.
CREATE TABLE deliveries (
    id UUID PRIMARY KEY,
    domain_id UUID NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    event_id UUID NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    channel_id UUID NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_ms);
CREATE INDEX deliveries_domain ON deliveries (domain_id, created_at);
