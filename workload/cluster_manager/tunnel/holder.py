"""The open tunnels of this unit, and one request at a time through each (design D13).

microcloudd reads a request, calls its LXD (up to 30 s), writes the answer and only then reads
the next one (canonical/microcloud `cmd/microcloudd/cluster_manager_tunnel.go`). So each tunnel
sends one request at a time: callers queue for their turn, at most `queue_size` per tunnel
(the one on the wire included), each within `timeout` seconds from its arrival. An answer is
matched to its request by `uuid`; one that comes after its caller gave up is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import uuid
from typing import Any

from aiohttp import WSCloseCode, web

logger = logging.getLogger(__name__)


class TunnelBusy(Exception):
    """The tunnel's queue is full."""


class TunnelTimeout(Exception):
    """The cluster did not answer in time."""


class TunnelClosed(Exception):
    """The tunnel closed before the cluster answered."""


@dataclasses.dataclass(eq=False)
class Tunnel:
    """One cluster's open websocket."""

    cluster_id: int
    cluster: str
    connection: uuid.UUID
    socket: web.WebSocketResponse
    queue_size: int
    _turn: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    _queued: int = 0
    _pending: dict[str, asyncio.Future[Any]] = dataclasses.field(default_factory=dict)
    failure: BaseException | None = None
    """Why reading the socket failed (a message over the size limit), once it has."""

    async def request(self, frame: dict[str, Any], timeout: float) -> Any:
        """Send `frame` (a request without `uuid`) when its turn comes; the cluster's answer.

        Raises:
            TunnelBusy: `queue_size` requests are queued already.
            TunnelTimeout: no answer within `timeout` seconds of the call.
            TunnelClosed: the socket closed first.
        """
        if self._queued >= self.queue_size:
            raise TunnelBusy
        self._queued += 1
        try:
            async with asyncio.timeout(timeout), self._turn:
                return await self._exchange(frame)
        except TimeoutError:
            raise TunnelTimeout from None
        finally:
            self._queued -= 1

    async def _exchange(self, frame: dict[str, Any]) -> Any:
        if self.socket.closed:
            raise TunnelClosed
        request_id = str(uuid.uuid4())
        answer = asyncio.get_running_loop().create_future()
        self._pending[request_id] = answer
        try:
            await self.socket.send_str(json.dumps({"uuid": request_id, **frame}))
            return await answer
        except ConnectionError:
            raise TunnelClosed from None
        finally:
            self._pending.pop(request_id, None)

    def deliver(self, message: str | bytes) -> None:
        """Hand a message from the cluster to the request it answers."""
        try:
            frame = json.loads(message)
        except ValueError:
            frame = None
        key = frame.get("uuid") if isinstance(frame, dict) else None
        waiter = self._pending.get(key) if isinstance(key, str) else None
        if waiter is None or waiter.done():
            logger.info("tunnel of %s: dropped an answer that matches no request", self.cluster)
            return
        waiter.set_result(frame)

    def fail_pending(self) -> None:
        """The socket closed: every request waiting for an answer gets `TunnelClosed`."""
        for waiter in self._pending.values():
            if not waiter.done():
                waiter.set_exception(TunnelClosed())

    async def close(self, code: int = WSCloseCode.GOING_AWAY, message: str = "") -> None:
        """Close the socket with a close frame (microcloudd echoes it, then drops TCP)."""
        with contextlib.suppress(ConnectionError):
            await self.socket.close(code=code, message=message.encode())


class Tunnels:
    """This unit's tunnels by cluster ID: a newer socket of a cluster replaces the older."""

    def __init__(self) -> None:
        self._by_cluster: dict[int, Tunnel] = {}

    def __len__(self) -> int:
        return len(self._by_cluster)

    def get(self, cluster_id: int) -> Tunnel | None:
        """The open tunnel of `cluster_id`, if this unit holds it."""
        return self._by_cluster.get(cluster_id)

    def add(self, tunnel: Tunnel) -> Tunnel | None:
        """Hold `tunnel`; return the one of the same cluster it replaces, if any."""
        replaced = self._by_cluster.get(tunnel.cluster_id)
        self._by_cluster[tunnel.cluster_id] = tunnel
        return replaced

    def remove(self, tunnel: Tunnel) -> None:
        """Forget `tunnel`, unless a newer socket replaced it already."""
        if self._by_cluster.get(tunnel.cluster_id) is tunnel:
            del self._by_cluster[tunnel.cluster_id]

    def all(self) -> list[Tunnel]:
        """Every open tunnel."""
        return list(self._by_cluster.values())

    def connections(self) -> set[uuid.UUID]:
        """The sockets this unit holds."""
        return {tunnel.connection for tunnel in self._by_cluster.values()}
