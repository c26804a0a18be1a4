-- Media servers, their users, and plays (live and finished).

CREATE TABLE servers (
    id                   INTEGER PRIMARY KEY,
    name                 TEXT NOT NULL,
    kind                 TEXT NOT NULL CHECK (kind IN ('plex', 'jellyfin', 'emby')),
    url                  TEXT NOT NULL,
    token_sealed         TEXT NOT NULL,          -- crypto::SecretBox, purpose "servers.token"
    enabled              INTEGER NOT NULL DEFAULT 1,
    verify_tls           INTEGER NOT NULL DEFAULT 1,
    machine_id           TEXT,                   -- Plex machineIdentifier / Jellyfin and Emby server Id
    product_name         TEXT,                   -- what the server calls itself
    version              TEXT,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    deleted_at           INTEGER,                -- kept for the history that points at it
    -- health, written by the poller
    last_ok_at           INTEGER,
    last_error_at        INTEGER,
    last_error           TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE UNIQUE INDEX servers_name ON servers (name COLLATE NOCASE) WHERE deleted_at IS NULL;

-- A user account on one media server.
CREATE TABLE media_users (
    id            INTEGER PRIMARY KEY,
    server_id     INTEGER NOT NULL REFERENCES servers (id),
    external_id   TEXT NOT NULL,                 -- Plex account id, Jellyfin/Emby user Id
    name          TEXT NOT NULL,
    thumb         TEXT,
    is_admin      INTEGER NOT NULL DEFAULT 0,
    trust_score   INTEGER NOT NULL DEFAULT 100 CHECK (trust_score BETWEEN 0 AND 100),
    first_seen_at INTEGER NOT NULL,
    last_seen_at  INTEGER,                       -- last time they streamed
    UNIQUE (server_id, external_id)
) STRICT;

CREATE INDEX media_users_name ON media_users (name COLLATE NOCASE);

-- One row per play: 'pending' (seen, not yet confirmed), 'live' (confirmed, playing or
-- paused), 'stopped' (history). Pending rows that vanish are deleted, never kept.
CREATE TABLE plays (
    id                  INTEGER PRIMARY KEY,
    server_id           INTEGER NOT NULL REFERENCES servers (id),
    user_id             INTEGER NOT NULL REFERENCES media_users (id),
    status              TEXT NOT NULL CHECK (status IN ('pending', 'live', 'stopped')),
    session_id          TEXT NOT NULL,           -- the server's session key
    control_id          TEXT,                    -- Plex Session@id, Jellyfin/Emby session Id
    -- what
    item_id             TEXT NOT NULL,
    grandparent_item_id TEXT,
    media_type          TEXT NOT NULL,           -- movie, episode, track, live, clip, other
    title               TEXT NOT NULL,
    parent_title        TEXT,
    grandparent_title   TEXT,
    season              INTEGER,
    episode             INTEGER,
    year                INTEGER,
    library_id          TEXT,
    library_name        TEXT,
    thumb               TEXT,                    -- image path on the media server
    duration_ms         INTEGER,                 -- runtime of the item
    -- where from
    device_id           TEXT NOT NULL,
    player              TEXT,
    product             TEXT,
    platform            TEXT,
    ip                  TEXT,
    is_local            INTEGER NOT NULL DEFAULT 0,
    geo_country         TEXT,
    geo_city            TEXT,
    geo_lat             REAL,
    geo_lon             REAL,
    geo_asn             INTEGER,
    geo_isp             TEXT,
    -- how
    decision            TEXT NOT NULL,           -- direct_play, direct_stream, transcode
    video_decision      TEXT,
    audio_decision      TEXT,
    source_resolution   TEXT,
    stream_resolution   TEXT,
    bandwidth_kbps      INTEGER,
    stream              TEXT,                    -- JSON: codecs, bitrates, reasons, hardware
    -- when
    started_at          INTEGER NOT NULL,
    stopped_at          INTEGER,
    last_seen_at        INTEGER NOT NULL,
    state               TEXT NOT NULL,           -- playing, paused, buffering
    progress_ms         INTEGER,
    paused_ms           INTEGER NOT NULL DEFAULT 0,
    paused_since        INTEGER,
    play_ms             INTEGER,                 -- time actually watched, set at stop
    watched             INTEGER NOT NULL DEFAULT 0,
    reference_id        INTEGER REFERENCES plays (id),  -- first play of a resume chain
    stop_reason         TEXT,
    CHECK ((status = 'stopped') = (stopped_at IS NOT NULL))
) STRICT;

-- History pages: newest first, by every filter, with (started_at, id) as the cursor.
CREATE INDEX plays_history ON plays (started_at DESC, id DESC) WHERE status = 'stopped';
CREATE INDEX plays_history_user ON plays (user_id, started_at DESC, id DESC) WHERE status = 'stopped';
CREATE INDEX plays_history_server ON plays (server_id, started_at DESC, id DESC) WHERE status = 'stopped';
CREATE INDEX plays_history_type ON plays (media_type, started_at DESC, id DESC) WHERE status = 'stopped';
-- The live set, loaded at start and shown on the dashboard.
CREATE INDEX plays_live ON plays (server_id) WHERE status != 'stopped';
-- Resume chains: the same user's earlier play of the same item.
CREATE INDEX plays_user_item ON plays (user_id, item_id, stopped_at);
CREATE INDEX plays_reference ON plays (reference_id) WHERE reference_id IS NOT NULL;

-- Title search for history: full-text over the titles, kept in step by triggers.
CREATE VIRTUAL TABLE plays_fts USING fts5 (
    title, grandparent_title,
    content = 'plays', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER plays_fts_insert AFTER INSERT ON plays BEGIN
    INSERT INTO plays_fts (rowid, title, grandparent_title) VALUES (new.id, new.title, new.grandparent_title);
END;

CREATE TRIGGER plays_fts_delete AFTER DELETE ON plays BEGIN
    INSERT INTO plays_fts (plays_fts, rowid, title, grandparent_title) VALUES ('delete', old.id, old.title, old.grandparent_title);
END;

CREATE TRIGGER plays_fts_update AFTER UPDATE OF title, grandparent_title ON plays BEGIN
    INSERT INTO plays_fts (plays_fts, rowid, title, grandparent_title) VALUES ('delete', old.id, old.title, old.grandparent_title);
    INSERT INTO plays_fts (rowid, title, grandparent_title) VALUES (new.id, new.title, new.grandparent_title);
END;
