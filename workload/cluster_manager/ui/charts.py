"""Geometry for the small SVG charts of the pages (no script: the CSP forbids inline code).

SVG attributes such as `width="40%"` are not styles, so a strict `style-src 'self'` still
lets the server draw bars and lines without any inline style.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_TONES = {
    "online": "positive",
    "running": "positive",
    "ready": "positive",
    "stopped": "neutral",
    "frozen": "information",
    "error": "negative",
    "offline": "negative",
}


def tone(status: str) -> str:
    """Vanilla's colour name for a member or instance status."""
    return _TONES.get(status.lower(), "caution")


@dataclasses.dataclass(frozen=True)
class Segment:
    """One status in a stacked bar: where it starts and how wide it is, in percent."""

    status: str
    count: int
    x: float
    width: float
    tone: str


def distribution(entries: Iterable[Mapping[str, Any]]) -> list[Segment]:
    """A stacked bar of status counts, biggest first."""
    counts: dict[str, int] = {}
    for entry in entries or []:
        count = int(entry.get("count") or 0)
        if count > 0:
            status = str(entry.get("status") or "Unknown")
            counts[status] = counts.get(status, 0) + count
    total = sum(counts.values())
    segments, x = [], 0.0
    for status, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        width = count * 100 / total
        segments.append(Segment(status, count, round(x, 3), round(width, 3), tone(status)))
        x += width
    return segments


def percent(usage: float, total: float) -> float:
    """Usage as a percentage of total, 0 when the total is unknown."""
    return round(usage * 100 / total, 1) if total > 0 else 0.0


def sparkline(values: Sequence[float], width: int = 300, height: int = 48) -> str:
    """The `points` of a polyline through `values`, scaled to the box (top = highest)."""
    if not values:
        return ""
    high = max(max(values), 1e-9)
    step = width / (len(values) - 1) if len(values) > 1 else 0
    points = []
    for index, value in enumerate(values):
        x = index * step if len(values) > 1 else width / 2
        y = height - 2 - (value / high) * (height - 4)
        points.append(f"{x:.1f},{y:.1f}")
    if len(values) == 1:
        points.insert(0, f"0,{points[0].split(',')[1]}")
        points.append(f"{width},{points[0].split(',')[1]}")
    return " ".join(points)


def human_bytes(amount: float) -> str:
    """Bytes in binary units, e.g. `12.5 GiB`."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    value, unit = float(amount), 0
    while value >= 1024 and unit < len(units) - 1:
        value, unit = value / 1024, unit + 1
    return f"{value:.0f} {units[unit]}" if unit == 0 else f"{value:.1f} {units[unit]}"


def human_age(seconds: float | None) -> str:
    """How long ago, in the largest sensible unit."""
    if seconds is None:
        return "never"
    seconds = max(0, int(seconds))
    for size, name in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = seconds // size
            return f"{count} {name}{'s' if count != 1 else ''} ago"
    return f"{seconds} second{'s' if seconds != 1 else ''} ago"
