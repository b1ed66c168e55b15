-- SCIM 2.0 provisioning (RFC 7643/7644): the users and groups an IdP (Okta, Entra ID, …) pushes,
-- their memberships, and the bearer token SCIM clients present (stored as a SHA-256 hash).
--
-- The columns are what agentnet queries and enforces (uniqueness, lookups, the data plane's
-- directory); `resource` is the whole last-written SCIM resource, so attributes agentnet does
-- not interpret (enterprise extension, custom ones) round-trip. It never holds a password.
-- Lists are in insertion order (rowid), which keeps SCIM pagination stable.

CREATE TABLE scim_users (
    id             TEXT PRIMARY KEY NOT NULL,  -- server-generated UUID
    user_name      TEXT NOT NULL,
    user_name_key  TEXT NOT NULL UNIQUE,       -- lowercased userName: unique case-insensitively
    external_id    TEXT,
    display_name   TEXT,
    given_name     TEXT,
    family_name    TEXT,
    emails         TEXT NOT NULL,              -- JSON array of addresses, primary first
    active         INTEGER NOT NULL,
    resource       TEXT NOT NULL,              -- JSON object: the SCIM resource as last written
    created_at_ms  INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL,
    version        INTEGER NOT NULL            -- bumped by every write (meta.version)
);
CREATE INDEX scim_users_external_id ON scim_users (external_id);

CREATE TABLE scim_groups (
    id               TEXT PRIMARY KEY NOT NULL,
    display_name     TEXT NOT NULL,
    display_name_key TEXT NOT NULL UNIQUE,     -- lowercased displayName
    external_id      TEXT,
    resource         TEXT NOT NULL,            -- JSON object, without `members`
    created_at_ms    INTEGER NOT NULL,
    updated_at_ms    INTEGER NOT NULL,
    version          INTEGER NOT NULL
);
CREATE INDEX scim_groups_external_id ON scim_groups (external_id);

CREATE TABLE scim_memberships (
    group_id TEXT NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES scim_users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;
CREATE INDEX scim_memberships_user ON scim_memberships (user_id, group_id);

-- At most one row: creating a token deletes the previous one. No row: SCIM is off.
CREATE TABLE scim_tokens (
    token_hash    BLOB PRIMARY KEY NOT NULL,   -- SHA-256 of the secret
    created_at_ms INTEGER NOT NULL
);
