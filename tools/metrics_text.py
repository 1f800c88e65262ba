"""A tiny writer for the Prometheus text exposition format (version 0.0.4)."""

from __future__ import annotations

from dataclasses import dataclass, field


def escape_label_value(value: str) -> str:
    """Escape a label value: backslash, double quote and newline.

    Args:
        value: raw value.

    Returns:
        The escaped value (without surrounding quotes).
    """
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_value(value: float) -> str:
    """Format a sample value: integers without a fraction, floats in shortest form.

    Args:
        value: the number.

    Returns:
        Its text.
    """
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


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
    """Render families (skipping those without samples), ending with a newline.

    Args:
        families: the families, in order.

    Returns:
        The exposition text.
    """
    lines: list[str] = []
    for family in families:
        if family.samples:
            lines += family.lines()
    return "\n".join(lines) + "\n"
