"""Render haproxy.cfg: four listeners in front of the two gunicorn unix sockets and the tunnel.

- management (TLS 1.2/1.3, HTTP/2, the `certificates` relation's certificate);
- connector (TLS 1.3 only, the stable connector identity, any client certificate); its
  websocket path `/1.0/remote-cluster/ws` goes to the tunnel process (`tunnel.sock`, design D13);
- metrics (plain HTTP, `/metrics` only) and health (plain HTTP on 127.0.0.1, Pebble checks).

What the apps may rely on (docs/workload-contract.md): `X-Client-Cert` holds the base64 DER
of the certificate the caller proved it holds, and only that; `X-Real-IP` is the caller's
address (after the PROXY protocol of a trusted source). Every answer the front makes itself
is an LXD error envelope with the security headers. Rate limits are counted in stick tables,
which every thread of the one HAProxy process shares, so they hold per unit (design D8).
The configuration is valid for HAProxy 2.6 (Debian 12) and 2.8 (Ubuntu 24.04).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
from collections.abc import Iterator, Sequence

from .rate_limits import RateLimit, parse_rate_limits

CLIENT_CERT_HEADER = "X-Client-Cert"
"""Request header: base64 DER of the client certificate; absent when none was presented."""
CLIENT_ADDRESS_HEADER = "X-Real-IP"
"""Request header: the caller's address as the front saw it."""
ENROLLED_HEADER = "X-Enrolled-Cluster"
"""Response header of the connector app: `1` when the caller's certificate belongs to an enrolled
cluster, `0` when it no longer does (the cluster left).

The front then counts that certificate's requests against its own budget instead of its
address's (design D8), and removes the header before the answer leaves.
"""
STATS_SOCKET = "haproxy.sock"
"""HAProxy's runtime socket in the run directory (seamless reloads, refusal counters)."""
REFUSALS_TABLE = "refusals"
"""Stick table counting rate-limited requests (gpc0) by `<app>:<request>`."""

ALLOWED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE"
"""`Allow` of the front's own 405: the methods any route of the apps may take."""
MAX_URL_BYTES = 8192
MAX_HEADER_BYTES = 12288
"""Beyond these a request is refused with 414 / 431; HAProxy's buffer (16 KiB) gives 400."""

SECURITY_HEADERS = (
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Strict-Transport-Security", "max-age=63072000"),
    ("Cache-Control", "no-store"),
)
"""Headers on every answer the front makes itself (the apps set their own)."""

_ERRORS = {
    400: "bad request",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    408: "request timed out",
    413: "request body too large",
    414: "request URL too long",
    429: "too many requests",
    431: "request headers too large",
    500: "internal error",
    501: "not implemented",
    502: "service unavailable: bad answer from the application",
    503: "service unavailable",
    504: "service unavailable: the application did not answer in time",
}
_HAPROXY_ERRORS = (400, 403, 404, 405, 408, 413, 429, 500, 501, 502, 503, 504)
"""Statuses HAProxy can answer with on its own; each gets the envelope through `http-error`."""
_DEFAULT = "default-errorfiles"
"""A `return` or `deny` with this answers with the `http-error` envelope of its status."""

_UNSAFE_PATH = re.compile(r"[\s'\"#\\;{}]")
_REQUEST_KINDS = (
    # (name, method, path) of the connector requests counted apart in the refusal counters.
    ("join", "POST", "/1.0/remote-cluster"),
    ("heartbeat", "POST", "/1.0/remote-cluster/status"),
    ("leave", "DELETE", "/1.0/remote-cluster"),
    ("tunnel", "GET", "/1.0/remote-cluster/ws"),
)
_LOG_FORMAT = (
    "{"
    '"time":"%[date,utime(%Y-%m-%dT%H:%M:%SZ)]","source":"haproxy","listener":"%[fc_dst_port]",'
    '"remote":"%[var(txn.client)]","method":"%[var(txn.method)]","path":"%[var(txn.path)]",'
    '"status":%ST,"bytes":%B,"duration":%Ta,"tls":"%sslv","note":"%[var(txn.note),json(utf8s)]"'
    "}"
)
"""One JSON object per request; the path without its query string (it may hold an OIDC code)."""
_ERROR_LOG_FORMAT = (
    "{"
    '"time":"%[date,utime(%Y-%m-%dT%H:%M:%SZ)]","source":"haproxy","listener":"%[fc_dst_port]",'
    '"remote":"%ci","error":"%[fc_err_str,json(utf8s)]"'
    "}"
)
"""Connection errors (failed TLS handshakes) as JSON too, where HAProxy can (2.7 and later);
2.6 writes them in its own one-line format."""


