"""Read LXD's metrics text and write it as remote-write time series, in one pass.

The text exposition format (0.0.4) as Prometheus reads it (prometheus/common `expfmt`
`text_parse.go`) and as LXD writes it (canonical/lxd `lxd/metrics/metrics.go`,
`MetricSet.String`: `# HELP`/`# TYPE` per family, labels sorted by name, no spaces, Go's
shortest float format, a final `# EOF` comment).

Speed comes from doing the per-character work in the `re` engine (C): one `fullmatch` proves
the whole text well formed (else `MetricsTextError`, and nothing of it is used), one `findall`
cuts out every sample line. What stays in Python is per sample: a dictionary look-up of its
label set, a float conversion and a few byte concatenations. A member's label sets repeat
(an instance's `{name=…,project=…,type=…}` belongs to some 30 families), so each distinct one
is decoded and encoded once per text, merged with the member's `cluster`, `job` and `member`
labels (which replace labels of the same name).

The protobuf is written by hand from the remote-write 1.0 schema: WriteRequest{1: repeated
TimeSeries}, TimeSeries{1: repeated Label, 2: repeated Sample}, Label{1: name, 2: value},
Sample{1: double value, 2: int64 timestamp}.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator, Mapping

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
_LABEL_VALUE = r'"[^"\\\n]*(?:\\[\\"n][^"\\\n]*)*"'  # unrolled: no alternation per character
_TYPES = "counter|gauge|histogram|summary|untyped"

# What LXD writes: `name{a="x",b="y"} value`, one blank, nothing else. The label text is only
# cut out here; each distinct one is checked once, by `_LABEL_TEXT`.
_LXD_SAMPLE = re.compile(rf"^({_NAME})(?:\{{([^\n]*)\}})? (\S+)(?: (\S+))?$", re.MULTILINE)
# Anything Prometheus' own parser reads: blanks and tabs wherever it skips them.
_BLANK_PAIR = rf"[ \t]*{_LABEL_NAME}[ \t]*=[ \t]*{_LABEL_VALUE}[ \t]*"
_ANY_SAMPLE = re.compile(
    rf"^[ \t]*({_NAME})(?:\{{((?:{_BLANK_PAIR}(?:,{_BLANK_PAIR})*,?)?[ \t]*)\}})?"
    r"[ \t]+(\S+)(?:[ \t]+(\S+))?[ \t]*$",
    re.MULTILINE,
)
_LABEL_TEXT = re.compile(rf"(?:{_BLANK_PAIR}(?:,{_BLANK_PAIR})*,?)?[ \t]*")
_COMMENT = re.compile(  # `# TYPE` and `# HELP` must be well formed; other comments are free
    rf"#[ \t]+(?:TYPE[ \t]+{_NAME}[ \t]+(?:{_TYPES})[ \t]*|HELP[ \t]+{_NAME}(?:[ \t].*)?)"
    r"|#(?![ \t]+(?:TYPE|HELP)(?:[ \t]|$)).*"
)
_COMMENT_LINES = re.compile(r"\n([ \t]*#[^\n]*)")  # searched in "\n" + text: a literal prefix
_BLANK_LINES = re.compile(r"\n(?=[ \t]*(?:\n|\Z))")
_TIMESTAMP = re.compile(r"-?[0-9]+")
_PAIRS = re.compile(rf"({_LABEL_NAME})[ \t]*=[ \t]*\"([^\"\\\n]*(?:\\[\\\"n][^\"\\\n]*)*)\"")
_UNESCAPE = re.compile(r"\\(.)")
_SPECIAL = ("\\", " ", "\t")
_UNESCAPED = {"\\": "\\", '"': '"', "n": "\n"}
_DOUBLE = struct.Struct("<d").pack

Row = tuple[str, str, str, str]
"""One sample line cut out of the text: name, label text, value text, timestamp text."""


class MetricsTextError(ValueError):
    """The metrics text of a member is not valid Prometheus text exposition format."""


def sample_rows(text: str) -> list[Row]:
    """Every sample line of `text`, once every other line is known to be a comment or blank.

    Counting proves it: the sample lines found, the comment lines and the blank lines must
    add up to all lines, and no line can be two of them. The label text of each row is
    checked by `label_pairs` and its value by `parse_value`, where each is used.

    Raises:
        MetricsTextError: a line is neither a sample, a comment nor blank.
    """
    lines = text.count("\n") + 1
    framed = "\n" + text
    comments = _COMMENT_LINES.findall(framed)
    for comment in comments:
        if _COMMENT.fullmatch(comment.lstrip(" \t")) is None:
            raise MetricsTextError(f"malformed comment line: {comment[:120]!r}")
    others = len(comments) + len(_BLANK_LINES.findall(framed))
    rows = _LXD_SAMPLE.findall(text)
    if len(rows) + others != lines:
        rows = _ANY_SAMPLE.findall(text)
    if len(rows) + others != lines:
        raise MetricsTextError(f"not text exposition format: {_first_bad_line(text)!r}")
    return rows


def _first_bad_line(text: str) -> str:
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.strip(" \t")
        if stripped and not stripped.startswith("#") and _ANY_SAMPLE.fullmatch(line) is None:
            return f"line {number}: {line[:120]}"
    return "?"


def label_pairs(label_text: str) -> dict[str, str]:
    """The labels of a sample's `{…}` text, unescaped.

    Raises:
        MetricsTextError: the text is not a list of `name="value"` pairs.
    """
    if _LABEL_TEXT.fullmatch(label_text) is None:
        raise MetricsTextError(f"malformed labels: {{{label_text[:120]}}}")
    if label_text.endswith('"') and not any(c in label_text for c in _SPECIAL):
        # As LXD writes them, `a="x",b="y"`: no value can hold `",` unescaped.
        found = [pair.split('="', 1) for pair in label_text[:-1].split('",')]
    else:
        found = _PAIRS.findall(label_text)
    pairs = {
        name: _UNESCAPE.sub(lambda m: _UNESCAPED[m[1]], value) if "\\" in value else value
        for name, value in found
    }
    if len(pairs) != len(found):
        raise MetricsTextError(f"duplicate label name: {{{label_text[:120]}}}")
    return pairs


def parse_value(text: str) -> float:
    """A sample value as Prometheus' parser (Go's `strconv.ParseFloat`) reads it.

    `+Inf`, `-Inf`, `NaN` (any case, `Infinity` too) and exponents; no `_` digit separators,
    which Python's `float` alone would accept.

    Raises:
        MetricsTextError: not a number.
    """
    try:
        value = float(text)
    except ValueError:
        raise MetricsTextError(f"malformed value: {text[:40]!r}") from None
    if "_" in text:
        raise MetricsTextError(f"malformed value: {text[:40]!r}")
    return value


def parse_timestamp(text: str) -> int | None:
    """A sample's timestamp in milliseconds, None when absent.

    Raises:
        MetricsTextError: not an integer.
    """
    if not text:
        return None
    if _TIMESTAMP.fullmatch(text) is None:
        raise MetricsTextError(f"malformed timestamp: {text[:40]!r}")
    return int(text)


def samples(text: str) -> Iterator[tuple[str, dict[str, str], float, int | None]]:
    """(name, labels, value, timestamp in ms or None) of every sample of `text`.

    Raises:
        MetricsTextError: the text is not valid exposition format.
    """
    for name, label_text, value, timestamp in sample_rows(text):
        yield name, label_pairs(label_text), parse_value(value), parse_timestamp(timestamp)


# -- protobuf --------------------------------------------------------------------------------


def varint(number: int) -> bytes:
    """Protobuf base-128 varint; negative numbers as int64 two's complement."""
    if number < 0:
        number += 1 << 64
    out = bytearray()
    while number > 0x7F:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


