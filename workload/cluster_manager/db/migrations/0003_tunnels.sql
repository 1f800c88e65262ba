-- Reverse tunnels (design D13): which unit holds each cluster's websocket, and what the
-- cluster's LXD gave each browser session.

-- One row per open tunnel. `holder` is the internal address (host:port) of the unit's tunnel
-- process, where any unit forwards a request for this cluster; `connection` tells a newer
-- socket of the same cluster from the one it replaced, so a late close clears only its own row.
CREATE TABLE tunnels (
    cluster_id   bigint PRIMARY KEY REFERENCES clusters (id) ON DELETE CASCADE,
    holder       text NOT NULL,
    connection   uuid NOT NULL,
    connected_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tunnels_holder ON tunnels (holder);

-- The OIDC access token goes to LXD as `Authorization: Bearer`; sealed with the cookie's key
-- like the refresh token.
ALTER TABLE sessions ADD COLUMN sealed_access bytea;

-- Cookies an LXD set, kept per browser session and cluster: they never reach the browser.
CREATE TABLE tunnel_cookies (
    session_id bigint NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    cluster_id bigint NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    name       text NOT NULL,
    value      text NOT NULL,
    expires_at timestamptz,
    PRIMARY KEY (session_id, cluster_id, name)
);
