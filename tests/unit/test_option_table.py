"""The option table (cluster_manager.options) is the one definition of the charm's options.

config.yaml, README.md's Configuration table and docs/workload-contract.md's settings must say
what the table says; the charm's env file must build the workload's Settings it describes.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from cluster_manager.options import (
    DEFAULTS,
    FIELDS,
    SPECS,
    InvalidOption,
    Options,
    format_env_file,
    juju_type,
    option_env,
    option_name,
    parse_env_file,
)
from cluster_manager.settings import Settings, setting_field

from charm_config import CharmConfig
from tests.unit.builders import CONFIG, ROOT, load_yaml
from tools import options_doc
from workload import render_env

OPTIONS = [option_name(field) for field in FIELDS]
BOUNDED = [option for option, spec in SPECS.items() if spec.bounds is not None]


def valid_options(**changes: Any) -> Options:
    """Options with both domains set, and `changes` (field names)."""
    return Options(
        management_api_domain="cm.example.com",
        cluster_connector_domain="cc.example.com",
        **changes,
    )


def yaml_options() -> dict[str, dict]:
    return load_yaml("config.yaml")["options"]


def contract_rows() -> dict[str, list[str]]:
    """docs/workload-contract.md's settings table: variable -> its cells."""
    rows = {}
    for line in (ROOT / "docs" / "workload-contract.md").read_text().splitlines():
        if match := re.match(r"^\| `(MCM_[A-Z_]+)` +\|", line):
            rows[match[1]] = [cell.strip() for cell in line.strip("|").split(" | ")]
    return rows


def test_the_charm_config_is_the_table():
    assert CharmConfig is Options


def test_config_yaml_declares_the_table_options_in_its_order():
    assert list(yaml_options()) == OPTIONS


@pytest.mark.parametrize("field", FIELDS, ids=OPTIONS)
def test_config_yaml_type_and_default_are_the_table_ones(field: dataclasses.Field):
    declared = yaml_options()[option_name(field)]

    assert declared["type"] == juju_type(field)
    if declared["type"] == "secret":
        assert "default" not in declared
        assert field.default is None
    else:
        assert declared["default"] == field.default
        assert type(declared["default"]) is type(field.default)


@pytest.mark.parametrize("option", BOUNDED)
def test_config_yaml_states_each_bound(option: str):
    bounds = SPECS[option].bounds
    assert bounds is not None

    assert f"Between {bounds[0]} and {bounds[1]}" in yaml_options()[option]["description"]


@pytest.mark.parametrize("option", [o for o, spec in SPECS.items() if spec.choices])
def test_config_yaml_lists_each_choice(option: str):
    description = yaml_options()[option]["description"]

    assert all(choice in description for choice in SPECS[option].choices)


def test_readme_configuration_table_is_generated_from_the_table():
    readme = (ROOT / "README.md").read_text()

    assert options_doc.updated(readme) == readme, "run python -m tools.options_doc"
    for option in OPTIONS:
        assert f"| `{option}` |" in readme


def test_readme_rows_show_type_default_and_bounds():
    table = options_doc.render_table()

    assert "| `heartbeat-interval` | int | 60 | " in table
    assert "Between 10 and 3600. |" in table
    assert "| `management-api-domain` | string | (required) | " in table
    assert "| `oidc-client-secret` | secret | unset | " in table
    assert '| `grafana-url` | string | `""` | ' in table
    assert "| `log-level` | string | `info` | " in table
    assert "One of `debug`, `info`, `warning`, `error`. |" in table


@pytest.mark.parametrize("option", [o for o, spec in SPECS.items() if spec.env])
def test_workload_contract_documents_each_option_setting(option: str):
    spec = SPECS[option]
    assert spec.env is not None
    row = contract_rows().get(spec.env)

    assert row is not None, f"docs/workload-contract.md has no row for {spec.env}"
    _, default, meaning = row
    if spec.required:
        assert default == "required"
    elif DEFAULTS[option] == "":
        assert default.startswith("empty")
    else:
        assert default == f"`{DEFAULTS[option]}`"
    assert f"`{option}`" in meaning
    if spec.bounds is not None:
        assert f"{spec.bounds[0]}\N{EN DASH}{spec.bounds[1]}" in meaning


def test_every_option_has_a_summary_and_an_example():
    for option, spec in SPECS.items():
        assert spec.summary.strip() and "\n" not in spec.summary, option
        assert spec.example, option


@pytest.mark.parametrize(
    "option",
    [
        o
        for o, spec in SPECS.items()
        if not spec.login and not spec.example.startswith("<") and spec.example != "…"
    ],
)
def test_the_example_of_the_fix_hint_is_a_valid_value(option: str):
    field = next(field for field in FIELDS if option_name(field) == option)
    value = int(SPECS[option].example) if field.type == "int" else SPECS[option].example

    config = valid_options(**{field.name: value})

    assert getattr(config, field.name) == value


def test_bounds_and_choices_go_with_ints_and_strings():
    for field in FIELDS:
        spec = SPECS[option_name(field)]
        if spec.bounds is not None:
            assert field.type == "int", field.name
        if spec.choices:
            assert field.type == "str", field.name
            assert field.default in spec.choices


def test_login_options_are_left_to_the_login_check():
    config = valid_options(oidc_issuer="idp.example.com")

    assert config.oidc_issuer == "idp.example.com"
    with pytest.raises(
        ValueError, match=r"^oidc-issuer 'idp\.example\.com' is not an http\(s\) URL$"
    ):
        SPECS["oidc-issuer"].check("oidc-issuer", "idp.example.com")


def test_the_first_invalid_option_in_table_order_is_reported():
    with pytest.raises(InvalidOption) as raised:
        valid_options(heartbeat_interval=1, log_level="loud")

    assert raised.value.option == "heartbeat-interval"
    assert raised.value.example == "60"


def test_option_env_renders_the_settings_of_the_options_that_reach_the_apps():
    config = valid_options(heartbeat_interval=30, grafana_url="https://g.example.com")

    env = option_env(config)

    assert set(env) == {spec.env for spec in SPECS.values() if spec.env and not spec.login}
    assert env["MCM_CONNECTOR_DOMAIN"] == "cc.example.com"
    assert env["MCM_HEARTBEAT_INTERVAL"] == "30"
    assert env["MCM_CONNECTOR_MAX_BODY_MIB"] == "64"
    assert env["MCM_GRAFANA_URL"] == "https://g.example.com"
    assert "MCM_OIDC_GROUPS_CLAIM" not in env  # the login settings write the login options


def test_the_charm_env_file_builds_the_settings_of_its_options():
    config = Options(
        management_api_domain=CONFIG["management-api-domain"],
        cluster_connector_domain=CONFIG["cluster-connector-domain"],
        heartbeat_interval=3600,
        offline_after=30,
        join_token_expiry=60,
        connector_max_body_size=1024,
        rate_limit_connector="10/second;600/hour",
        log_level="debug",
        grafana_url="https://example.com/cos-grafana",
    )
    text = format_env_file(render_env(config, "postgresql://u:p@db:5432/cm"))

    settings = Settings.from_env(parse_env_file(text))

    for field in FIELDS:
        spec = SPECS[option_name(field)]
        if spec.env and not spec.login:
            assert getattr(settings, setting_field(spec.env)) == getattr(config, field.name)
