"""The charm's typed configuration: the workload's option table, `cluster_manager.options`.

The options, their defaults and their rules are defined once, there (the charm ships that
standard-library module in lib/, see charmcraft.yaml); config.yaml declares the same options to
Juju and tests/unit/test_option_table.py keeps the two equal.
"""

from __future__ import annotations

from cluster_manager.options import SPECS, InvalidOption, Options

CharmConfig = Options
"""What `self.load_config(CharmConfig)` builds: ops passes every option as the field of the
same name (dashes as underscores), and the constructor raises `InvalidOption` on a bad value."""

RANGES: dict[str, tuple[int, int]] = {
    option: spec.bounds for option, spec in SPECS.items() if spec.bounds is not None
}
"""The bounds of every integer option; config.yaml states each in its description."""

__all__ = ["RANGES", "CharmConfig", "InvalidOption"]
