-- API tokens. Only the SHA-256 of a token is stored.
CREATE TABLE api_tokens (
    id UUID PRIMARY KEY,
    domain_id UUID NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    token_hash BYTEA NOT NULL UNIQUE,
    role TEXT NOT NULL,
    project_id UUID REFERENCES projects(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
