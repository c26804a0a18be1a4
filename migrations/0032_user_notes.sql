-- Admins' notes on a media user ("Dave's kids use the iPad", "asked to stop sharing").
CREATE TABLE user_notes (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES media_users (id),
    body       TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 2000),
    author     TEXT NOT NULL,      -- the audit actor: user:alice, api-key:ci
    created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX user_notes_user ON user_notes (user_id, created_at DESC);
