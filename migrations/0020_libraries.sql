-- Libraries and their items, synced from the media servers in the background (job kind
-- library_sync). Movie and show libraries are synced item by item; music and other
-- libraries keep only the count their server gives.

CREATE TABLE libraries (
    id          INTEGER PRIMARY KEY,
    server_id   INTEGER NOT NULL REFERENCES servers (id),
    external_id TEXT NOT NULL,               -- Plex section key, Jellyfin/Emby virtual folder ItemId
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('movie', 'show', 'music', 'other')),
    item_count  INTEGER NOT NULL DEFAULT 0,  -- movies or shows (music and other: the server's count)
    size_bytes  INTEGER NOT NULL DEFAULT 0,  -- every file of every item
    created_at  INTEGER NOT NULL,
    synced_at   INTEGER,                     -- the last sync that read it whole
    UNIQUE (server_id, external_id)
) STRICT;

-- One movie, show, season or episode. Seasons and episodes name their show by the
-- server's id (show_external_id), so a listing can arrive in any order.
CREATE TABLE library_items (
    id                     INTEGER PRIMARY KEY,
    library_id             INTEGER NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    server_id              INTEGER NOT NULL REFERENCES servers (id),
    external_id            TEXT NOT NULL,     -- Plex ratingKey, Jellyfin/Emby item Id
    kind                   TEXT NOT NULL CHECK (kind IN ('movie', 'show', 'season', 'episode')),
    title                  TEXT NOT NULL,
    year                   INTEGER,
    show_external_id       TEXT,              -- seasons and episodes: their show
    show_title             TEXT,
    season_number          INTEGER,           -- seasons: theirs; episodes: their season's
    episode_number         INTEGER,
    added_at               INTEGER,
    size_bytes             INTEGER NOT NULL DEFAULT 0,  -- shows and seasons: their episodes'
    width                  INTEGER,           -- the best version; shows and seasons: their best episode's
    height                 INTEGER,
    tmdb_id                TEXT,
    tvdb_id                TEXT,
    imdb_id                TEXT,
    thumb                  TEXT,              -- poster path on the media server
    -- What the server itself says (for its token's account).
    server_last_watched_at INTEGER,
    server_play_count      INTEGER NOT NULL DEFAULT 0,
    -- Merged: the server's data, Streamwarden's history of every user, and copies of the
    -- same title on other servers (recomputed after each sync and before evaluations).
    last_watched_at        INTEGER,
    play_count             INTEGER NOT NULL DEFAULT 0,
    episode_count          INTEGER,           -- shows and seasons
    watched_episode_count  INTEGER,
    first_seen_at          INTEGER NOT NULL,  -- the sync that found it (new items)
    seen_at                INTEGER NOT NULL,  -- the sync that last saw it
    UNIQUE (server_id, external_id)
) STRICT;

-- The library pages (a library's movies or shows, sorted in memory: tens of thousands at most)
-- and the pruning of what a sync did not see.
CREATE INDEX library_items_library ON library_items (library_id, kind, seen_at);
-- Seasons and episodes of a show.
CREATE INDEX library_items_show ON library_items (server_id, show_external_id, season_number) WHERE show_external_id IS NOT NULL;
-- Copies of a title on other servers.
CREATE INDEX library_items_tmdb ON library_items (tmdb_id) WHERE tmdb_id IS NOT NULL;
CREATE INDEX library_items_tvdb ON library_items (tvdb_id) WHERE tvdb_id IS NOT NULL;
CREATE INDEX library_items_imdb ON library_items (imdb_id) WHERE imdb_id IS NOT NULL;

-- Streamwarden's own history of an item, for every user: plays by item, and by show and
-- season (episodes whose rows are gone still count for their show).
CREATE INDEX plays_server_item ON plays (server_id, item_id, last_seen_at) WHERE status != 'pending';
CREATE INDEX plays_server_show ON plays (server_id, grandparent_item_id, season, last_seen_at) WHERE status != 'pending' AND grandparent_item_id IS NOT NULL;
