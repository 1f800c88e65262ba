"""Who is calling, and the browser's session: the management app's authentication.

- `identity`: `Identity`, the authenticator chain, `current_identity` and `require_admin`
- `api_tokens`: the API-token authenticator (`Authorization: Bearer mcm_…`)
- `sessions`: the browser-session authenticator, and the logins that start sessions
- `cookies`: the `__Host-` cookies and the refresh token sealed with the session cookie
- `same_origin`: the CSRF check on state-changing browser requests
- `oidc_client`: the OpenID Connect relying party and the app's one client

The browser's login flow (`/oidc/login`, `/oidc/callback`, `/oidc/logout`) is not here but in
`ui.login`: it answers with the UI's pages and templates and the UI registers it. It calls
this package for everything that is not a page, so `auth` (like `service`) may read `db/`
and the UI never does. This package module imports nothing, so that no submodule depends
on a package that depends on it.
"""
