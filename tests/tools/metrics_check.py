"""A small strict checker of the Prometheus text exposition format (0.0.4), for the tests.

Used when ``prometheus_client`` is not installed; when it is, the tests parse with it too.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(
    rf"^(?P<name>{NAME})(?:\{{(?P<labels>{LABEL}(?:,{LABEL})*)?\}})? (?P<value>\S+)(?: -?\d+)?$"
)
HELP = re.compile(rf"^# HELP (?P<name>{NAME}) .*$")
TYPE = re.compile(rf"^# TYPE (?P<name>{NAME}) (?P<type>counter|gauge|histogram|summary|untyped)$")
SUFFIXES = ("_bucket", "_sum", "_count")


@dataclass
class Family:
    name: str
    type: str = "untyped"
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)


def _labels(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    return {
        m.group(1): m.group(2) for m in re.finditer(r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"', text)
    }


def _value(text: str) -> float:
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf"))
    value = float(text)
    assert not math.isnan(value) or text == "NaN"
    return value


def parse_strict(text: str) -> dict[str, Family]:
    """Parse exposition text, raising AssertionError on anything malformed.

    Families must be contiguous, TYPE must precede their samples, sample names must belong to
    the current family.
    """
    assert text.endswith("\n"), "text must end with a newline"
    families: dict[str, Family] = {}
    current: Family | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        if line.startswith("#"):
            match = HELP.match(line) or TYPE.match(line)
            assert match or not line.startswith(("# HELP", "# TYPE")), f"line {number}: {line}"
            if not match:
                continue
            name = match.group("name")
            if current is None or current.name != name:
                assert name not in families, f"line {number}: family {name} is not contiguous"
                current = families[name] = Family(name)
            if "type" in match.groupdict():
                assert not current.samples, f"line {number}: TYPE after samples of {name}"
                current.type = match.group("type")
            continue
        match = SAMPLE.match(line)
        assert match, f"line {number}: malformed sample: {line}"
        name = match.group("name")
        base = next((name[: -len(s)] for s in SUFFIXES if name.endswith(s)), name)
        if current is None or current.name not in (name, base):
            assert name not in families, f"line {number}: family {name} is not contiguous"
            current = families[name] = Family(name)
        current.samples.append(
            (name, _labels(match.group("labels")), _value(match.group("value")))
        )
    return families
