-- A peer is bound to the session that registered it (`agentnet peer config`, `agentnet up`):
-- the data plane names the tunnel's caller by that session's subject and groups, and revoking
-- the session (sign-out, admin, deactivation) revokes its peers in the same transaction.
-- NULL for peers registered before this migration: they are never live on the overlay.

ALTER TABLE peers ADD COLUMN session_id TEXT;
CREATE INDEX peers_session ON peers (session_id);

-- Where the peer's packets last came from (ip:port), as the endpoint saw it: after a restart the
-- server starts the handshake itself, so a peer recovers at once instead of at its next
-- handshake timeout.
ALTER TABLE peers ADD COLUMN last_endpoint TEXT;

-- When the server last re-checked a session that holds live peers with its source (IdP refresh
-- grant, local account, agent record): a tunnel has no token to expire, so the server does what
-- a refreshing client would. Kept apart from refreshed_at_ms, which refresh-token reuse
-- detection reads.
ALTER TABLE sessions ADD COLUMN rechecked_at_ms INTEGER;
