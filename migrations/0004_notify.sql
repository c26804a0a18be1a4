-- Notifications: channels, the durable outbox (which is also the delivery log), cooldowns.

-- A notification channel (DESIGN.md section 6 calls them notifiers).
CREATE TABLE notifiers (
    id                    INTEGER PRIMARY KEY,
    kind                  TEXT NOT NULL CHECK (kind IN ('email', 'pushover', 'ntfy', 'discord', 'webhook')),
    name                  TEXT NOT NULL,
    enabled               INTEGER NOT NULL DEFAULT 1,
    events                TEXT NOT NULL,          -- JSON array of event names
    min_severity          TEXT NOT NULL CHECK (min_severity IN ('low', 'warning', 'high')),
    user_cooldown_minutes INTEGER NOT NULL DEFAULT 0,
    config                TEXT NOT NULL,          -- JSON, without the secret fields
    secrets_sealed        TEXT,                   -- crypto::SecretBox, purpose "notifiers.secrets": JSON object
    hold_until            INTEGER,                -- the service asked us to wait (429, rate limit) until then
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX notifiers_name ON notifiers (name COLLATE NOCASE);

-- One message for one channel. Written before it is sent; kept afterwards as the delivery log.
CREATE TABLE notify_outbox (
    id              INTEGER PRIMARY KEY,
    notifier_id     INTEGER NOT NULL REFERENCES notifiers (id) ON DELETE CASCADE,
    uid             TEXT NOT NULL UNIQUE,         -- stable across retries: webhook id, Message-ID
    kind            TEXT NOT NULL,                -- event name
    severity        TEXT NOT NULL,
    title           TEXT NOT NULL,
    event           TEXT NOT NULL,                -- JSON of notify::Event
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'cancelled')),
    is_test         INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_attempt_at INTEGER,
    last_error      TEXT,                         -- never holds a secret
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    CHECK ((status = 'sent') = (sent_at IS NOT NULL))
) STRICT;

CREATE INDEX notify_outbox_due ON notify_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notify_outbox_log ON notify_outbox (notifier_id, id DESC);
CREATE INDEX notify_outbox_log_status ON notify_outbox (notifier_id, status, id DESC);

-- Cooldowns against noise: "rule 3 for user 5" or "channel 2, user 5", until a time.
CREATE TABLE notify_cooldowns (
    key      TEXT PRIMARY KEY,
    until_at INTEGER NOT NULL
) STRICT;
