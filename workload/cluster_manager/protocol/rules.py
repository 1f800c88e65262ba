"""What any input may hold, defined once for both apps (issue 9; docs/workload-contract.md).

The limits are sized on two things: what PostgreSQL can store (bigint, integer, text without
NUL) and what a real MicroCloud sends (microcloud cmd/microcloudd/cluster_manager_task.go
builds the heartbeat from tens of LXD members with a few pools each and a handful of status
values; api/types/cluster_manager.go has int64 and uint64 numbers). A heartbeat that passes
these rules can be stored and every page can show it; one that does not is refused whole.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, StrictStr

# -- numbers: what the database columns hold ----------------------------------------------
MAX_BYTES = 2**63 - 1
"""Largest byte amount, and largest sum of a pool list's totals or usages (bigint columns)."""
MAX_COUNT = 2**31 - 1
"""Largest status count, and largest sum of one status list (integer columns)."""

# -- list lengths: generous for real clusters ---------------------------------------------
MAX_MEMBERS = 256
"""`server_metrics` entries: one per LXD member; MicroClouds have at most tens."""
MAX_STORAGE_POOLS = 1024
"""`storage_pool_usages` entries: one per local pool per member, plus each remote pool."""
MAX_STATUSES = 64
"""Entries of a status list: one per distinct status (LXD has about ten of each kind)."""

# -- string lengths -----------------------------------------------------------------------
MAX_NAME_LENGTH = 63
"""A cluster or API token name (see NAME_RULE)."""
MAX_STATUS_LENGTH = 64
MAX_MEMBER_NAME_LENGTH = 255
MAX_POOL_NAME_LENGTH = 255
MAX_SERVICE_LENGTH = 64
MAX_METRICS_LENGTH = 64 * 1024 * 1024
"""One member's LXD `/1.0/metrics` text (about 10 KB per instance); the body limit is first."""
MAX_URL_LENGTH = 2048
MAX_CPU_LOAD_LENGTH = 32
MAX_PEM_LENGTH = 16_384
MAX_TOKEN_LENGTH = 4096
MAX_DESCRIPTION_LENGTH = 1024

# -- names --------------------------------------------------------------------------------
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}"
"""The whole name must match (re.fullmatch): no trailing newline slips through."""
NAME_RULE = "1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"
_NAME = re.compile(NAME_PATTERN)


def valid_name(name: str) -> bool:
    """Whether `name` may name a cluster or an API token: all of it matches NAME_PATTERN."""
    return _NAME.fullmatch(name) is not None


# -- strings ------------------------------------------------------------------------------
def _without_nul(value: str) -> str:
    # PostgreSQL text and jsonb cannot hold U+0000; refuse it before it reaches them.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


NulFreeStr = Annotated[StrictStr, AfterValidator(_without_nul)]
"""A JSON string without NUL characters: every string field of every request body."""

_CPU_LOAD = re.compile(r"[0-9]+(?:\.[0-9]{1,2})?")
CPU_LOAD_RULE = "must be a non-negative decimal number with at most two fractional digits"


def _cpu_load(value: str) -> str:
    # microcloudd writes fmt.Sprintf("%.2f", sum of the members' load averages).
    if _CPU_LOAD.fullmatch(value) is None:
        raise ValueError(CPU_LOAD_RULE)
    return value


CpuLoad = Annotated[NulFreeStr, AfterValidator(_cpu_load)]
"""A load average as MicroCloud formats it: "0.42", "12.00" (or a plain "3")."""

_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")
WEB_URL_RULE = "must be empty or an absolute http:// or https:// URL with a host"


def _web_url(value: str) -> str:
    if not value:
        return value
    if _URL_FORBIDDEN.search(value) is not None:
        raise ValueError(WEB_URL_RULE + ", without spaces or control characters")
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        raise ValueError(WEB_URL_RULE) from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise ValueError(WEB_URL_RULE)
    return value


WebUrl = Annotated[NulFreeStr, AfterValidator(_web_url)]
"""A link the UI may put in an href: empty, or http(s) to a host (never javascript: or data:)."""