@dataclasses.dataclass(frozen=True)
class FrontSettings:
    """Everything that varies between deployments of the front."""

    management_cert: str
    """Management certificate chain (PEM); its key is the same path with `.key` for `.crt`."""
    connector_cert: str
    """Connector certificate, pinned by every cluster; its key likewise beside it."""
    run_dir: str
    """Directory of the gunicorn sockets `management.sock`, `connector.sock` and HAProxy's own."""
    management_port: int = 8443
    connector_port: int = 9443
    health_port: int = 8081
    """Plain-HTTP health listener, bound to 127.0.0.1 only (Pebble checks)."""
    metrics_port: int = 9102
    """Plain-HTTP listener on every address that serves only `/metrics` (Prometheus scrapes)."""
    proxy_protocol: bool = False
    """Both TLS listeners expect a PROXY protocol header (Traefik) on every connection."""
    trusted_proxies: tuple[str, ...] = ()
    """CIDRs whose PROXY header is believed for the client address; others keep their own."""
    connector_max_body_bytes: int = 64 * 1024 * 1024
    management_max_body_bytes: int = 1024 * 1024
    rate_limit_connector: str = "60/minute"
    """Per enrolled cluster certificate; per client address for every other connector call."""
    rate_limit_management: str = "600/minute"
    """Per client address."""
    request_timeout_seconds: int = 15
    """Time a client has to send a request's headers (then 408)."""
    app_timeout_seconds: int = 65
    """Time an app has to answer (then 504); above the apps' own statement timeouts."""

    def __post_init__(self) -> None:
        """Refuse values that would give a broken or injectable configuration."""
        ports = (self.management_port, self.connector_port, self.health_port, self.metrics_port)
        for port in ports:
            if not 0 < port < 65536:
                raise ValueError(f"port out of range: {port}")
        if len(set(ports)) != len(ports):
            raise ValueError("management, connector, health and metrics ports must differ")
        for size in (
            self.connector_max_body_bytes,
            self.management_max_body_bytes,
            self.request_timeout_seconds,
            self.app_timeout_seconds,
        ):
            if size < 1:
                raise ValueError(f"body limits and timeouts must be positive: {size}")
        for cidr in self.trusted_proxies:
            ipaddress.ip_network(cidr, strict=False)
        for path in (self.management_cert, self.connector_cert, self.run_dir):
            if not path or _UNSAFE_PATH.search(path):
                raise ValueError(f"unsafe path for haproxy.cfg: {path!r}")
        for cert in (self.management_cert, self.connector_cert):
            if not cert.endswith(".crt"):
                raise ValueError(f"{cert!r}: certificates end in .crt, their keys in .key")
        parse_rate_limits(self.rate_limit_connector)
        parse_rate_limits(self.rate_limit_management)


def render_front_config(settings: FrontSettings) -> str:
    """Return the complete haproxy.cfg text for `settings`."""
    sections = (
        _global(settings),
        _defaults(settings),
        _tables(settings),
        _backends(settings),
        _management(settings),
        _connector(settings),
        _metrics(settings),
        _health(settings),
    )
    body = "\n".join("\n".join(section) + "\n" for section in sections)
    return "# Rendered by cluster_manager.front; do not edit by hand.\n" + body


