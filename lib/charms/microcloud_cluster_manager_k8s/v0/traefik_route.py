"""Requirer side of the `traefik_route` interface (the `traefik-route` endpoint of traefik-k8s).

With this interface the requirer writes Traefik *dynamic* configuration itself: routers,
services and middlewares for HTTP, TCP or UDP. Traefik does not learn anything about the
requirer's units; the backend addresses are part of the configuration the requirer sends.
Everything travels in the application databags; only the leader writes ours.

Requirer application databag (written by `TraefikRouteRequirer.submit`), every value a string:

- `config`: YAML of the dynamic configuration (`http`, `tcp`, `udp` sections). traefik-k8s
  writes it to a file of its file provider. The provider considers the relation ready only
  once this key exists. Traefik's name space is global, so prefix router and service names
  with the model and application.
- `static` (optional): YAML merged into Traefik's static configuration, e.g. extra
  entrypoints. It restarts Traefik, and a merge conflict blocks traefik-k8s; routes on the
  `websecure` (443) entrypoint need none.
- `raw`: `"True"` or `"False"`. Unless it is `"True"`, recent traefik-k8s revisions add a
  TLS-terminating `<router>-tls` twin of every router, which breaks TLS passthrough; send
  `"True"` for TCP passthrough routes.

Provider application databag (read with `external_host` and `scheme`):

- `external_host`: the host name or address Traefik is reachable at.
- `scheme`: `https` when Traefik has a certificate of its own, else `http`.

The library keeps no state and emits no events: observe the endpoint's relation events and
call `submit()` from your reconcile handler with the complete configuration; it only writes
when the content differs, and does nothing on non-leader units:

    self.route = TraefikRouteRequirer(self, "traefik-route")

    def _reconcile(self, _: ops.EventBase) -> None:
        self.route.submit({"tcp": {"routers": {...}, "services": {...}}}, raw=True)
"""

from __future__ import annotations

from typing import Any

import ops
import yaml

# The unique Charmhub library identifier, never change it.
LIBID = "c70a17e271654be49c45c1682d3eaae1"

# Increment this major API version when introducing breaking changes.
LIBAPI = 0

# Increment this PATCH version before using `charmcraft publish-lib` or reset
# to 0 if you are raising the major API version.
LIBPATCH = 1


class TraefikRouteRequirer(ops.Object):
    """Send Traefik dynamic (and optionally static) configuration over `traefik_route`."""

    def __init__(self, charm: ops.CharmBase, relation_name: str = "traefik-route"):
        """Set up the requirer.

        Args:
            charm: the charm that owns the endpoint.
            relation_name: name of the `traefik_route` endpoint in the charm's metadata.
        """
        super().__init__(charm, f"traefik-route-{relation_name}")
        self._charm = charm
        self.relation_name = relation_name

    @property
    def relation(self) -> ops.Relation | None:
        """Return the relation to Traefik, if there is one."""
        return self.model.get_relation(self.relation_name)

    @property
    def provider_name(self) -> str | None:
        """Return Traefik's application name, if related."""
        relation = self.relation
        return relation.app.name if relation is not None and relation.app else None

    @property
    def external_host(self) -> str | None:
        """Return the host Traefik is reachable at, once Traefik published it."""
        return self._remote("external_host")

    @property
    def scheme(self) -> str | None:
        """Return `https` or `http`, once Traefik published it."""
        return self._remote("scheme")

    def submit(
        self, config: dict[str, Any], static: dict[str, Any] | None = None, raw: bool = True
    ) -> None:
        """Publish the route configuration (leader only; writes only what changed).

        Args:
            config: Traefik dynamic configuration.
            static: Traefik static configuration to merge, or None for none.
            raw: ask traefik-k8s to use the configuration as it is (no TLS twins).
        """
        relation = self.relation
        if relation is None or not self._charm.unit.is_leader():
            return
        wanted = {
            "config": yaml.safe_dump(config, sort_keys=True),
            "raw": "True" if raw else "False",
        }
        if static:
            wanted["static"] = yaml.safe_dump(static, sort_keys=True)
        databag = relation.data[self._charm.app]
        for key, value in wanted.items():
            if databag.get(key) != value:
                databag[key] = value
        if not static and "static" in databag:
            del databag["static"]

    def _remote(self, key: str) -> str | None:
        relation = self.relation
        if relation is None or relation.app is None:
            return None
        return relation.data[relation.app].get(key) or None
