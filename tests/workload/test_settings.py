"""The workload's settings: what the charm renders, read with the option table's rules."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from cluster_manager.options import (
    DEFAULTS,
    SETTING_OPTIONS,
    SPECS,
    Options,
    format_env_file,
    option_name,
    parse_env_file,
)
from cluster_manager.options import FIELDS as OPTIONS_FIELDS
from cluster_manager.settings import Settings, SettingsError, read_env_file, setting_field

REQUIRED = {"MCM_DATABASE_URL": "postgresql://db/cm", "MCM_CONNECTOR_DOMAIN": "cc.example.com"}


def test_offline_after_defaults_to_180_seconds_whatever_the_heartbeat_interval() -> None:
    settings = Settings.from_env({**REQUIRED, "MCM_HEARTBEAT_INTERVAL": "10"})

    assert settings.offline_after == 180


def test_the_connector_body_limit_is_read_in_mib_and_applied_in_bytes() -> None:
    settings = Settings.from_env({**REQUIRED, "MCM_CONNECTOR_MAX_BODY_MIB": "3"})

    assert settings.connector_max_body_bytes == 3 * 1024 * 1024


@pytest.mark.parametrize("variable", ["MCM_OFFLINE_AFTER", "MCM_CONNECTOR_MAX_BODY_MIB"])
def test_a_setting_that_is_not_positive_is_refused(variable: str) -> None:
    with pytest.raises(SettingsError, match=f"{variable} must be positive, got 0"):
        Settings.from_env({**REQUIRED, variable: "0"})


# The settings that come from charm options follow the option table (cluster_manager.options).

OPTION_SETTINGS = sorted(SETTING_OPTIONS)
FIELDS = {field.name: field for field in dataclasses.fields(Settings)}
OPTION_FIELDS = {option_name(field): field for field in OPTIONS_FIELDS}


@pytest.mark.parametrize("variable", OPTION_SETTINGS)
def test_settings_defaults_and_types_are_the_option_table_ones(variable: str) -> None:
    option = SETTING_OPTIONS[variable]
    field = FIELDS.get(setting_field(variable))

    assert field is not None, f"Settings has no field for {variable} (option {option})"
    assert field.type == OPTION_FIELDS[option].type
    if SPECS[option].required:
        assert field.default is dataclasses.MISSING
    else:
        assert field.default == DEFAULTS[option]


def test_settings_built_from_nothing_but_the_required_have_the_option_defaults() -> None:
    settings = Settings.from_env(REQUIRED)

    for variable, option in SETTING_OPTIONS.items():
        if not SPECS[option].required:
            assert getattr(settings, setting_field(variable)) == DEFAULTS[option], variable


@pytest.mark.parametrize("option", [o for o, spec in SPECS.items() if spec.env and spec.bounds])
def test_settings_take_the_option_bounds(option: str) -> None:
    spec = SPECS[option]
    assert spec.env is not None and spec.bounds is not None
    low, high = spec.bounds

    for value in (low, high):
        settings = Settings.from_env({**REQUIRED, spec.env: str(value)})
        assert getattr(settings, setting_field(spec.env)) == value
    for value in (low - 1, high + 1):
        if value <= 0:
            continue  # "must be positive", as every integer setting
        with pytest.raises(
            SettingsError, match=f"^{spec.env} must be between {low} and {high}, got {value}$"
        ):
            Settings.from_env({**REQUIRED, spec.env: str(value)})


def test_the_heartbeat_interval_is_10_to_3600_as_in_the_charm() -> None:
    with pytest.raises(SettingsError, match="MCM_HEARTBEAT_INTERVAL must be between 10 and 3600"):
        Settings.from_env({**REQUIRED, "MCM_HEARTBEAT_INTERVAL": "5"})


# Values the charm and the workload must judge alike: (option, value, valid).
SAMPLES = [
    ("heartbeat-interval", 9, False),
    ("heartbeat-interval", 3600, True),
    ("offline-after", 29, False),
    ("join-token-expiry", 2592001, False),
    ("connector-max-body-size", 1024, True),
    ("connector-max-body-size", 1025, False),
    ("rate-limit-connector", "10/second;600/hour", True),
    ("rate-limit-connector", "lots", False),
    ("rate-limit-management", "5/2 days", True),
    ("rate-limit-management", "1/second;1/minute;1/hour", False),
    ("log-level", "warning", True),
    ("log-level", "verbose", False),
    ("grafana-url", "https://example.com/cos-grafana", True),
    ("grafana-url", "grafana.example.com", False),
    ("grafana-url", "https://grafana.example.com/?orgId=1", False),
    ("oidc-issuer", "https://idp.example.com/realms/ops", True),
    ("oidc-issuer", "idp.example.com", False),
]


def _charm_accepts(option: str, value: Any) -> bool:
    try:
        if SPECS[option].login:
            SPECS[option].check(option, value)  # what the charm's login check applies
        else:
            Options(
                management_api_domain="cm.example.com",
                cluster_connector_domain="cc.example.com",
                **{OPTION_FIELDS[option].name: value},
            )
    except ValueError:
        return False
    return True


def _workload_accepts(option: str, value: object) -> bool:
    spec = SPECS[option]
    assert spec.env is not None
    env = {**REQUIRED, spec.env: str(value)}
    if option == "oidc-issuer":
        env["MCM_OIDC_CLIENT_ID"] = "cluster-manager"
    try:
        Settings.from_env(env)
    except SettingsError:
        return False
    return True


@pytest.mark.parametrize(("option", "value", "valid"), SAMPLES)
def test_the_charm_and_the_workload_judge_an_option_alike(
    option: str, value: object, valid: bool
) -> None:
    assert _charm_accepts(option, value) is valid
    assert _workload_accepts(option, value) is valid


def test_the_workload_takes_any_host_name_for_the_connector() -> None:
    settings = Settings.from_env({**REQUIRED, "MCM_CONNECTOR_DOMAIN": "localhost"})

    assert settings.connector_domain == "localhost"


# The env file: one format, written by the charm (format_env_file), read here.


def test_the_env_file_the_charm_writes_is_read_back_unchanged(tmp_path: Path) -> None:
    values = {
        "MCM_DATABASE_URL": "postgresql://u:p%3D@db:5432/cm?sslmode=require",
        "MCM_CONNECTOR_DOMAIN": "cc.example.com",
        "MCM_REMOTE_WRITE_URLS": "",
        "MCM_RATE_LIMIT_CONNECTOR": "10/second;600/hour",
    }
    path = tmp_path / "cluster-manager.env"
    path.write_text(format_env_file(values))

    assert read_env_file(path) == values
    assert parse_env_file(path.read_text()) == values
    assert Settings.from_env({"MCM_ENV_FILE": str(path)}).connector_domain == "cc.example.com"


def test_the_env_file_is_sorted_key_value_lines() -> None:
    assert format_env_file({"MCM_B": "2", "MCM_A": "x=y"}) == "MCM_A=x=y\nMCM_B=2\n"


def test_the_env_file_skips_comments_and_blank_lines() -> None:
    assert parse_env_file("# written by the charm\n\n  MCM_A=1  \n") == {"MCM_A": "1"}


def test_a_value_with_a_newline_cannot_be_written() -> None:
    with pytest.raises(ValueError, match="MCM_A: values may not contain newlines"):
        format_env_file({"MCM_A": "1\nMCM_B=2"})


def test_a_line_that_is_not_a_setting_is_refused_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "broken.env"
    path.write_text("MCM_A=1\nnonsense\n")

    with pytest.raises(SettingsError, match=rf"^{re.escape(str(path))}:2: expected KEY=VALUE$"):
        read_env_file(path)


def test_the_database_password_never_shows_in_the_settings_repr() -> None:
    settings = Settings.from_env(
        {**REQUIRED, "MCM_DATABASE_URL": "postgresql://mcm:hunter2-secret@db:5432/mcm"}
    )

    assert "hunter2-secret" not in repr(settings)
    assert settings.database_url.endswith("@db:5432/mcm")
