-- One person behind several media accounts (alice on Plex and alice on Jellyfin): linked by
-- an admin, usually from a suggestion (persons::suggest), and undone by unlinking. Rules,
-- statistics and pages look through a person to all of its accounts.
CREATE TABLE persons (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    created_at INTEGER NOT NULL
) STRICT;

-- NULL: the account stands alone. Deleting a person frees its accounts.
ALTER TABLE media_users ADD COLUMN person_id INTEGER REFERENCES persons (id) ON DELETE SET NULL;
CREATE INDEX media_users_person ON media_users (person_id) WHERE person_id IS NOT NULL;

-- Suggestions an admin said are different people: never suggested again. The pair is kept
-- ordered (user_a < user_b).
CREATE TABLE person_dismissals (
    user_a       INTEGER NOT NULL REFERENCES media_users (id) ON DELETE CASCADE,
    user_b       INTEGER NOT NULL REFERENCES media_users (id) ON DELETE CASCADE,
    dismissed_at INTEGER NOT NULL,
    PRIMARY KEY (user_a, user_b),
    CHECK (user_a < user_b)
) STRICT, WITHOUT ROWID;
