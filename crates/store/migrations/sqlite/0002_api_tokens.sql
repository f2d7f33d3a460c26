-- API tokens. Only the SHA-256 of a token is stored.
CREATE TABLE api_tokens (
    id BLOB PRIMARY KEY,
    domain_id BLOB NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    role TEXT NOT NULL,
    project_id BLOB REFERENCES projects(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
