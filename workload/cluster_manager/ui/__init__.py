"""The browser UI: server-rendered pages styled with Vanilla Framework (design D10).

`routes.install` adds the pages, the OIDC login routes, the static files, the error pages of
the browser's paths and the security headers to the management app. This package module
imports nothing, so that no submodule depends on a package that depends on it.
"""
