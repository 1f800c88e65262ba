"""JSON bytes as Go's ``encoding/json.Marshal`` writes them.

Go writes compact JSON, keeps non-ASCII text as UTF-8 and escapes ``<``, ``>``, ``&``,
U+2028 and U+2029 inside strings. Those characters can only occur inside strings, so a
plain replacement over the compact output is exact.
"""

from __future__ import annotations

import json
from typing import Any

_GO_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_TABLE = str.maketrans(_GO_ESCAPES)


def dumps(value: Any) -> str:
    """Serialize ``value`` the way Go's ``json.Marshal`` would.

    Args:
        value: JSON-compatible data; dict key order is kept (Go keeps struct field order).

    Returns:
        The JSON text.
    """
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).translate(_TABLE)


def dump_bytes(value: Any) -> bytes:
    """Like :func:`dumps`, encoded as UTF-8.

    Args:
        value: JSON-compatible data.

    Returns:
        The JSON bytes.
    """
    return dumps(value).encode()
