-- Foundation: settings changed in the UI, and the audit trail of who changed what.
-- Timestamps are Unix milliseconds (UTC) everywhere.

CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,               -- JSON
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,                  -- "admin:alice", "api-key:ci", "system"
    action  TEXT NOT NULL,                  -- "server.create", "login.failed", ...
    target  TEXT,                           -- what it acted on, e.g. "server:3"
    details TEXT,                           -- JSON, never secrets
    ip      TEXT                            -- client address (from trusted proxies only)
) STRICT;

CREATE INDEX audit_log_at ON audit_log (at DESC);
CREATE INDEX audit_log_action_at ON audit_log (action, at DESC);
