-- Library maintenance: rules that propose what to delete, the candidates they found,
-- items kept out of them, every deletion with each step's outcome, and the Radarr, Sonarr
-- and Seerr instances a deletion cascades to.

CREATE TABLE maintenance_rules (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL,
    enabled        INTEGER NOT NULL DEFAULT 1,
    match          TEXT NOT NULL CHECK (match IN ('all', 'any')),
    criteria       TEXT NOT NULL,             -- JSON: [{"type": ..., "params": {...}}]
    cascade_radarr INTEGER NOT NULL DEFAULT 0,
    cascade_sonarr INTEGER NOT NULL DEFAULT 0,
    cascade_seerr  INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    evaluated_at   INTEGER                    -- the last evaluation
) STRICT;

CREATE UNIQUE INDEX maintenance_rules_name ON maintenance_rules (name COLLATE NOCASE);

-- The libraries a rule looks at (a library the server removed leaves its rules).
CREATE TABLE maintenance_rule_libraries (
    rule_id    INTEGER NOT NULL REFERENCES maintenance_rules (id) ON DELETE CASCADE,
    library_id INTEGER NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    PRIMARY KEY (rule_id, library_id)
) STRICT, WITHOUT ROWID;

-- What a rule's last evaluation proposes. Ids stay the same from one evaluation to the
-- next while an item keeps matching, so a selection made on the page stays valid.
CREATE TABLE maintenance_candidates (
    id           INTEGER PRIMARY KEY,
    rule_id      INTEGER NOT NULL REFERENCES maintenance_rules (id) ON DELETE CASCADE,
    item_id      INTEGER NOT NULL REFERENCES library_items (id) ON DELETE CASCADE,
    reasons      TEXT NOT NULL,               -- JSON array of sentences
    size_bytes   INTEGER NOT NULL,            -- what deleting it frees
    evaluated_at INTEGER NOT NULL,
    UNIQUE (rule_id, item_id)
) STRICT;

CREATE INDEX maintenance_candidates_item ON maintenance_candidates (item_id);
CREATE INDEX maintenance_candidates_by_size ON maintenance_candidates (size_bytes DESC, id DESC);

-- Items that are never candidates: forever (until IS NULL) or until a date.
CREATE TABLE maintenance_exclusions (
    id         INTEGER PRIMARY KEY,
    item_id    INTEGER NOT NULL UNIQUE REFERENCES library_items (id) ON DELETE CASCADE,
    until      INTEGER,
    reason     TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- Every deletion asked for, kept after the item is gone (copies of what it was). A row is
-- written before the media server is asked and completed step by step, so a crash in the
-- middle leaves a 'pending' step rather than no trace.
CREATE TABLE maintenance_deletions (
    id            INTEGER PRIMARY KEY,
    item_id       INTEGER,                    -- library_items.id while it existed
    server_id     INTEGER NOT NULL,
    server_name   TEXT NOT NULL,
    library_name  TEXT NOT NULL,
    rule_id       INTEGER,
    rule_name     TEXT,
    kind          TEXT NOT NULL,
    title         TEXT NOT NULL,              -- the full title ("Show · Season 1")
    external_id   TEXT NOT NULL,
    size_bytes    INTEGER NOT NULL,
    deleted_by    TEXT NOT NULL,
    deleted_at    INTEGER NOT NULL,
    server_outcome TEXT NOT NULL CHECK (server_outcome IN ('pending', 'deleted', 'already_gone', 'failed', 'skipped')),
    server_error   TEXT,
    radarr         TEXT NOT NULL CHECK (radarr IN ('pending', 'deleted', 'not_found', 'skipped', 'failed')),
    radarr_error   TEXT,
    sonarr         TEXT NOT NULL CHECK (sonarr IN ('pending', 'deleted', 'not_found', 'skipped', 'failed')),
    sonarr_error   TEXT,
    seerr          TEXT NOT NULL CHECK (seerr IN ('pending', 'deleted', 'not_found', 'skipped', 'failed')),
    seerr_error    TEXT,
    finished_at    INTEGER
) STRICT;

CREATE INDEX maintenance_deletions_at ON maintenance_deletions (deleted_at DESC, id DESC);

-- Radarr, Sonarr and Seerr (Overseerr, Jellyseerr) instances.
CREATE TABLE integrations (
    id             INTEGER PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('radarr', 'sonarr', 'seerr')),
    name           TEXT NOT NULL,
    url            TEXT NOT NULL,
    api_key_sealed TEXT NOT NULL,             -- crypto::SecretBox, purpose "integrations.api_key"
    enabled        INTEGER NOT NULL DEFAULT 1,
    verify_tls     INTEGER NOT NULL DEFAULT 1,
    version        TEXT,                      -- what the last connection test found
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX integrations_name ON integrations (name COLLATE NOCASE);
