-- Rules, the violations they raise and what their actions did; trust history; households;
-- GeoIP overrides. Rule conditions and actions are JSON in the shape of the API (DESIGN.md 5-6).

CREATE TABLE rules (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    severity        TEXT NOT NULL CHECK (severity IN ('low', 'warning', 'high')),
    enabled         INTEGER NOT NULL DEFAULT 1,
    server_ids      TEXT NOT NULL DEFAULT '[]',   -- JSON ids; empty: every server
    exempt_user_ids TEXT NOT NULL DEFAULT '[]',   -- JSON media user ids
    conditions      TEXT NOT NULL,                -- JSON {"groups": [[{field, op, value, params}]]}
    actions         TEXT NOT NULL DEFAULT '[]',   -- JSON [{type, ...}]
    preset          TEXT,                         -- the preset it was made from
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX rules_name ON rules (name COLLATE NOCASE);

-- One match of a rule: deduplicated per rule, user and session (or per quiet spell for the
-- rules that run on a schedule without a session).
CREATE TABLE violations (
    id              INTEGER PRIMARY KEY,
    rule_id         INTEGER REFERENCES rules (id) ON DELETE SET NULL,
    rule_name       TEXT NOT NULL,                -- as it was when it matched
    severity        TEXT NOT NULL CHECK (severity IN ('low', 'warning', 'high')),
    user_id         INTEGER NOT NULL REFERENCES media_users (id),
    play_id         INTEGER REFERENCES plays (id) ON DELETE SET NULL,
    server_id       INTEGER REFERENCES servers (id),
    dedup_key       TEXT NOT NULL,                -- "play:<id>" or "user:<since>"
    at              INTEGER NOT NULL,
    summary         TEXT NOT NULL,                -- one line for lists and notifications
    evidence        TEXT NOT NULL,                -- JSON: every condition's actual value, threshold, result, related sessions
    status          TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'dismissed')),
    resolved_at     INTEGER,
    resolved_by     TEXT,
    note            TEXT
) STRICT;

CREATE UNIQUE INDEX violations_dedup ON violations (rule_id, user_id, dedup_key);
CREATE INDEX violations_at ON violations (at DESC, id DESC);
CREATE INDEX violations_user ON violations (user_id, at DESC);
CREATE INDEX violations_open ON violations (status, at DESC);

-- What each action of a matched rule did.
CREATE TABLE violation_actions (
    id              INTEGER PRIMARY KEY,
    violation_id    INTEGER NOT NULL REFERENCES violations (id) ON DELETE CASCADE,
    action          TEXT NOT NULL,                -- notify, adjust_trust, terminate, ...
    spec            TEXT NOT NULL,                -- JSON of the action as configured
    outcome         TEXT NOT NULL CHECK (outcome IN ('pending', 'done', 'failed', 'skipped')),
    message         TEXT NOT NULL DEFAULT '',
    at              INTEGER NOT NULL
) STRICT;

CREATE INDEX violation_actions_violation ON violation_actions (violation_id);

-- An action's cooldown per rule and user (notify and terminate).
CREATE TABLE action_cooldowns (
    rule_id         INTEGER NOT NULL REFERENCES rules (id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL REFERENCES media_users (id),
    action          TEXT NOT NULL,
    until           INTEGER NOT NULL,
    PRIMARY KEY (rule_id, user_id, action)
) STRICT;

-- Every change of a trust score, with its reason: the timeline on the user page.
CREATE TABLE trust_events (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES media_users (id),
    at              INTEGER NOT NULL,
    delta           INTEGER NOT NULL,             -- applied change (after clamping)
    score           INTEGER NOT NULL,             -- the score after it
    reason          TEXT NOT NULL CHECK (reason IN ('rule', 'admin', 'recovery', 'dismissed')),
    violation_id    INTEGER REFERENCES violations (id) ON DELETE SET NULL,
    actor           TEXT,
    note            TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX trust_events_user ON trust_events (user_id, id DESC);
CREATE INDEX trust_events_violation ON trust_events (violation_id) WHERE violation_id IS NOT NULL;

-- Networks a user streams from at home: learned from frequency (the admin confirms) or
-- added by hand. Confirmed ones exempt the user's sessions from geographic conditions.
CREATE TABLE households (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES media_users (id) ON DELETE CASCADE,
    network         TEXT NOT NULL,                -- CIDR; a single address is /32 or /128
    label           TEXT NOT NULL DEFAULT '',
    source          TEXT NOT NULL CHECK (source IN ('manual', 'learned')),
    confirmed       INTEGER NOT NULL DEFAULT 0,
    plays           INTEGER NOT NULL DEFAULT 0,   -- plays seen from it when learned
    created_at      INTEGER NOT NULL,
    confirmed_at    INTEGER,
    UNIQUE (user_id, network)
) STRICT;

-- The admin's word on where a network is, over the GeoIP database.
CREATE TABLE geo_overrides (
    id              INTEGER PRIMARY KEY,
    network         TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL DEFAULT '',
    country         TEXT,
    city            TEXT,
    lat             REAL,
    lon             REAL,
    is_local        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
) STRICT;

-- Rules read a user's plays by start time, whatever their status.
CREATE INDEX plays_user_started ON plays (user_id, started_at);
