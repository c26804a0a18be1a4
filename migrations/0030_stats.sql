-- Statistics: rollups of finished plays by local day, month and year, kept in step with
-- history by triggers that note which times changed (stats_dirty) and by
-- stats::rollups::catch_up, which refolds the days those times touch. Any path that writes,
-- edits or deletes a finished play (the poller, an import, retention pruning, a hand-run
-- DELETE) is covered by the triggers; nothing has to remember to call anything.

-- Sums of plays over one bucket for one scope: all servers (server_id 0, user_id 0), one
-- server (server_id s, user_id 0) or one media user (server_id s, user_id u).
CREATE TABLE stats_rollups (
    dim       TEXT NOT NULL,       -- type, hour, platform, player, quality, decision, title, library
    server_id INTEGER NOT NULL,    -- 0: every server
    user_id   INTEGER NOT NULL,    -- 0: every user
    level     INTEGER NOT NULL CHECK (level IN (1, 2, 3)),  -- 1 day, 2 month, 3 year
    bucket    INTEGER NOT NULL,    -- the bucket's first local day, days since 1970-01-01
    key       TEXT NOT NULL,       -- the value of the dimension (see stats::rollups)
    plays     INTEGER NOT NULL,
    watch_ms  INTEGER NOT NULL,
    bytes     INTEGER NOT NULL,    -- estimated bytes sent (bandwidth × time watched)
    PRIMARY KEY (dim, server_id, user_id, level, bucket, key)
) STRICT, WITHOUT ROWID;

-- Refolding months and years from days; the per-user rows of a period (top users, users of
-- a title, distinct users).
CREATE INDEX stats_rollups_bucket ON stats_rollups (level, bucket);
CREATE INDEX stats_rollups_users ON stats_rollups (dim, level, bucket) WHERE user_id > 0;
CREATE INDEX stats_rollups_key ON stats_rollups (dim, key, level, bucket) WHERE user_id > 0;

-- The most streams at once on each local day, per scope, and how they were split when the
-- peak was first reached.
CREATE TABLE stats_concurrency (
    server_id     INTEGER NOT NULL,
    user_id       INTEGER NOT NULL,
    day           INTEGER NOT NULL,
    peak          INTEGER NOT NULL,
    at            INTEGER NOT NULL,   -- Unix ms when the peak was first reached
    direct_play   INTEGER NOT NULL,
    direct_stream INTEGER NOT NULL,
    transcode     INTEGER NOT NULL,
    PRIMARY KEY (server_id, user_id, day)
) STRICT, WITHOUT ROWID;

-- Times whose rollups are stale: the span of a finished play that was written, changed or
-- deleted (rebuild = 0), or a span to refold whole (rebuild = 1).
CREATE TABLE stats_dirty (
    id      INTEGER PRIMARY KEY,
    from_ms INTEGER NOT NULL,
    to_ms   INTEGER NOT NULL,
    rebuild INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TRIGGER stats_play_insert AFTER INSERT ON plays WHEN new.status = 'stopped' BEGIN
    INSERT INTO stats_dirty (from_ms, to_ms) VALUES (new.started_at, new.stopped_at);
END;

CREATE TRIGGER stats_play_update AFTER UPDATE OF status, server_id, user_id, media_type, title,
    grandparent_title, year, library_name, player, platform, decision, source_resolution,
    stream_resolution, bandwidth_kbps, started_at, stopped_at, paused_ms, play_ms ON plays
    WHEN old.status = 'stopped' OR new.status = 'stopped' BEGIN
    INSERT INTO stats_dirty (from_ms, to_ms)
        SELECT old.started_at, old.stopped_at WHERE old.status = 'stopped';
    INSERT INTO stats_dirty (from_ms, to_ms)
        SELECT new.started_at, new.stopped_at WHERE new.status = 'stopped';
END;

CREATE TRIGGER stats_play_delete AFTER DELETE ON plays WHEN old.status = 'stopped' BEGIN
    INSERT INTO stats_dirty (from_ms, to_ms) VALUES (old.started_at, old.stopped_at);
END;

-- The history that is already there is folded at the first catch-up.
INSERT INTO stats_dirty (from_ms, to_ms, rebuild)
    SELECT min(started_at), max(stopped_at), 1 FROM plays WHERE status = 'stopped' HAVING count(*) > 0;
