"""The front's configuration as rendered: valid for the real HAProxy, envelopes everywhere."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from cluster_manager.front import FrontSettings, RateLimit, RateLimitError, parse_rate_limits
from cluster_manager.front.config import SECURITY_HEADERS

from tools import pki


@pytest.mark.parametrize(
    ("spec", "limits"),
    [
        ("60/minute", (RateLimit(60, 60),)),
        ("10 per second", (RateLimit(10, 1),)),
        ("10/second;600/hour", (RateLimit(10, 1), RateLimit(600, 3600))),
        ("5/2 days", (RateLimit(5, 172800),)),
        ("100 per 5 minutes", (RateLimit(100, 300),)),
    ],
)
def test_rate_limits_parse_to_amounts_per_period(spec: str, limits: tuple[RateLimit, ...]):
    assert parse_rate_limits(spec) == limits


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("lots", "is not a rate limit like 60/minute"),
        ("10/fortnight", "is not a rate limit like 60/minute"),
        ("1/month", "is not a rate limit like 60/minute"),
        ("0/minute", "at least 1"),
        ("1/second;2/minute;3/hour", "at most 2 limits"),
        ("1/31 days", "between 1 second and 30 days"),
    ],
)
def test_unusable_rate_limits_are_refused_with_a_reason(spec: str, message: str):
    with pytest.raises(RateLimitError, match=message):
        parse_rate_limits(spec)


def test_retry_after_is_one_requests_share_of_the_period_plus_one():
    assert RateLimit(60, 60).retry_after_seconds == 2
    assert RateLimit(5, 60).retry_after_seconds == 13


def _settings(directory: Path, **changes: object) -> FrontSettings:
    for stem in ("management", "connector"):
        pki.self_signed(f"{stem}.test", dns_names=[f"{stem}.test"]).write(directory, stem)
    return FrontSettings(
        management_cert=str(directory / "management.crt"),
        connector_cert=str(directory / "connector.crt"),
        run_dir=str(directory),
        **changes,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"proxy_protocol": True, "trusted_proxies": ("10.0.0.0/8", "fd00::/8")},
        {"rate_limit_connector": "10/second;600/hour", "rate_limit_management": "5 per 2 days"},
    ],
    ids=["plain", "behind-traefik", "two-limits"],
)
def test_haproxy_accepts_the_rendered_configuration(tmp_path: Path, changes: dict):
    config = tmp_path / "haproxy.cfg"
    config.write_text(render(_settings(tmp_path, **changes)))

    result = subprocess.run(
        ["haproxy", "-c", "-f", str(config)], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout + result.stderr


def render(settings: FrontSettings) -> str:
    from cluster_manager.front import render_front_config

    return render_front_config(settings)


@pytest.mark.parametrize("status", [400, 403, 404, 405, 408, 413, 429, 500, 501, 502, 503, 504])
def test_every_error_haproxy_makes_itself_is_an_envelope_with_security_headers(
    tmp_path: Path, status: int
):
    text = render(_settings(tmp_path))

    (line,) = [
        ln for ln in text.splitlines() if ln.strip().startswith(f"http-error status {status} ")
    ]
    assert f'\\"error_code\\":{status},' in line
    assert "content-type application/json" in line
    for name, value in SECURITY_HEADERS:
        assert f'hdr {name} "{value}"' in line


def test_the_connector_accepts_any_client_certificate_on_tls_1_3_only(tmp_path: Path):
    text = render(_settings(tmp_path))

    binds = re.findall(r"^\s*bind \S+:9443 .*$", text, re.MULTILINE)
    assert len(binds) == 2
    for bind in binds:
        assert "ssl-min-ver TLSv1.3" in bind
        assert "verify optional" in bind
        assert "ca-ignore-err all crt-ignore-err all" in bind


def test_a_caller_can_never_send_its_own_client_certificate_header(tmp_path: Path):
    text = render(_settings(tmp_path))

    for frontend in re.split(r"^frontend ", text, flags=re.MULTILINE)[1:]:
        assert "http-request del-header X-Client-Cert" in frontend, frontend.split()[0]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"management_port": 9443}, "must differ"),
        ({"rate_limit_connector": "often"}, "is not a rate limit"),
        ({"trusted_proxies": ("10.0.0.0/33",)}, "10.0.0.0/33"),
        ({"connector_max_body_bytes": 0}, "must be positive"),
    ],
)
def test_settings_that_would_break_the_configuration_are_refused(
    tmp_path: Path, changes: dict, message: str
):
    with pytest.raises(ValueError, match=re.escape(message)):
        _settings(tmp_path, **changes)


def test_paths_that_would_inject_configuration_are_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="unsafe path"):
        FrontSettings(
            management_cert="/etc/x.crt\n    bind :80", connector_cert="/c.crt", run_dir="/run"
        )
