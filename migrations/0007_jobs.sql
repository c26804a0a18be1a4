-- Background jobs (library sync, imports, backups): what ran, how far it got, how it ended.
-- Progress of a running job lives in memory and is written here at most once a second, so
-- a page or a script can follow it and a restart knows what was cut short.
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'cancelled')),
    done        INTEGER NOT NULL DEFAULT 0,
    total       INTEGER,
    message     TEXT NOT NULL DEFAULT '',
    created_by  TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    finished_at INTEGER
) STRICT;

CREATE INDEX jobs_by_kind ON jobs (kind, id DESC);
CREATE INDEX jobs_running ON jobs (status) WHERE status = 'running';
