"""Render the nginx configuration that terminates TLS in front of both gunicorn apps.

Standard library only: the charm imports this module to write the same file that the local
run mode and the tests use (design D1). nginx, not Python, terminates TLS because only nginx
can request a client certificate without verifying it (`ssl_verify_client optional_no_ca`):
MicroCloud presents its self-signed cluster certificate before we know it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import string
from importlib import resources


class _Template(string.Template):
    # nginx owns `$`; our placeholders are `%%{name}`.
    delimiter = "%%"


_SIZE = re.compile(r"^[0-9]+[kKmM]?$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]*$")


@dataclasses.dataclass(frozen=True)
class NginxSettings:
    """Everything that varies between deployments of the nginx front."""

    management_cert: str
    """Path of the management API certificate chain (PEM)."""
    management_key: str
    """Path of the management API private key (PEM)."""
    connector_cert: str
    """Path of the connector certificate; its fingerprint is pinned by every cluster."""
    connector_key: str
    """Path of the connector private key (PEM)."""
    run_dir: str
    """Directory holding the gunicorn sockets `management.sock` and `connector.sock`."""
    management_port: int = 8443
    connector_port: int = 9443
    health_port: int = 8081
    """Plain-HTTP health listener, bound to 127.0.0.1 only (Pebble checks)."""
    metrics_port: int = 9102
    """Plain-HTTP listener on every address that serves only `/metrics` (Prometheus scrapes)."""
    proxy_protocol: bool = False
    """Expect a PROXY protocol header (Traefik) on both TLS listeners (design D8)."""
    trusted_proxies: tuple[str, ...] = ()
    """CIDRs whose PROXY header is believed for the client address."""
    user: str | None = None
    """Unix user for worker processes; only meaningful when nginx starts as root."""
    client_max_body_size_connector: str = "16m"
    client_max_body_size_management: str = "1m"

    def __post_init__(self) -> None:
        """Reject values that would produce a broken or injectable nginx config."""
        ports = (self.management_port, self.connector_port, self.health_port, self.metrics_port)
        for port in ports:
            if not 0 < port < 65536:
                raise ValueError(f"port out of range: {port}")
        if len(set(ports)) != len(ports):
            raise ValueError("management, connector, health and metrics ports must differ")
        for size in (self.client_max_body_size_connector, self.client_max_body_size_management):
            if not _SIZE.match(size):
                raise ValueError(f"invalid body size: {size!r}")
        for cidr in self.trusted_proxies:
            ipaddress.ip_network(cidr, strict=False)
        if self.user is not None and not _USER.match(self.user):
            raise ValueError(f"invalid user name: {self.user!r}")
        for path in (
            self.management_cert,
            self.management_key,
            self.connector_cert,
            self.connector_key,
            self.run_dir,
        ):
            if not path or any(c in path for c in ";{}\"'\n\\ "):
                raise ValueError(f"unsafe path for nginx: {path!r}")


def render_nginx_config(settings: NginxSettings) -> str:
    """Return the complete nginx.conf text for `settings`."""
    template = _Template(resources.files(__name__).joinpath("nginx.conf.template").read_text())
    proxy = " proxy_protocol" if settings.proxy_protocol else ""
    if settings.proxy_protocol:
        real_ip = "".join(f"    set_real_ip_from {cidr};\n" for cidr in settings.trusted_proxies)
        real_ip += "    real_ip_header proxy_protocol;\n"
    else:
        real_ip = ""
    return template.substitute(
        user=f"user {settings.user};\n" if settings.user else "",
        run_dir=settings.run_dir,
        management_port=settings.management_port,
        connector_port=settings.connector_port,
        health_port=settings.health_port,
        metrics_port=settings.metrics_port,
        proxy_protocol=proxy,
        real_ip=real_ip,
        management_cert=settings.management_cert,
        management_key=settings.management_key,
        connector_cert=settings.connector_cert,
        connector_key=settings.connector_key,
        connector_body=settings.client_max_body_size_connector,
        management_body=settings.client_max_body_size_management,
    )
