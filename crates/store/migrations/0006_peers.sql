-- Overlay peers (WireGuard): a device or agent's public key, bound to its owner (a person or an
-- agent), with the one overlay address it holds. Private keys never reach the server.
--
-- A live peer's key and address are unique; a revoked peer keeps its row (for the record) and
-- frees both, hence partial unique indexes.

CREATE TABLE peers (
    id                TEXT PRIMARY KEY NOT NULL,  -- ULID
    name              TEXT NOT NULL,              -- device label, e.g. a hostname
    owner_kind        TEXT NOT NULL CHECK (owner_kind IN ('user', 'agent')),
    owner             TEXT NOT NULL,              -- a person's email, an agent's name
    owner_key         TEXT NOT NULL,              -- lowercased owner
    public_key        TEXT NOT NULL,              -- base64 WireGuard public key
    address           TEXT NOT NULL,              -- IPv4 overlay address (a /32)
    created_at_ms     INTEGER NOT NULL,
    expires_at_ms     INTEGER NOT NULL,           -- the peer's sign-in ends: a fresh login is needed
    revoked_at_ms     INTEGER,
    revoked_reason    TEXT,
    last_handshake_ms INTEGER,
    rx_bytes          INTEGER NOT NULL DEFAULT 0,
    tx_bytes          INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX peers_live_public_key ON peers (public_key) WHERE revoked_at_ms IS NULL;
CREATE UNIQUE INDEX peers_live_address ON peers (address) WHERE revoked_at_ms IS NULL;
CREATE INDEX peers_owner ON peers (owner_key, owner_kind);