_SHORT = [varint(n) for n in range(1 << 14)]  # lengths of labels and series: no loop per call


def _length(size: int) -> bytes:
    return _SHORT[size] if size < 16384 else varint(size)


def encode_label(name: str, value: str) -> bytes:
    """One `Label` field of a `TimeSeries`; none for an empty value (Prometheus drops those)."""
    if not value:
        return b""
    raw_name, raw_value = name.encode(), value.encode()
    body = b"\x0a" + _length(len(raw_name)) + raw_name + b"\x12" + _length(len(raw_value))
    body += raw_value
    return b"\x0a" + _length(len(body)) + body


_UNSORTED = b"!"
"""Stands for a label set with a name that sorts before `__name__` (say `A`)."""
_LXD_PAIR = re.compile(rf'({_LABEL_NAME})="([^"\\\n]*)')
_PAIRS_SEEN: dict[str, tuple[str, bytes]] = {}
_PAIRS_KEPT = 10_000  # pairs repeat across a member's label sets (`name="web-01`): bounded


def _lxd_pair(text: str) -> tuple[str, bytes]:
    """(name, encoded Label) of `name="value` as LXD writes it (no escapes), checked once."""
    item = _PAIRS_SEEN.get(text)
    if item is None:
        match = _LXD_PAIR.fullmatch(text)
        if match is None:
            raise MetricsTextError(f"malformed label: {text[:120]}")
        if len(_PAIRS_SEEN) >= _PAIRS_KEPT:
            _PAIRS_SEEN.clear()
        item = _PAIRS_SEEN[text] = (match[1], encode_label(match[1], match[2]))
    return item


