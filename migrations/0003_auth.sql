-- Sign-in: Streamwarden accounts, their sessions, API keys and pending OpenID Connect flows.
-- Tokens (sessions, API keys, OIDC state) are stored as SHA-256 hex, never as issued.

CREATE TABLE accounts (
    id                  INTEGER PRIMARY KEY,
    username            TEXT NOT NULL,
    role                TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    password_hash       TEXT,                   -- argon2id PHC string; NULL: no password sign-in
    media_user_id       INTEGER REFERENCES media_users (id) ON DELETE SET NULL,
    disabled            INTEGER NOT NULL DEFAULT 0,
    email               TEXT,
    oidc_issuer         TEXT,                   -- exactly as the provider states it
    oidc_subject        TEXT,                   -- the provider's `sub`
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    last_login_at       INTEGER,
    last_oidc_login_at  INTEGER,
    CHECK ((oidc_issuer IS NULL) = (oidc_subject IS NULL))
) STRICT;

CREATE UNIQUE INDEX accounts_username ON accounts (username COLLATE NOCASE);
CREATE UNIQUE INDEX accounts_oidc ON accounts (oidc_issuer, oidc_subject) WHERE oidc_subject IS NOT NULL;
CREATE INDEX accounts_email ON accounts (email COLLATE NOCASE) WHERE email IS NOT NULL;

CREATE TABLE sessions (
    id             INTEGER PRIMARY KEY,
    token_hash     TEXT NOT NULL UNIQUE,
    account_id     INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    csrf_token     TEXT NOT NULL,               -- bound to this session, shown in its pages
    method         TEXT NOT NULL,               -- password, oidc, demo, setup
    created_at     INTEGER NOT NULL,
    last_seen_at   INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,            -- absolute expiry
    ip             TEXT,
    user_agent     TEXT,
    id_token_sealed TEXT                        -- OIDC ID token for RP-initiated logout (SecretBox)
) STRICT;

CREATE INDEX sessions_account ON sessions (account_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,                 -- the first characters, to recognise a key
    scope        TEXT NOT NULL CHECK (scope IN ('read', 'admin')),
    created_by   TEXT NOT NULL,                 -- audit actor
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;

CREATE UNIQUE INDEX api_keys_name ON api_keys (name COLLATE NOCASE) WHERE revoked_at IS NULL;

-- An authorization request sent to the OpenID provider, waiting for its callback.
CREATE TABLE oidc_flows (
    state_hash    TEXT PRIMARY KEY,
    binding_hash  TEXT NOT NULL,                -- hash of the cookie that ties it to one browser
    nonce         TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    next          TEXT NOT NULL,                -- where to go after signing in
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
) STRICT;
