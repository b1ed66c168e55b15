-- Sign-in state: local accounts (the embedded IdP, used when no external IdP is configured), the
-- sessions agentnet issues after a sign-in or an enrollment, and the setup keys agents enroll
-- with.
--
-- Bearer secrets are never stored: session tokens and setup keys are kept as SHA-256 digests
-- computed by the caller (UNIQUE, so a lookup finds one row), passwords as argon2 PHC strings,
-- and an IdP refresh token as AEAD ciphertext under the master key, bound to its session id.
-- Name lists (groups) are JSON arrays, sorted and without duplicates.

CREATE TABLE local_users (
    username      TEXT PRIMARY KEY NOT NULL,   -- lowercased login name
    email         TEXT NOT NULL,               -- as written
    email_key     TEXT NOT NULL UNIQUE,        -- lowercased email: unique case-insensitively
    display_name  TEXT,
    groups        TEXT NOT NULL,               -- JSON array of group names
    active        INTEGER NOT NULL,
    password_hash TEXT NOT NULL,               -- argon2 PHC string; opaque to the store
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

CREATE TABLE sessions (
    id                     TEXT PRIMARY KEY NOT NULL,  -- caller-generated ULID
    kind                   TEXT NOT NULL CHECK (kind IN ('user', 'agent')),
    subject                TEXT NOT NULL,
    name                   TEXT NOT NULL,              -- a person's email, an agent's name
    name_key               TEXT NOT NULL,              -- lowercased name
    groups                 TEXT NOT NULL,              -- JSON array, as of the last (re)issue
    source                 TEXT NOT NULL CHECK (source IN ('oidc', 'local', 'setup_key')),
    client                 TEXT,                       -- device label, e.g. a hostname
    access_digest          BLOB NOT NULL UNIQUE,       -- SHA-256 of the access token
    refresh_digest         BLOB NOT NULL UNIQUE,       -- SHA-256 of the refresh token
    previous_refresh_digest BLOB,                      -- the refresh token rotated out last:
                                                       -- presented again, it betrays a copy
    idp_refresh_ciphertext BLOB,                       -- AEAD, bound to 'session:<id>'
    created_at_ms          INTEGER NOT NULL,
    refreshed_at_ms        INTEGER NOT NULL,
    access_expires_at_ms   INTEGER NOT NULL,
    refresh_expires_at_ms  INTEGER NOT NULL,
    expires_at_ms          INTEGER NOT NULL,           -- absolute end: refresh never passes it
    revoked_at_ms          INTEGER,
    revoked_reason         TEXT
);
CREATE INDEX sessions_name ON sessions (name_key, kind);
CREATE INDEX sessions_created ON sessions (created_at_ms);
CREATE INDEX sessions_previous_refresh ON sessions (previous_refresh_digest);

CREATE TABLE setup_keys (
    name            TEXT PRIMARY KEY NOT NULL,
    prefix          TEXT NOT NULL,              -- the key's first 16 characters, for display
    key_digest      BLOB NOT NULL UNIQUE,       -- SHA-256 of the key
    agent           TEXT,                       -- enrolls as this existing agent
    auto_groups     TEXT NOT NULL,              -- JSON array: groups of an agent it creates
    max_uses        INTEGER NOT NULL,           -- 1: one-time
    uses            INTEGER NOT NULL,
    expires_at_ms   INTEGER NOT NULL,
    revoked_at_ms   INTEGER,
    created_at_ms   INTEGER NOT NULL,
    created_by      TEXT NOT NULL,
    last_used_at_ms INTEGER
);