class MemberEncoder:
    """Turns one member's metrics texts into encoded `TimeSeries`, its own labels added.

    Keep one per member while it has texts to encode: it remembers the label sets it encoded.
    """

    def __init__(self, extra: Mapping[str, str]):
        """`extra`: the labels every sample gets (`cluster`, `job`, `member`), overriding."""
        self._extra = dict(extra)
        self._extra_names = tuple(extra)
        self._extra_encoded = [(name, encode_label(name, value)) for name, value in extra.items()]
        self._label_sets: dict[str, bytes] = {}
        self._names: dict[str, bytes] = {}
        self._unsorted: dict[str, bool] = {}

    def encode(self, text: str, timestamp_ms: int) -> list[bytes]:
        """The encoded `TimeSeries` of every sample of `text`, each stamped `timestamp_ms`.

        Raises:
            MetricsTextError: the text is not valid exposition format.
        """
        stamp = b"\x10" + varint(timestamp_ms)
        sample_head = b"\x12" + _length(9 + len(stamp)) + b"\x09"
        label_sets, names, short, double = self._label_sets, self._names, _SHORT, _DOUBLE
        out: list[bytes] = []
        append = out.append
        for name, label_text, value, timestamp in sample_rows(text):
            labels = label_sets.get(label_text)
            if labels is None:
                labels = self._label_set(label_text)
            head = names.get(name)
            if head is None:
                head = names[name] = encode_label("__name__", name)
            # _UNSORTED: a label sorts before __name__, so this series is ordered in full.
            body = self._sorted(name, label_text) if labels is _UNSORTED else head + labels
            try:
                number = float(value)
            except ValueError:
                number = parse_value(value)  # raises MetricsTextError
            if "_" in value or (timestamp and _TIMESTAMP.fullmatch(timestamp) is None):
                parse_value(value)  # each raises MetricsTextError, naming what is malformed
                parse_timestamp(timestamp)
            body += sample_head + double(number) + stamp
            size = len(body)
            append(b"\x0a" + (short[size] if size < 16384 else varint(size)) + body)
        return out

    def _label_set(self, label_text: str) -> bytes:
        """The encoded labels of `label_text` merged with the member's, `__name__` excluded.

        Raises:
            MetricsTextError: the label text is malformed.
        """
        if label_text.endswith('"') and not any(c in label_text for c in _SPECIAL):
            # As LXD writes them, `a="x",b="y"`: no value can hold `",` unescaped.
            items = [_lxd_pair(pair) for pair in label_text[:-1].split('",')]
        else:
            items = [(n, encode_label(n, v)) for n, v in label_pairs(label_text).items()]
        extra = self._extra_names
        items = [item for item in items if item[0] not in extra] + self._extra_encoded
        items.sort()
        if len({name for name, _ in items}) != len(items):
            raise MetricsTextError(f"duplicate label name: {{{label_text[:120]}}}")
        if items and items[0][0] < "__name__":
            encoded = _UNSORTED
        else:
            encoded = b"".join([label for _, label in items])
        self._label_sets[label_text] = encoded
        return encoded

    def _sorted(self, name: str, label_text: str) -> bytes:
        pairs = {**label_pairs(label_text), **self._extra, "__name__": name}
        return b"".join(encode_label(key, pairs[key]) for key in sorted(pairs))


def write_request(series: list[bytes]) -> bytes:
    """A serialized `WriteRequest` of already encoded `TimeSeries`."""
    return b"".join(series)