def _global(settings: FrontSettings) -> list[str]:
    return [
        "global",
        "    log stdout format raw daemon info",
        f"    stats socket {settings.run_dir}/{STATS_SOCKET} mode 600 level operator"
        " expose-fd listeners",
        "    # `management.crt` pairs with `management.key`, as the charm writes them.",
        "    ssl-load-extra-del-ext",
        "    # Workers of an old configuration finish their requests, then stop (reloads).",
        "    hard-stop-after 5m",
    ]


def _defaults(settings: FrontSettings) -> list[str]:
    lines = [
        "defaults",
        "    mode http",
        "    log global",
        "    option dontlognull",
        ".if version_atleast(2.7)",
        f"    error-log-format '{_ERROR_LOG_FORMAT}'",
        ".endif",
        "    timeout connect 5s",
        "    timeout client 75s",
        f"    timeout server {settings.app_timeout_seconds}s",
        f"    timeout http-request {settings.request_timeout_seconds}s",
        "    timeout http-keep-alive 75s",
        "    timeout client-fin 5s",
        "    timeout tunnel 1h",
    ]
    lines += [f"    http-error {_answer(status)}" for status in _HAPROXY_ERRORS]
    return lines


def _tables(settings: FrontSettings) -> list[str]:
    connector = parse_rate_limits(settings.rate_limit_connector)
    management = parse_rate_limits(settings.rate_limit_management)
    return [
        # Enrolled clusters by certificate (SHA-256 of the DER); gpt0 = 1 once the connector
        # app has said the certificate is enrolled.
        *_table("connector_certificates", "binary len 32", connector, "gpt0,"),
        # Every other connector call, and the management listener, by client address.
        *_table("connector_addresses", "ipv6", connector),
        *_table("management_addresses", "ipv6", management),
        f"backend {REFUSALS_TABLE}",
        "    stick-table type string len 32 size 16 store gpc0",
    ]


def _table(name: str, key: str, limits: Sequence[RateLimit], extra: str = "") -> list[str]:
    # Limit i is counted by gpc<i>, which has a rate period of its own in every table.
    rates = ",".join(
        f"gpc{index}_rate({limit.period_seconds}s)" for index, limit in enumerate(limits)
    )
    expire = max(limit.period_seconds for limit in limits)
    return [
        f"backend {name}",
        f"    stick-table type {key} size 1m expire {expire}s store {extra}{rates}",
    ]


def _backends(settings: FrontSettings) -> list[str]:
    lines = []
    # The forwarder answers only health probes there (cluster_manager.forwarding.wire).
    for app in ("management", "connector", "forwarder", "tunnel"):
        lines += [
            f"backend {app}_app",
            f"    server {app} unix@{settings.run_dir}/{app}.sock",
        ]
    return lines


def _binds(port: int, options: str = "") -> list[str]:
    # Two sockets rather than one v4v6, so that IPv4 clients are plain IPv4 addresses.
    return [f"    bind 0.0.0.0:{port}{options}", f"    bind :::{port} v6only{options}"]


def _bind_tls(settings: FrontSettings, port: int, options: str) -> list[str]:
    proxy = " accept-proxy" if settings.proxy_protocol else ""
    return _binds(port, f" ssl {options}{proxy}")


def _request_basics(settings: FrontSettings, max_body_bytes: int) -> Iterator[str]:
    """Client address, log fields and the refusals every public listener shares."""
    yield f"    log-format '{_LOG_FORMAT}'"
    yield "    http-request set-var(txn.client) fc_src"
    if settings.proxy_protocol and settings.trusted_proxies:
        # Only a trusted peer's PROXY header says who the client is.
        trusted = " ".join(settings.trusted_proxies)
        yield f"    http-request set-var(txn.client) src if {{ fc_src {trusted} }}"
    yield "    http-request set-var(txn.method) method,json(utf8s)"
    yield "    http-request set-var(txn.path) path,json(utf8s)"
    # CONNECT would open a tunnel through the front; the apps never serve it. (TRACE goes on to
    # the apps, which answer 405 with the `Allow` of the path.)
    allow = f'hdr Allow "{ALLOWED_METHODS}"'
    yield f"    http-request return {_answer(405)} {allow} if METH_CONNECT"
    yield f"    http-request return {_answer(414)} if {{ url,length gt {MAX_URL_BYTES} }}"
    yield f"    http-request return {_answer(431)} if {{ req.hdrs,length gt {MAX_HEADER_BYTES} }}"
    yield (
        f"    http-request return status 413 {_DEFAULT}"
        f" if {{ req.hdr_val(content-length) gt {max_body_bytes} }}"
    )
    for header in (CLIENT_CERT_HEADER, CLIENT_ADDRESS_HEADER, "X-Forwarded-Proto"):
        yield f"    http-request del-header {header}"
    yield f"    http-request set-header {CLIENT_ADDRESS_HEADER} %[var(txn.client)]"
    yield "    http-request set-header X-Forwarded-Proto https"


