"""Our OpenAPI document: valid, and covering everything the published contract promises.

The contract sits beside the repository (`../shared`), which a plain clone does not have:
the comparisons then skip, saying so; our own document is always checked.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from cluster_manager.protocol.rules import NAME_PATTERN
from openapi_spec_validator import validate

from tests.support.openapi import CONTRACT_MISSING, OUR_DOCUMENT, PUBLISHED_CONTRACT

METHODS = ("get", "put", "post", "patch", "delete")


def _load(path: Any) -> dict[str, Any]:
    if path == PUBLISHED_CONTRACT and not path.is_file():
        pytest.skip(CONTRACT_MISSING)
    return yaml.safe_load(path.read_text())


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def test_our_document_is_valid_openapi() -> None:
    validate(_load(OUR_DOCUMENT))


def test_our_document_states_the_name_rule_the_apps_apply() -> None:
    schema = _load(OUR_DOCUMENT)["components"]["schemas"]["JoinTokenPost"]

    assert schema["properties"]["cluster_name"]["pattern"] == f"^{NAME_PATTERN}$"


def test_published_contract_is_found_beside_the_repository() -> None:
    assert _load(PUBLISHED_CONTRACT)["openapi"].startswith("3.")


def test_every_contract_operation_is_in_our_document() -> None:
    ours = _operations(_load(OUR_DOCUMENT))

    missing = set(_operations(_load(PUBLISHED_CONTRACT))) - set(ours)

    assert not missing


def test_every_contract_success_status_is_documented_by_us() -> None:
    ours = _operations(_load(OUR_DOCUMENT))
    contract = _operations(_load(PUBLISHED_CONTRACT))

    for key, operation in contract.items():
        for status in operation["responses"]:
            if status.startswith(("2", "4")):
                assert status in ours[key]["responses"], (key, status)


def test_our_cluster_requires_everything_the_contract_requires() -> None:
    ours = _load(OUR_DOCUMENT)["components"]["schemas"]["RemoteCluster"]["required"]
    contract = _load(PUBLISHED_CONTRACT)["components"]["schemas"]["RemoteCluster"]["required"]

    assert set(contract) <= set(ours)


def test_our_configuration_requires_every_contract_key() -> None:
    ours = _load(OUR_DOCUMENT)["components"]["schemas"]["Configuration"]["required"]
    contract = _load(PUBLISHED_CONTRACT)["components"]["schemas"]["Configuration"]["required"]

    assert set(contract) <= set(ours)
