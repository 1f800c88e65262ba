"""`python -m tools.bench_ui`: how long the UI's fleet queries take on a large fleet.

Seeds a synthetic fleet into a throw-away PostgreSQL and times the clusters page (filtered,
sorted, paginated) and the overview's summary. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cluster_manager.db import fleet
from cluster_manager.db.migrate import migrate
from cluster_manager.db.pool import connect

from tools.fleet_seed import seed_fleet
from tools.postgres import PostgresServer

OFFLINE_AFTER = 180


def _median_ms(work: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main(argv: Sequence[str] | None = None) -> int:
    """Seed, time, print."""
    parser = argparse.ArgumentParser(prog="python -m tools.bench_ui", description=__doc__)
    parser.add_argument("--clusters", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    postgres = PostgresServer(Path(tempfile.mkdtemp(prefix="mcm-bench-ui-")))
    postgres.init()
    postgres.start()
    try:
        # Seeding a large fleet takes longer than any request may (the apps' statement timeout).
        with connect(postgres.create_database("bench_ui"), statement_timeout=None) as conn:
            migrate(conn)
            print(f"seeding {args.clusters} clusters …", flush=True)
            seed_fleet(conn, args.clusters)
            page = _median_ms(
                lambda: fleet.cluster_page(
                    conn, OFFLINE_AFTER, search="cluster-0", statuses=("warnings",),
                    sort="warnings", descending=True, limit=50, offset=100,
                ),
                args.repeat,
            )  # fmt: skip
            summary = _median_ms(lambda: fleet.fleet_summary(conn, OFFLINE_AFTER), args.repeat)
        print(f"clusters page (search, warnings filter and sort, offset 100): {page:.1f} ms")
        print(f"fleet summary (overview):                                    {summary:.1f} ms")
        return 0
    finally:
        postgres.stop()


if __name__ == "__main__":
    sys.exit(main())
