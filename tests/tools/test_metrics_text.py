"""The exposition writer formats values as LXD's Go code does.

canonical/lxd `lxd/metrics/metrics.go` writes `strconv.FormatFloat(v, 'g', -1, 64)`.
"""

import pytest

from tools.metrics_text import format_value


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (1, "1"),
        (12.5, "12.5"),
        (999999, "999999"),
        (1e6, "1e+06"),
        (1234567, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001234, "1.234e-05"),
        (123456.789, "123456.789"),
        (-42.5, "-42.5"),
        (1.5e300, "1.5e+300"),
        (float("inf"), "+Inf"),
        (float("-inf"), "-Inf"),
        (float("nan"), "NaN"),
    ],
)
def test_values_are_written_in_gos_shortest_g_format(value: float, text: str):
    assert format_value(value) == text
