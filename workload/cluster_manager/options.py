"""The charm's configuration options, defined once: type, default, rules, setting and docs.

`Options` is a dataclass whose fields are the charm's options (an option's name with dashes
as underscores), each with its default and, in the field's metadata, its `Spec`: the `MCM_*`
setting it reaches the workload as, the rules its value obeys, an example value for the fix
hint and a one-line summary for README.md. Everything else follows from it:

- the charm loads its config into `Options` (`self.load_config(Options)`), whose
  `__post_init__` checks every option and raises `InvalidOption` naming the one to fix;
- `option_env` renders the settings of the env file, in the one env-file format of
  `format_env_file` / `parse_env_file`, which the charm writes and `Settings` reads;
- the workload's `Settings` takes its defaults and checks from here (`check_setting`), so an
  option means the same in the charm and in the workload;
- README.md's Configuration table is generated from here (`python -m tools.options_doc`), and
  tests compare config.yaml (what Juju reads) and docs/workload-contract.md with this table.

Standard library only (plus `.front.rate_limits`, which is too): charmcraft.yaml copies this
module into the charm's lib/ directory, as it does `cluster_manager.front`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .front.rate_limits import RateLimitError, parse_rate_limits

ENV_PREFIX = "MCM_"
"""Every workload setting is an environment variable (or env-file line) with this prefix."""
LOG_LEVELS = ("debug", "info", "warning", "error")
OIDC_SCOPE = "openid email profile offline_access"
"""Scopes of the web UI login: the workload asks for them; the charm registers them (`oauth`)."""
DEFAULT_TRUSTED_PROXIES = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fc00::/7"
"""Where Kubernetes pod networks are allocated from.

The private ranges of every common CNI, the shared range 100.64.0.0/10 (EKS custom networking,
carrier-grade NAT) and IPv6 unique-local addresses (the IPv6 pod ranges of Calico, Cilium,
kubeadm and Canonical Kubernetes); clusters whose pods get global IPv6 addresses (EKS IPv6) list
theirs. Traefik connects from its pod address, which changes whenever its pod is recreated and
is not in the traefik-route data, so we trust the ranges, not an address.
"""

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DNS_NAME = re.compile(rf"^{_LABEL}(\.{_LABEL})+$")
_HTTP_URL = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
_SPEC = "cluster_manager.option"
"""The key of a field's `Spec` in its metadata (ops reads the key `alias` there: not that)."""
_JUJU_TYPES = {"str": "string", "int": "int", "bool": "boolean", "float": "float"}

Rule = Callable[[str, Any], None]
"""Checks a value: `rule(name, value)` raises ValueError with a message that starts with `name`."""


class InvalidOption(ValueError):
    """An option has an unusable value; `option` is the one to set, `example` a sample value."""

    def __init__(self, option: str, message: str, example: str = "…"):
        super().__init__(message)
        self.option = option
        self.example = example


# Rules shared by the charm and the workload


def http_url(name: str, value: str) -> None:
    """An http(s) URL without query or fragment; empty means unset."""
    if value and not _HTTP_URL.match(value):
        raise ValueError(f"{name} {value!r} is not an http(s) URL")


def rate_limits(name: str, value: str) -> None:
    """The rate-limit syntax of `parse_rate_limits` ("60/minute", "10/second;600/hour")."""
    try:
        parse_rate_limits(value)
    except RateLimitError as error:
        raise ValueError(f"{name} {error}") from None


def networks(name: str, value: str) -> None:
    """A comma-separated list of at least one CIDR."""
    parse_networks(value, name)


