"""A tiny writer of the Prometheus text exposition format, as LXD writes it.

LXD renders its metric set itself (canonical/lxd `lxd/metrics/metrics.go`, `MetricSet.String`):
one `# HELP`/`# TYPE` block per family, labels sorted by name, values with Go's
`strconv.FormatFloat(v, 'g', -1, 64)` (so `1.234567e+06`, not `1234567`), and a final `# EOF`
line. A family is a gauge when listed as one or when its name ends in `_bytes`, else a counter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal


def escape_label_value(value: str) -> str:
    """Escape a label value: backslash, double quote and newline.

    Args:
        value: raw value.

    Returns:
        The escaped value (without surrounding quotes).
    """
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_value(value: float) -> str:
    """Format a sample value as Go's `strconv.FormatFloat(value, 'g', -1, 64)` does.

    The shortest digits that read back as the same float; the exponent form when the decimal
    exponent is below -4 or at least 6 (Go's rule for the shortest 'g' format).

    Args:
        value: the number.

    Returns:
        Its text.
    """
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + int(exponent)  # digits before the decimal point
    prefix = "-" if sign else ""
    decimal_exponent = point - 1
    if decimal_exponent < -4 or decimal_exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{prefix}{mantissa}e{decimal_exponent:+03d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return prefix + digits + "0" * (point - len(digits))
    return f"{prefix}{digits[:point]}.{digits[point:]}"


@dataclass
class MetricFamily:
    """One metric family: name, type, help text and samples (labels, value)."""

    name: str
    kind: str
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, labels: dict[str, str], value: float) -> None:
        """Append a sample.

        Args:
            labels: label names to values; written in sorted name order, as LXD does.
            value: the sample value.
        """
        self.samples.append((labels, value))

    def lines(self) -> list[str]:
        """The ``# HELP``/``# TYPE`` header and one line per sample."""
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        for labels, value in self.samples:
            if labels:
                pairs = ",".join(
                    f'{key}="{escape_label_value(labels[key])}"' for key in sorted(labels)
                )
                out.append(f"{self.name}{{{pairs}}} {format_value(value)}")
            else:
                out.append(f"{self.name} {format_value(value)}")
        return out


def render(families: list[MetricFamily]) -> str:
    """Render families (skipping those without samples), ending with LXD's `# EOF` line.

    Args:
        families: the families, in order.

    Returns:
        The exposition text.
    """
    lines: list[str] = []
    for family in families:
        if family.samples:
            lines += family.lines()
    lines.append("# EOF")
    return "\n".join(lines) + "\n"
