-- The audit log: every admin change, sign-in, SCIM change and enrollment, with who did it, when,
-- and the record before and after (JSON; NULL before a create and after a delete). Secrets never
-- appear in it: a provider is recorded with its key's fingerprint only.

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms       INTEGER NOT NULL,
    actor_kind  TEXT NOT NULL
                CHECK (actor_kind IN ('admin-socket', 'admin', 'scim', 'user', 'agent', 'system')),
    actor       TEXT NOT NULL,      -- e.g. 'uid:0', an admin's email, 'scim'
    action      TEXT NOT NULL,      -- e.g. 'provider.create', 'provider.key.set', 'scim.user.update'
    target_kind TEXT NOT NULL,      -- e.g. 'provider', 'group', 'user'
    target      TEXT NOT NULL,      -- the record's name or id
    before      TEXT,               -- JSON: the record as the API showed it; NULL on create
    after       TEXT,               -- JSON: the record as the API shows it; NULL on delete
    request_id  TEXT
);
CREATE INDEX audit_log_at ON audit_log (at_ms);
CREATE INDEX audit_log_target ON audit_log (target, at_ms);