def parse_networks(text: str, name: str = "trusted-proxies") -> tuple[str, ...]:
    """Return the networks of a comma-separated CIDR list (at least one), normalised.

    Raises:
        InvalidOption: an entry is not a network address (host bits set, bad syntax).
    """
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    if not entries:
        raise InvalidOption(name, f"{name} must list at least one CIDR", DEFAULT_TRUSTED_PROXIES)
    found: list[str] = []
    for entry in entries:
        try:
            network = ipaddress.ip_network(entry)
        except ValueError:
            hint = ""
            with contextlib.suppress(ValueError):
                hint = f" (did you mean {ipaddress.ip_network(entry, strict=False)}?)"
            raise InvalidOption(name, f"{name}: {entry!r} is not a CIDR{hint}") from None
        if str(network) not in found:
            found.append(str(network))
    return tuple(found)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Spec:
    """What the table knows about one option besides its type and default."""

    summary: str
    """Its row in README.md's Configuration table (markdown, one line; bounds are added)."""
    example: str = "…"
    """A valid value, shown in the fix hint `juju config <app> <option>=<example>`."""
    env: str | None = None
    """The `MCM_*` setting the workload reads the value from; None when the value does not
    reach the apps as itself (management-api-domain becomes the certificate, the routes and
    `MCM_PUBLIC_URL`; trusted-proxies is the front's; a secret's content is written, not its
    ID)."""
    bounds: tuple[int, int] | None = None
    """Inclusive bounds of an int; config.yaml's description states them."""
    choices: tuple[str, ...] = ()
    rule: Rule | None = None
    """A check of the value's syntax (URL, rate limits, networks)."""
    required: bool = False
    """Juju's default is empty but the charm cannot run without a value (the workload setting
    is required too)."""
    dns_name: bool = False
    """A DNS name with at least one dot, as certificates and Traefik's SNI routes need; the
    charm checks it, the workload takes any host name (local runs use `localhost`)."""
    differs_from: str | None = None
    """Another option this one must not equal."""
    login: bool = False
    """A web UI login option: `OIDCLogin` reads and checks it, because a bad login setting
    blocks the login, not the unit, and the `oauth` relation overrides it; it reaches the env
    file through the login settings, not through `option_env`."""
    secret: bool = False
    """A Juju `secret` option: ops passes an `ops.Secret`, Juju's config holds its ID."""

    def check(self, name: str, value: Any) -> None:
        """Apply the rules both the charm and the workload apply; `name` starts the message.

        Raises:
            ValueError: the value breaks the bounds, the choices or the rule.
        """
        if self.bounds is not None:
            low, high = self.bounds
            if not low <= value <= high:
                raise ValueError(f"{name} must be between {low} and {high}, got {value}")
        if self.choices and value not in self.choices:
            raise ValueError(f"{name} must be one of {', '.join(self.choices)}")
        if self.rule is not None:
            self.rule(name, value)


_T = TypeVar("_T")


def _option(default: _T, **spec: Any) -> _T:
    # A dataclass field with its Spec; typed as its default so that the class reads plainly.
    return dataclasses.field(default=default, metadata={_SPEC: Spec(**spec)})


