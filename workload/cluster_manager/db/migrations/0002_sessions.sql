-- Browser logins through OpenID Connect (design D7): logins in progress and sessions.
-- The browser holds only random values; the database holds their SHA-256 hashes.

-- One row per login started and not yet finished: the authorization request's secrets,
-- bound to the browser that started it by the hash of a short-lived cookie.
CREATE TABLE oidc_logins (
    state_hash    bytea PRIMARY KEY,
    browser_hash  bytea NOT NULL,
    nonce         text NOT NULL,
    code_verifier text NOT NULL,
    return_to     text NOT NULL DEFAULT '/ui/',
    expires_at    timestamptz NOT NULL
);
CREATE INDEX oidc_logins_expires_at ON oidc_logins (expires_at);

-- The refresh token is sealed with a key derived from the cookie, so the database alone
-- cannot replay it.
CREATE TABLE sessions (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash       bytea NOT NULL UNIQUE,
    subject          text NOT NULL,
    name             text NOT NULL DEFAULT '',
    email            text NOT NULL DEFAULT '',
    groups           text[] NOT NULL DEFAULT '{}',
    sealed_refresh   bytea,
    tokens_expire_at timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_seen_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_subject ON sessions (subject);
