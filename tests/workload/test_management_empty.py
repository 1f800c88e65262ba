"""A deployment with nothing enrolled answers empty lists as `[]`, never `null` (design D5)."""

from __future__ import annotations

from tests.support.openapi import ValidatedSession
from tools.stack import Stack


def test_cluster_list_is_an_empty_array(management_api: ValidatedSession, stack: Stack) -> None:
    response = management_api.get(f"{stack.management_url}/1.0/remote-cluster")

    assert response.status_code == 200
    assert response.json()["metadata"] == []


def test_join_token_list_is_an_empty_array(management_api: ValidatedSession, stack: Stack) -> None:
    response = management_api.get(f"{stack.management_url}/1.0/remote-cluster-join-token")

    assert response.status_code == 200
    assert response.json()["metadata"] == []