@dataclasses.dataclass(frozen=True, kw_only=True)
class Options:
    """The charm's configuration options (config.yaml declares the same to Juju).

    Raises:
        InvalidOption: on construction, naming the first option with an unusable value.
    """

    management_api_domain: str = _option(
        "",
        summary="Host name of the management API and UI; certificate name and Traefik SNI"
        " route. A valid DNS name, different from `cluster-connector-domain`.",
        example="<host name>",
        required=True,
        dns_name=True,
    )
    cluster_connector_domain: str = _option(
        "",
        summary="Host name clusters connect to; put in join tokens (port 443) and the SAN of"
        " the connector certificate. Changing it does not replace the certificate: run"
        " `rotate-connector-certificate`.",
        example="<host name>",
        env="MCM_CONNECTOR_DOMAIN",
        required=True,
        dns_name=True,
        differs_from="management-api-domain",
    )
    heartbeat_interval: int = _option(
        60,
        summary="Advisory only: returned to clusters as `next_update_in_seconds`, which"
        " MicroCloud ignores. A cluster beats at its own `update_interval_seconds` (see"
        " [Supported MicroCloud versions](#supported-microcloud-versions)).",
        env="MCM_HEARTBEAT_INTERVAL",
        bounds=(10, 3600),
        example="60",
    )
    offline_after: int = _option(
        180,
        summary="Seconds without a heartbeat after which a cluster is shown offline in the UI,"
        " the API, the CLI, `/metrics` and the `MicroCloudClusterSilent` alert. Keep it a few"
        " times the clusters' `update_interval_seconds` (MicroCloud's default: 60).",
        env="MCM_OFFLINE_AFTER",
        # The default spans three of MicroCloud's default 60 s intervals; the low end serves
        # fleets whose clusters were set to beat faster (update_interval_seconds).
        bounds=(30, 86400),
        example="180",
    )
    join_token_expiry: int = _option(
        86400,
        summary="Default join token lifetime in seconds (`enroll-cluster` without `expiry`).",
        env="MCM_JOIN_TOKEN_EXPIRY",
        bounds=(60, 30 * 86400),
        example="86400",
    )
    connector_max_body_size: int = _option(
        64,
        summary="Largest connector request body in MiB; bigger ones get `413` in the LXD"
        " envelope and are not stored. A heartbeat carries every member's LXD metrics, about"
        " 10 KB per instance (a 2,000-instance cluster sends more than 16 MiB).",
        env="MCM_CONNECTOR_MAX_BODY_MIB",
        bounds=(1, 1024),
        example="64",
    )
    rate_limit_connector: str = _option(
        "60/minute",
        summary="Connector rate limit for the whole unit: per certificate for enrolled"
        " clusters, per client address for every other caller (no certificate, or one no"
        " cluster enrolled), so fresh certificates buy no fresh budget."
        " `N/second\\|minute\\|hour\\|day` or `N per M minutes`; at most two limits joined by"
        " `;` (`10/second;600/hour`). MicroCloud's certificate probe (`GET /`) is never"
        " limited.",
        env="MCM_RATE_LIMIT_CONNECTOR",
        rule=rate_limits,
        example="60/minute",
    )
    rate_limit_management: str = _option(
        "600/minute",
        summary="Management API and UI rate limit per client address for the whole unit, same"
        " syntax.",
        env="MCM_RATE_LIMIT_MANAGEMENT",
        rule=rate_limits,
        example="60/minute",
    )
    log_level: str = _option(
        "info",
        summary="Log level of the management and connector services.",
        env="MCM_LOG_LEVEL",
        choices=LOG_LEVELS,
        example="info",
    )
    oidc_issuer: str = _option(
        "",
        summary="Issuer URL of an external OpenID Connect provider for the web UI login; needs"
        " `oidc-client-id`. Ignored while `oauth` is integrated.",
        env="MCM_OIDC_ISSUER",
        rule=http_url,
        example="https://<issuer>",
        login=True,
    )
    oidc_client_id: str = _option(
        "",
        summary="Client ID registered at the issuer, with redirect URI"
        " `https://<management-api-domain>/oidc/callback`.",
        env="MCM_OIDC_CLIENT_ID",
        example="<client ID>",
        login=True,
    )
    oidc_client_secret: object = _option(
        None,
        summary="Juju user secret with key `client-secret` (`juju add-secret oidc"
        " client-secret=…`; `juju grant-secret oidc <app>`; `juju config <app>"
        " oidc-client-secret=secret:<id>`). Never plain text; unset for a public client.",
        example="secret:<id>",
        login=True,
        secret=True,
    )
    oidc_audience: str = _option(
        "",
        summary="`audience` sent in the authorization request (Auth0).",
        env="MCM_OIDC_AUDIENCE",
        login=True,
    )
    oidc_groups_claim: str = _option(
        "mcm-idp-groups",
        summary="Claim listing the user's groups (JSON array), read from the ID token or the"
        " userinfo endpoint. Also used with `oauth`.",
        env="MCM_OIDC_GROUPS_CLAIM",
        login=True,
    )
    oidc_admin_group: str = _option(
        "admins",
        summary='Group whose members may use the web UI; others see "not authorized".',
        env="MCM_OIDC_ADMIN_GROUP",
        login=True,
    )
    grafana_url: str = _option(
        "",
        summary="Grafana's base URL as operators open it (e.g. `https://grafana.example.com`);"
        " when set, the web UI links each cluster to the fleet dashboard filtered to it.",
        env="MCM_GRAFANA_URL",
        rule=http_url,
        example="https://grafana.example.com",
    )
    trusted_proxies: str = _option(
        DEFAULT_TRUSTED_PROXIES,
        summary="Comma-separated CIDRs whose PROXY protocol header HAProxy believes for the"
        " client address once Traefik is integrated: the Kubernetes pod networks (Traefik's"
        " pod address is not stable). The default covers the private IPv4 ranges,"
        " 100.64.0.0/10 (EKS custom networking) and IPv6 unique-local pod ranges; add yours if"
        " pods get other addresses (e.g. global IPv6 on EKS).",
        rule=networks,
        example=DEFAULT_TRUSTED_PROXIES,
    )

    def __post_init__(self) -> None:
        """Check every option but the login ones, in table order."""
        for field in dataclasses.fields(self):
            spec = spec_of(field)
            if not spec.login:
                _check_option(self, option_name(field), spec, getattr(self, field.name))

    @property
    def trusted_proxy_networks(self) -> tuple[str, ...]:
        """The trusted-proxies option as normalised networks, in the order given."""
        return parse_networks(self.trusted_proxies)