_KEYS = {
    0: "certificate %[ssl_c_der,sha2(256),hex,lower]",
    1: "address %[var(txn.client)]",
}
"""How the log names the key counted on sticky counter 0 (certificates) and 1 (addresses)."""


def _limit_checks(limits: Sequence[RateLimit], counter: int, condition: str) -> Iterator[str]:
    """Count this request on sticky counter `counter`, then note a retry delay if it is over.

    Every request counts, refused ones too, so a burst's count passes `amount + 1` exactly
    once: that first refusal is the one the access log keeps, with the key and the limit.
    """
    for index, _ in enumerate(limits):
        yield f"    http-request sc-inc-gpc{index}({counter}) if {condition}"
    for index, limit in enumerate(limits):
        rate = f"sc_gpc{index}_rate({counter})"
        yield (
            f"    http-request set-var(txn.retry) int({limit.retry_after_seconds})"
            f" if {condition} {{ {rate} gt {limit.amount} }}"
        )
        yield (
            f'    http-request set-var-fmt(txn.note) "rate limit exceeded by {_KEYS[counter]}:'
            f" more than {limit.amount} requests in {limit.period_seconds}s; further"
            f' refusals in this period are not logged" if {condition}'
            f" {{ {rate} eq {limit.amount + 1} }}"
        )


def _refuse_if_limited(app: str) -> Iterator[str]:
    limited = "{ var(txn.retry) -m found }"
    yield f"    http-request set-var(txn.kind) str({app}:other)"
    if app == "connector":
        for kind, method, path in _REQUEST_KINDS:
            yield (
                f"    http-request set-var(txn.kind) str({app}:{kind})"
                f" if {{ method {method} }} {{ path {path} }}"
            )
    yield f"    http-request track-sc2 var(txn.kind) table {REFUSALS_TABLE} if {limited}"
    yield f"    http-request sc-inc-gpc0(2) if {limited}"
    # One access-log line per key and burst, not one per refused request (they are counted).
    yield f"    http-request set-log-level silent if {limited} !{{ var(txn.note) -m found }}"
    retry = "hdr Retry-After %[var(txn.retry)]"
    yield f"    http-request deny {_answer(429)} {retry} if {limited}"


def _management(settings: FrontSettings) -> list[str]:
    limits = parse_rate_limits(settings.rate_limit_management)
    return [
        "frontend management",
        *_bind_tls(
            settings,
            settings.management_port,
            f"crt {settings.management_cert} alpn h2,http/1.1 ssl-min-ver TLSv1.2",
        ),
        *_request_basics(settings, settings.management_max_body_bytes),
        # The unit's metrics are served on the metrics listener only.
        f"    http-request return status 404 {_DEFAULT} if {{ path /metrics }}",
        "    http-request track-sc1 var(txn.client) table management_addresses",
        *_limit_checks(limits, 1, "TRUE"),
        *_refuse_if_limited("management"),
        "    default_backend management_app",
    ]


