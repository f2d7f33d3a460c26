-- Closed billing months, their close/reopen log, and the restatements held off them.
CREATE TABLE closed_periods (
    domain_id UUID NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    month DATE NOT NULL,
    closed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (domain_id, month)
);

CREATE TABLE period_log (
    domain_id UUID NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    month DATE NOT NULL,
    action TEXT NOT NULL,
    reason TEXT,
    at TIMESTAMPTZ NOT NULL
);
CREATE INDEX period_log_month ON period_log (domain_id, month, at);

CREATE TABLE held_days (
    domain_id UUID NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    job_id UUID NOT NULL,
    account_id UUID NOT NULL REFERENCES service_accounts(id) ON DELETE CASCADE,
    day DATE NOT NULL,
    currency TEXT NOT NULL,
    old_total TEXT NOT NULL,
    new_total TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX held_days_day ON held_days (domain_id, day);
