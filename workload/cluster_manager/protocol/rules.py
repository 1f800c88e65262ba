"""What any input may hold, defined once for both apps (issue 9; docs/workload-contract.md)."""

from __future__ import annotations

import re

# -- names --------------------------------------------------------------------------------
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}"
"""The whole name must match (re.fullmatch): no trailing newline slips through."""
NAME_RULE = "1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"
_NAME = re.compile(NAME_PATTERN)


def valid_name(name: str) -> bool:
    """Whether `name` may name a cluster or an API token: all of it matches NAME_PATTERN."""
    return _NAME.fullmatch(name) is not None