def _connector(settings: FrontSettings) -> list[str]:
    limits = parse_rate_limits(settings.rate_limit_connector)
    cert = settings.connector_cert
    # `verify optional` with every error ignored: any certificate is taken, whatever its
    # purpose, issuer or dates, and the handshake still proves the client holds its key.
    client_auth = f"verify optional ca-file {cert} ca-ignore-err all crt-ignore-err all"
    return [
        "frontend connector",
        *_bind_tls(
            settings, settings.connector_port, f"crt {cert} ssl-min-ver TLSv1.3 {client_auth}"
        ),
        *_request_basics(settings, settings.connector_max_body_bytes),
        f"    http-request set-header {CLIENT_CERT_HEADER} %[ssl_c_der,base64]"
        " if { ssl_c_used }",
        # MicroCloud reads our certificate from `GET /` before every call: never limited.
        "    acl probe path /",
        "    http-request track-sc0 ssl_c_der,sha2(256) table connector_certificates"
        " if { ssl_c_used } !probe",
        "    http-request track-sc1 var(txn.client) table connector_addresses if !probe",
        "    acl enrolled sc_get_gpt0(0) eq 1",
        *_limit_checks(limits, 0, "enrolled !probe"),
        *_limit_checks(limits, 1, "!enrolled !probe"),
        *_refuse_if_limited("connector"),
        f"    http-response sc-set-gpt0(0) 1 if {{ res.hdr({ENROLLED_HEADER}) -m str 1 }}",
        f"    http-response sc-set-gpt0(0) 0 if {{ res.hdr({ENROLLED_HEADER}) -m str 0 }}",
        # A certificate the app refused is no longer taken for an enrolled cluster's.
        f"    http-response sc-set-gpt0(0) 0 if {{ status 403 }}"
        f" !{{ res.hdr({ENROLLED_HEADER}) -m found }}",
        f"    http-response del-header {ENROLLED_HEADER}",
        # MicroCloud's reverse tunnel: a websocket the tunnel process holds (design D13).
        "    use_backend tunnel_app if { path /1.0/remote-cluster/ws }",
        "    default_backend connector_app",
    ]


def _metrics(settings: FrontSettings) -> list[str]:
    return [
        "frontend metrics",
        *_binds(settings.metrics_port),
        "    no log",
        f"    http-request return status 404 {_DEFAULT} unless {{ path /metrics }}",
        f"    http-request del-header {CLIENT_CERT_HEADER}",
        "    default_backend management_app",
    ]


def _health(settings: FrontSettings) -> list[str]:
    return [
        "frontend health",
        f"    bind 127.0.0.1:{settings.health_port}",
        "    no log",
        '    http-request return status 200 content-type text/plain string "ok\\n"'
        " if { path /health/haproxy }",
        "    http-request set-var(txn.app) str(management)"
        " if { path /health/management /ready/management }",
        "    http-request set-var(txn.app) str(connector)"
        " if { path /health/connector /ready/connector }",
        "    http-request set-var(txn.app) str(tunnel) if { path /health/tunnel /ready/tunnel }",
        "    http-request set-var(txn.app) str(forwarder) if { path /health/forwarder }",
        f"    http-request return status 404 {_DEFAULT} unless {{ var(txn.app) -m found }}",
        f"    http-request del-header {CLIENT_CERT_HEADER}",
        "    http-request set-path /healthz if { path_beg /health/ }",
        "    http-request set-path /1.0/status if { path_beg /ready/ }",
        "    use_backend connector_app if { var(txn.app) -m str connector }",
        "    use_backend tunnel_app if { var(txn.app) -m str tunnel }",
        "    use_backend forwarder_app if { var(txn.app) -m str forwarder }",
        "    default_backend management_app",
    ]


def _answer(status: int) -> str:
    """`status … content-type … string … hdr …` of an LXD error envelope with `status`."""
    body = json.dumps(
        {
            "type": "error",
            "status": "",
            "status_code": 0,
            "operation": "",
            "error_code": status,
            "error": _ERRORS[status],
            "metadata": None,
        },
        separators=(",", ":"),
    )
    # Double quotes let `\\n` end the body with a newline, as the apps' envelopes do.
    quoted = body.replace("\\", "\\\\").replace('"', '\\"')
    headers = " ".join(f'hdr {name} "{value}"' for name, value in SECURITY_HEADERS)
    return f'status {status} content-type application/json string "{quoted}\\n" {headers}'
