"""The forwarder's exposition parser and encoder read what prometheus_client's parser reads.

Every comparison decodes the encoded remote-write series with the independent decoder of
tests/support/receiver.py, so parsing and encoding are checked together, as they run. The
syntax follows prometheus/common `expfmt/text_parse.go` (Prometheus' own parser), the texts
canonical/lxd `lxd/metrics/metrics.go` (what LXD writes).
"""

from __future__ import annotations

import math
import re

import pytest
from cluster_manager.forwarding.exposition import (
    MemberEncoder,
    MetricsTextError,
    samples,
    write_request,
)
from prometheus_client.parser import text_string_to_metric_families

from tests.support.receiver import decode_write_request
from tools.payloads import PayloadGenerator

EXTRA = {"cluster": "c-1", "job": "c_1", "member": "m1"}
STAMP = 1_780_000_000_123

Sample = tuple[str, tuple[tuple[str, str], ...], str]


def reference(text: str) -> list[Sample]:
    """(name, labels, value) of every sample, as prometheus_client reads them.

    prometheus_client names the samples of a counter without the `_total` suffix (LXD's
    `lxd_uptime_seconds`) `<name>_total`; Prometheus keeps the name as written, so the
    comparison does too.
    """
    written = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)", text, re.MULTILINE))
    return [
        (
            sample.name if sample.name in written else sample.name.removesuffix("_total"),
            tuple(sorted(sample.labels.items())),
            repr(float(sample.value)),
        )
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def forwarded(text: str) -> list[Sample]:
    """(name, labels without the member's, value) of every series the encoder writes."""
    decoded = decode_write_request(write_request(MemberEncoder(EXTRA).encode(text, STAMP)))
    result = []
    for labels, value, timestamp in decoded:
        assert list(labels) == sorted(labels)  # remote write requires sorted names
        assert {key: labels.pop(key) for key in EXTRA} == EXTRA
        assert timestamp == STAMP
        name = labels.pop("__name__")
        result.append((name, tuple(sorted(labels.items())), repr(value)))
    return result


@pytest.mark.parametrize("instances", [0, 12, 60])
def test_generator_texts_give_the_samples_prometheus_client_reads(instances: int):
    generator = PayloadGenerator("parse", members=2, instances=instances, seed=11)

    for member in range(2):
        text = generator.metrics_text(member, 1_780_000_000.0)

        assert forwarded(text) == reference(text)


EDGE_CASES = {
    "escapes in label values": 'a{path="C:\\\\dir",quote="say \\"hi\\"",nl="x\\ny"} 1\n',
    "special values": 'a{v="nan"} NaN\nb +Inf\nc -Inf\nd 1.5e+06\ne -0.25\nf .5\n',
    "help, type and other comments": (
        "# HELP a Some help, with \\\\ and \\n escapes.\n# TYPE a counter\n"
        "# any comment at all\na_total 3\n# EOF\n"
    ),
    "empty lines": "\n\na 1\n\n\nb 2\n\n",
    "no trailing newline": 'a 1\nb{x="y"} 2',
    "blanks and tabs where Prometheus skips them": 'a{ x = "1" ,y="2", } \t 7 \nb\t8\n',
    "a label value holding braces and commas": 'a{x="},{",y="a=\\"b\\""} 1\n',
    "an empty label set": "a{} 4\n",
    "labels the member's override": 'a{cluster="other",member="x",job="y",z="1"} 1\n',
}


@pytest.mark.parametrize("text", EDGE_CASES.values(), ids=EDGE_CASES.keys())
def test_edge_cases_give_the_samples_prometheus_client_reads(text: str):
    expected = [
        (name, tuple(pair for pair in labels if pair[0] not in EXTRA), value)
        for name, labels, value in reference(text)
    ]

    assert forwarded(text) == expected


def test_timestamps_in_the_text_are_read_but_the_heartbeat_time_is_sent():
    text = 'a 1 1700000000000\nb{x="1"} 2 -5\n'
    theirs = [s.timestamp for f in text_string_to_metric_families(text) for s in f.samples]

    read = [stamp for _, _, _, stamp in samples(text)]
    sent = decode_write_request(write_request(MemberEncoder(EXTRA).encode(text, STAMP)))

    assert read == [1700000000000, -5]
    assert [float(t) * 1000 for t in theirs if t is not None] == pytest.approx(read)
    assert {stamp for _, _, stamp in sent} == {STAMP}


def test_samples_reads_names_labels_and_values():
    [(name, labels, value, stamp)] = samples('lxd_x{a="1",b="two words"} NaN\n')

    assert (name, labels, stamp) == ("lxd_x", {"a": "1", "b": "two words"}, None)
    assert math.isnan(value)


def test_a_label_sorting_before_the_metric_name_still_gives_sorted_labels():
    [(labels, value, _)] = decode_write_request(
        write_request(MemberEncoder(EXTRA).encode('a{Zone="z",b="1"} 2\n', STAMP))
    )

    assert list(labels) == sorted(labels)
    assert labels == {"Zone": "z", "__name__": "a", "b": "1", **EXTRA}
    assert value == 2


MALFORMED = {
    "an unclosed label value": 'a{x="1} 2\n',
    "no value": "a\n",
    "a word for a value": "a one\n",
    "digit separators": "a 1_000\n",
    "a fractional timestamp": "a 1 17.5\n",
    "an extra field": "a 1 2 3\n",
    "an unknown escape": 'a{x="\\t"} 1\n',
    "a malformed TYPE line": "# TYPE a sometimes\na 1\n",
    "a TYPE line without a type": "# TYPE a\na 1\n",
    "a name starting with a digit": "1a 1\n",
    "a label name with a dash": 'a{x-y="1"} 1\n',
    "a duplicate label name": 'a{x="1",x="2"} 1\n',
    "garbage": "this is { not metrics\n",
    "braces out of order": "}{ 1 2 3\n",
    "one bad line among good ones": "a 1\nb{ 2\nc 3\n",
}


@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_text_is_refused(text: str):
    with pytest.raises(MetricsTextError):
        MemberEncoder(EXTRA).encode(text, STAMP)
    with pytest.raises(MetricsTextError):
        list(samples(text))
