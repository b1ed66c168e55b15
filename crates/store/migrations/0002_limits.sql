-- Global limits: caps evaluated before policies, aimed at everyone, groups, users or agents.
-- Policy limits live in the policy spec JSON.

CREATE TABLE global_limits (
    name          TEXT PRIMARY KEY NOT NULL,
    spec          TEXT NOT NULL,        -- JSON: targets, metric, per, cap, window_secs
    managed_by    TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
