-- Exchange rates per domain: on date, one base is worth rate quote (an exact decimal, kept as
-- text). One rate per (date, base, quote, source): a fixed set is a source of its own.
CREATE TABLE fx_rates (
    domain_id UUID NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    day DATE NOT NULL,
    base TEXT NOT NULL,
    quote TEXT NOT NULL,
    source TEXT NOT NULL,
    rate TEXT NOT NULL,
    PRIMARY KEY (domain_id, base, quote, source, day)
);
