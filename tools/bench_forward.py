"""`python -m tools.bench_forward`: the forwarder's parse and encode speed against promtool's.

Realistic LXD member texts (tools/payloads.py: MicroCloud-shaped clusters, 3 members x 50
instances) are forwarded as the forwarder process forwards them: a fresh `MemberEncoder` per
text (label sets are remembered within one text only), the series joined into a WriteRequest
and snappy-compressed; only the HTTP POST is left out. In the same run `promtool check metrics`
(Prometheus' Go parser and linter; Debian's `prometheus` package) reads the very same texts,
one process per text, its start-up time (measured on an empty text) taken off, which flatters
promtool. Each side is timed best-of-`--rounds`, interleaved, so that load from elsewhere on
the machine hurts both alike. Prints figures, the last line being
`forwarding: X samples/s; promtool: Y samples/s; ratio R`; asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from cluster_manager.forwarding.exposition import MemberEncoder, sample_rows, write_request
from cluster_manager.forwarding.forwarder import member_labels
from cluster_manager.forwarding.sender import compress

from tools.payloads import PayloadGenerator

NOW = 1_780_000_000.0


def member_texts(clusters: int, members: int, instances: int) -> list[tuple[str, str, str]]:
    """(cluster, member, text) of every member of `clusters` generated clusters."""
    texts = []
    for index in range(clusters):
        generator = PayloadGenerator(f"bench-{index:03d}", members=members, instances=instances)
        entries = generator.payload(NOW)["server_metrics"]
        texts += [(generator.cluster_name, e["member"], e["metrics"]) for e in entries]
    return texts


def forward_once(texts: Sequence[tuple[str, str, str]]) -> tuple[float, int]:
    """Seconds to encode and compress every text, and the compressed bytes."""
    started = time.perf_counter()
    size = 0
    for cluster, member, text in texts:
        series = MemberEncoder(member_labels(cluster, member)).encode(text, int(NOW * 1000))
        size += len(compress(write_request(series)))
    return time.perf_counter() - started, size


def promtool_once(promtool: str, files: Sequence[Path]) -> float:
    """Seconds `promtool check metrics` takes over every file, one process each."""
    started = time.perf_counter()
    for path in files:
        with path.open("rb") as text:
            result = subprocess.run(
                [promtool, "check", "metrics"], stdin=text, capture_output=True, check=False
            )
        # Exit status 3 is lint findings (LXD's camelCase names); a parse error is not allowed.
        if b"parsing error" in result.stdout + result.stderr or result.returncode not in (0, 3):
            raise RuntimeError(f"promtool could not parse {path}: {result.stderr[:300]!r}")
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print; the last line compares the two rates."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--clusters", type=int, default=4, help="generated clusters")
    parser.add_argument("--members", type=int, default=3, help="members per cluster")
    parser.add_argument("--instances", type=int, default=150, help="instances per cluster")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds; the best counts")
    parser.add_argument("--promtool", default=shutil.which("promtool") or "/usr/bin/promtool")
    parser.add_argument("--work-dir", type=Path, help="where the texts go (a new temp dir)")
    args = parser.parse_args(argv)
    if args.work_dir is None:
        args.work_dir = Path(tempfile.mkdtemp(prefix="bench-forward-"))

    texts = member_texts(args.clusters, args.members, args.instances)
    samples = sum(len(sample_rows(text)) for _, _, text in texts)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for index, (_, _, text) in enumerate(texts):
        files.append(args.work_dir / f"member-{index:03d}.txt")
        files[-1].write_text(text)
    empty = args.work_dir / "empty.txt"
    empty.write_text("")
    size = sum(len(text) for _, _, text in texts)
    print(f"texts: {len(texts)} members, {samples} samples, {size / 1e6:.1f} MB")

    forwarding, promtool, startup = float("inf"), float("inf"), float("inf")
    compressed = 0
    for _ in range(args.rounds):
        seconds, compressed = forward_once(texts)
        forwarding = min(forwarding, seconds)
        promtool = min(promtool, promtool_once(args.promtool, files))
        startup = min(startup, promtool_once(args.promtool, [empty] * len(files)))
    promtool_parse = max(promtool - startup, 1e-9)
    print(f"forwarding: {forwarding:.3f} s per round, {compressed / 1e6:.2f} MB snappy")
    print(f"promtool: {promtool:.3f} s per round, of which {startup:.3f} s process start-ups")
    forward_rate, promtool_rate = samples / forwarding, samples / promtool_parse
    print(
        f"forwarding: {forward_rate:.0f} samples/s; promtool: {promtool_rate:.0f} samples/s; "
        f"ratio {forward_rate / promtool_rate:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
