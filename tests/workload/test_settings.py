"""The settings the charm renders for offline detection and the connector's body limit."""

from __future__ import annotations

import pytest
from cluster_manager.settings import Settings, SettingsError

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
