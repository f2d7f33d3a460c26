-- Provider invoices per (account, month, currency), amounts as exact decimal text.
CREATE TABLE invoices (
    domain_id BLOB NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    account_id BLOB NOT NULL REFERENCES service_accounts(id) ON DELETE CASCADE,
    period TEXT NOT NULL,
    currency TEXT NOT NULL,
    invoice_id TEXT NOT NULL,
    total TEXT NOT NULL,
    issuer TEXT,
    tax TEXT,
    PRIMARY KEY (domain_id, account_id, period, currency)
);
