"""`python3 -m cluster_manager.forwarding`: run the forwarder process until stopped."""

from __future__ import annotations

import logging.config
import signal
import sys
import threading

from ..logs import logging_config
from ..metric_files import enable_metric_files
from ..settings import Settings


def main() -> int:
    """Serve the forwarder socket until SIGTERM or SIGINT."""
    settings = Settings.from_env()
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    enable_metric_files(settings.run_dir, "forwarder")  # before any metric is created
    logging.config.dictConfig(logging_config(settings.log_level))

    from .forwarder import Forwarder
    from .sender import Sender
    from .service import ForwarderServer
    from .wire import SOCKET_NAME

    sender = Sender(settings.remote_write_targets, ca_bundle=settings.ca_bundle_file)
    forwarder = Forwarder(
        sender,
        queue_size=settings.remote_write_queue_size,
        max_request_bytes=settings.remote_write_max_request_bytes,
        outbox_bytes=settings.remote_write_outbox_bytes,
    ).start()
    server = ForwarderServer(settings.run_dir / SOCKET_NAME, forwarder).start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    logging.getLogger(__name__).info(
        "forwarder listening on %s for %d remote-write URLs",
        server.path,
        len(settings.remote_write_targets),
    )
    stop.wait()
    server.stop()
    return 0


sys.exit(main())