def _check_option(options: Options, option: str, spec: Spec, value: Any) -> None:
    if spec.required and not value:
        raise InvalidOption(option, f"{option} is not set", spec.example)
    if spec.dns_name and not _DNS_NAME.match(value):
        raise InvalidOption(option, f"{option} {value!r} is not a valid DNS name", spec.example)
    if spec.differs_from and value == getattr(options, field_name(spec.differs_from)):
        raise InvalidOption(option, f"{spec.differs_from} and {option} must differ", spec.example)
    try:
        spec.check(option, value)
    except InvalidOption:
        raise
    except ValueError as error:
        raise InvalidOption(option, str(error), spec.example) from None


def spec_of(field: dataclasses.Field[Any]) -> Spec:
    """The spec of one of `Options`' fields."""
    return field.metadata[_SPEC]


def option_name(field: dataclasses.Field[Any]) -> str:
    """The Juju option name of one of `Options`' fields."""
    return field.name.replace("_", "-")


def field_name(option: str) -> str:
    """The `Options` field of a Juju option name."""
    return option.replace("-", "_")


def juju_type(field: dataclasses.Field[Any]) -> str:
    """The option's type as config.yaml declares it."""
    return "secret" if spec_of(field).secret else _JUJU_TYPES[str(field.type)]


FIELDS: tuple[dataclasses.Field[Any], ...] = dataclasses.fields(Options)
SPECS: Mapping[str, Spec] = {option_name(field): spec_of(field) for field in FIELDS}
"""Every option's spec, by option name, in table order."""
DEFAULTS: Mapping[str, Any] = {option_name(field): field.default for field in FIELDS}
"""Every option's default, by option name."""
SETTING_OPTIONS: Mapping[str, str] = {
    spec.env: option for option, spec in SPECS.items() if spec.env
}
"""The option behind each `MCM_*` setting that comes from one."""


def check_setting(variable: str, value: Any) -> None:
    """Apply the rules of the option behind `variable` (an `MCM_*` name), if any.

    Raises:
        ValueError: the message starts with the variable.
    """
    option = SETTING_OPTIONS.get(variable)
    if option is not None:
        SPECS[option].check(variable, value)


def option_env(options: Options) -> dict[str, str]:
    """The `MCM_*` settings of every option that reaches the apps as itself.

    The login options are left to the login settings (the `oauth` relation may override them).
    """
    return {
        spec.env: str(getattr(options, field.name))
        for field in FIELDS
        if (spec := spec_of(field)).env and not spec.login
    }


# The env file: the settings as `KEY=VALUE` lines, written by the charm (and the local stack),
# read by `Settings.from_env` through `MCM_ENV_FILE`.


def format_env_file(values: Mapping[str, str]) -> str:
    """Return `KEY=VALUE` lines, sorted by key; values are taken as they are, without quoting.

    Raises:
        ValueError: a key or value holds a newline, or a key is empty or holds `=`.
    """
    for key, value in values.items():
        if "\n" in key or "\n" in value:
            raise ValueError(f"{key}: values may not contain newlines")
        if not key.strip() or "=" in key:
            raise ValueError(f"{key!r} is not a setting name")
    return "".join(f"{key}={values[key]}\n" for key in sorted(values))


def parse_env_file(text: str, source: str = "env file") -> dict[str, str]:
    """Return the settings of `KEY=VALUE` lines; blank lines and `#` comments are skipped.

    Surrounding whitespace of a line is dropped, nothing else: no quoting, no expansion.

    Raises:
        ValueError: a line is not `KEY=VALUE` (the message names `source` and the line).
    """
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{source}:{number}: expected KEY=VALUE")
        values[key.strip()] = value
    return values
