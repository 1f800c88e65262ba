"""Push remote-write requests to every URL.

Protobuf `prometheus.WriteRequest` bodies, snappy block compression (`cramjam`: maintained
Rust bindings with wheels, no system library); network errors, 5xx and 429 are retried with
back-off.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Sequence
from pathlib import Path

import cramjam
import urllib3

from . import counters

logger = logging.getLogger(__name__)

HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": "microcloud-cluster-manager",
}


def compress(body: bytes) -> bytes:
    """Snappy block format (not the framed format), as remote write requires."""
    return bytes(cramjam.snappy.compress_raw(body))


def ssl_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """The system's trust store plus the CA certificates in `ca_bundle`, when it has any."""
    context = ssl.create_default_context()
    if ca_bundle is not None and ca_bundle.is_file() and "CERTIFICATE" in ca_bundle.read_text():
        context.load_verify_locations(cafile=str(ca_bundle))
    return context


class Sender:
    """Sends each request to every URL, counting what was accepted and what was given up."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        ca_bundle: Path | None = None,
        retries: int = 3,
        backoff: float = 0.5,
        timeout: float = 5.0,
    ):
        """Describe the sender.

        Args:
            urls: remote-write URLs; each request goes to every one of them.
            ca_bundle: extra CA certificates for https URLs.
            retries: further attempts after a network error, a 5xx or a 429.
            backoff: seconds before the first retry, doubled for each further one.
            timeout: seconds to connect, and to wait for the answer.
        """
        self.urls = tuple(urls)
        self.retries = retries
        self.backoff = backoff
        self._http = urllib3.PoolManager(
            num_pools=max(4, len(self.urls)),
            maxsize=4,  # one connection per pusher thread and URL
            retries=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            ssl_context=ssl_context(ca_bundle),
        )

    def send(self, body: bytes, samples: int) -> None:
        """Push one compressed WriteRequest (`compress`) of `samples` samples to every URL."""
        for url in self.urls:
            if self._push(url, body):
                counters.REMOTE_WRITE_SENT.inc()
                counters.REMOTE_WRITE_SAMPLES.inc(samples)
            else:
                counters.REMOTE_WRITE_FAILED.inc()

    def _push(self, url: str, body: bytes) -> bool:
        """POST `body` to `url`, retrying what may succeed later; whether it was accepted."""
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._http.request("POST", url, body=body, headers=HEADERS)
            except urllib3.exceptions.HTTPError as error:
                problem = f"{type(error).__name__}: {error}"
                continue
            if response.status < 300:
                return True
            problem = f"HTTP {response.status}: {response.data[:200]!r}"
            if 400 <= response.status < 500 and response.status != 429:
                break  # the request itself is refused; sending it again cannot help
        logger.warning("remote write to %s failed: %s", redact(url), problem)
        return False


def redact(url: str) -> str:
    """The URL without user information, should an operator have put credentials in it."""
    scheme, sep, rest = url.partition("://")
    host, at, path = rest.rpartition("@")
    return f"{scheme}{sep}{path}" if at and "/" not in host else url
