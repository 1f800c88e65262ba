"""One hook, one snapshot: the charm reads its config and each secret once per hook.

The reconcile, the status, the actions and the scheduled prune all decide on the same facts,
so a hook that asks Juju for the same thing several times is wasted work and a chance for
the parts of one hook to disagree.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

import ops
import pytest

from tests.unit.builders import SigningCA, deploy


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> collections.Counter[Any]:
    """Count `load_config` calls and `get_secret` calls per secret."""
    counter: collections.Counter[Any] = collections.Counter()
    load_config, get_secret = ops.CharmBase.load_config, ops.Model.get_secret

    def counting_load_config(self: ops.CharmBase, *args: Any, **kwargs: Any) -> Any:
        counter["load_config"] += 1
        return load_config(self, *args, **kwargs)

    def counting_get_secret(self: ops.Model, *args: Any, **kwargs: Any) -> ops.Secret:
        counter["get_secret", kwargs.get("id") or kwargs.get("label")] += 1
        return get_secret(self, *args, **kwargs)

    monkeypatch.setattr(ops.CharmBase, "load_config", counting_load_config)
    monkeypatch.setattr(ops.Model, "get_secret", counting_get_secret)
    return counter


@pytest.mark.parametrize("leader", [True, False])
def test_update_status_loads_the_config_once(ctx, ca: SigningCA, reads, leader: bool):
    deployment = deploy(ctx, ca)
    reads.clear()

    ctx.run(ctx.on.update_status(), dataclasses.replace(deployment.state, leader=leader))

    assert reads["load_config"] == 1


def test_update_status_reads_each_secret_once(ctx, ca: SigningCA, reads):
    deployment = deploy(ctx, ca)
    reads.clear()

    ctx.run(ctx.on.update_status(), deployment.state)

    secrets = {key: count for key, count in reads.items() if key != "load_config"}
    assert secrets, "the hook read no secret: the test no longer measures anything"
    assert set(secrets.values()) == {1}, secrets
