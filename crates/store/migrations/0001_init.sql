-- Initial schema: providers (with encrypted keys), groups, agents, policies, usage records and
-- the keys that sign identity assertions.

CREATE TABLE providers (
    name            TEXT PRIMARY KEY NOT NULL,
    spec            TEXT NOT NULL,      -- JSON: kind, base_url, apis, models, prices, stamping
    key_ciphertext  BLOB,               -- AEAD under the master key, bound to the provider name
    key_fingerprint TEXT,               -- last 4 characters of the key, for operators
    managed_by      TEXT NOT NULL,      -- 'config' or 'api'
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);

CREATE TABLE groups (
    name          TEXT PRIMARY KEY NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    managed_by    TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

CREATE TABLE agents (
    name          TEXT PRIMARY KEY NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    groups        TEXT NOT NULL,        -- JSON array of group names
    managed_by    TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

CREATE TABLE policies (
    name          TEXT PRIMARY KEY NOT NULL,
    spec          TEXT NOT NULL,        -- JSON: sources, providers, models
    managed_by    TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

CREATE TABLE usage_records (
    id                    TEXT PRIMARY KEY NOT NULL,
    at_ms                 INTEGER NOT NULL,
    principal_kind        TEXT,
    principal             TEXT,
    subject               TEXT,
    groups                TEXT NOT NULL, -- JSON array: the caller's groups at request time
    policy                TEXT,
    provider              TEXT,
    api                   TEXT NOT NULL,
    endpoint              TEXT NOT NULL,
    model                 TEXT,
    stream                INTEGER NOT NULL,
    status                INTEGER NOT NULL,
    reason                TEXT NOT NULL,
    latency_ms            INTEGER NOT NULL,
    ttfb_ms               INTEGER,
    input_tokens          INTEGER NOT NULL,
    output_tokens         INTEGER NOT NULL,
    cache_creation_tokens INTEGER NOT NULL,
    cache_read_tokens     INTEGER NOT NULL,
    reasoning_tokens      INTEGER NOT NULL,
    cost_micro_usd        INTEGER,       -- NULL: the model has no known price
    usage_reported        INTEGER NOT NULL, -- 0: the upstream never reported usage
    session_id            TEXT
);
CREATE INDEX usage_records_at ON usage_records (at_ms);
CREATE INDEX usage_records_principal_at ON usage_records (principal, at_ms);

CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY NOT NULL,
    alg            TEXT NOT NULL,
    private_ciphertext BLOB NOT NULL,   -- PKCS#8, AEAD under the master key
    public_key     BLOB NOT NULL,
    created_at_ms  INTEGER NOT NULL
);
