"""prometheus_client's multiprocess mode for one service of the workload.

Each service (the two gunicorn apps, the forwarder) keeps its metrics in files under
`$MCM_RUN_DIR/metrics/<service>/`, emptied when it starts; a scrape merges them all
(`cluster_manager.metrics`).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def enable_metric_files(run_dir: Path, app_name: str) -> None:
    """Make this service's processes keep their metrics in files that any of them can merge.

    prometheus_client's multiprocess mode must be on before any metric is created, so this
    runs before `metrics` (gunicorn master) or `forwarding.counters` (forwarder) is imported.
    """
    for module in ("cluster_manager.metrics", "cluster_manager.forwarding.counters"):
        if module in sys.modules:
            raise RuntimeError(f"{module} was imported before its directory was set")
    directory = run_dir / "metrics" / app_name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, mode=0o700)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    from prometheus_client import values

    # prometheus_client picks its value class when first imported; pick it again now.
    values.ValueClass = values.get_value_class()
