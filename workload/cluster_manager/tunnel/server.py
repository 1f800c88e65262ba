"""The tunnel process: the clusters' websockets, and the requests other units send through them.

One event loop holds every socket of the unit (a synchronous gunicorn worker would hold one).
Two listeners:

- `tunnel.sock` in the run directory, behind the front's connector listener: MicroCloud's
  `GET /1.0/remote-cluster/ws`, authenticated as heartbeats are (the certificate the front
  passes in `X-Client-Cert`, looked up by fingerprint, in date), plus the health paths;
- the internal TLS listener on `tunnel_port` (the connector certificate, TLS 1.3), which the
  management app of any unit calls with the units' shared secret; never routed by Traefik.

PostgreSQL records which unit holds each cluster's tunnel (`db.tunnels`): registered with the
handshake, cleared when the socket closes and when the process stops, and checked every
`tunnel_check_interval` seconds, so that a socket whose cluster was removed (or which a newer
socket on another unit replaced) is closed, and a row this unit left behind (a crash) cleared.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import logging.config
import math
import signal
import ssl
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import aiohttp
from aiohttp import WebSocketError, WSCloseCode, WSMsgType, web

from ..client_certificate import certificate_problem, client_fingerprint
from ..connector_certificate import connector_fingerprint
from ..db.pool import Database, DatabaseUnavailable, DbConnection
from ..db.tunnels import (
    Registration,
    forget_holder,
    register,
    registered_connections,
    unregister,
)
from ..front.config import CLIENT_CERT_HEADER, ENROLLED_HEADER
from ..logs import logging_config
from ..protocol.envelope import JSON_HEADERS, error_body, sync_body
from ..protocol.tunnel import FORWARD_PATH, METHODS, SECRET_HEADER, TUNNEL_PATH, lxd_path_problem
from ..settings import Settings, SettingsError
from .holder import Tunnel, TunnelBusy, TunnelClosed, Tunnels, TunnelTimeout

logger = logging.getLogger(__name__)

SOCKET_NAME = "tunnel.sock"
STOP_CLOSE_SECONDS = 1
"""How long a stopping process waits for the clusters to echo its close frames, and then for
each listener's handlers to end: well inside the 5 s Pebble gives before SIGKILL."""
_MIB = 1024 * 1024
T = TypeVar("T")


def serve_tunnel(settings: Settings) -> None:
    """Run the tunnel process until SIGTERM or SIGINT."""
    if not settings.tunnel_secret:
        raise SettingsError("MCM_TUNNEL_SECRET is required: the units' shared secret")
    logging.config.dictConfig(logging_config(settings.log_level))
    asyncio.run(TunnelProcess(settings).run())


def _envelope(status: int, message: str = "", **headers: str) -> web.Response:
    return web.Response(
        status=status, text=error_body(status, message), headers={**JSON_HEADERS, **headers}
    )


class TunnelProcess:
    """The unit's tunnels, their registrations and both listeners."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.holder = settings.tunnel_holder
        self.tunnels = Tunnels()
        self._registering: set[uuid.UUID] = set()
        self._database = Database(settings.database_url, max_size=2)
        self._peers: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Serve until told to stop, then close every tunnel and clear its registrations."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        fingerprint = bytes.fromhex(connector_fingerprint(self.settings.connector_cert_file))
        self._peers = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=aiohttp.Fingerprint(fingerprint)),
            timeout=aiohttp.ClientTimeout(total=10),
        )
        runners = [await self._public_site(), await self._internal_site()]
        await self._clear_own_registrations()
        logger.info("tunnel process ready; reachable by the other units at %s", self.holder)
        reconciler = asyncio.create_task(self._reconcile_forever())
        await stop.wait()
        reconciler.cancel()
        logger.info("stopping: closing %d tunnels", len(self.tunnels))
        # Rows first: the clusters redial at once, and Pebble may kill us before the closes end.
        await self._clear_own_registrations(keep_open=False)
        closes = [asyncio.create_task(tunnel.close()) for tunnel in self.tunnels.all()]
        if closes:
            await asyncio.wait(closes, timeout=STOP_CLOSE_SECONDS)
        for runner in runners:
            await runner.cleanup()
        await self._peers.close()
        self._database.close()

    async def _public_site(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_route("*", TUNNEL_PATH, self._accept)
        app.router.add_get("/healthz", self._alive)
        app.router.add_get("/1.0/status", self._ready)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=STOP_CLOSE_SECONDS)
        await runner.setup()
        path = self.settings.run_dir / SOCKET_NAME
        path.unlink(missing_ok=True)
        await web.UnixSite(runner, str(path)).start()
        path.chmod(0o660)
        return runner

    async def _internal_site(self) -> web.AppRunner:
        app = web.Application(client_max_size=self.settings.tunnel_max_answer_mib * _MIB)
        app.router.add_post(FORWARD_PATH, self._forward)
        app.router.add_delete(FORWARD_PATH, self._drop)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=STOP_CLOSE_SECONDS)
        await runner.setup()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.load_cert_chain(
            self.settings.connector_cert_file, self.settings.connector_key_file
        )
        site = web.TCPSite(runner, port=self.settings.tunnel_port, ssl_context=context)
        await site.start()
        return runner

    async def _db(self, work: Callable[[DbConnection], T]) -> T:
        return await asyncio.to_thread(self._database.run, work)

    # -- MicroCloud's side ---------------------------------------------------------------

    async def _accept(self, request: web.Request) -> web.StreamResponse:
        """Authenticate, register and then hold one cluster's websocket until it closes."""
        if request.method != "GET":
            return _envelope(405, "", Allow="GET")
        header = request.headers.get(CLIENT_CERT_HEADER)
        fingerprint = client_fingerprint(header)
        if fingerprint is None:
            return _envelope(403)
        settings = self.settings
        socket = web.WebSocketResponse(
            # aiohttp waits half the interval for the pong; microcloudd answers pings only
            # between requests, and a request may take its 30 s LXD timeout.
            heartbeat=settings.tunnel_ping_interval,
            max_msg_size=settings.tunnel_max_answer_mib * _MIB,
            compress=False,
        )
        if not socket.can_prepare(request).ok:
            return _envelope(400, "a websocket upgrade is required")
        connection = uuid.uuid4()
        self._registering.add(connection)
        try:
            try:
                registration = await self._db(
                    lambda conn: register(conn, fingerprint, self.holder, connection)
                )
            except DatabaseUnavailable:
                return _envelope(503, "database unavailable")
            if registration is None:
                # Say why when it is the certificate's dates (the statement checked them).
                return _envelope(403, certificate_problem(header) or "")
            socket.headers[ENROLLED_HEADER] = "1"
            await socket.prepare(request)
            tunnel = Tunnel(
                registration.cluster_id,
                registration.cluster,
                connection,
                socket,
                settings.tunnel_queue_size,
            )
            replaced = self.tunnels.add(tunnel)
        finally:
            self._registering.discard(connection)
        logger.info("tunnel of %s opened (%s)", tunnel.cluster, connection)
        if replaced is not None:
            self._spawn(replaced.close(WSCloseCode.OK, "replaced by a newer tunnel"))
        elif registration.replaced_holder not in (None, self.holder):
            self._spawn(self._ask_peer_to_drop(registration))
        try:
            async for message in socket:
                if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    tunnel.deliver(message.data)
                elif message.type == WSMsgType.ERROR:  # a message over the size limit, …
                    tunnel.failure = message.data
                    break
        finally:
            tunnel.fail_pending()
            self.tunnels.remove(tunnel)
            await self._unregister(tunnel)
            await tunnel.close(WSCloseCode.MESSAGE_TOO_BIG if _too_big(tunnel) else WSCloseCode.OK)
        return socket

    async def _unregister(self, tunnel: Tunnel) -> None:
        code = tunnel.socket.close_code
        logger.info("tunnel of %s closed (code %s)", tunnel.cluster, code)
        try:
            await self._db(lambda conn: unregister(conn, tunnel.cluster_id, tunnel.connection))
        except DatabaseUnavailable as error:
            logger.warning("tunnel of %s: registration left for later: %s", tunnel.cluster, error)

    async def _ask_peer_to_drop(self, registration: Registration) -> None:
        """A cluster's new socket reached this unit while another unit held its old one."""
        if self._peers is None:
            return
        url = f"https://{registration.replaced_holder}" + FORWARD_PATH.format(
            cluster_id=registration.cluster_id
        )
        params = {"connection": str(registration.replaced_connection)}
        headers = {SECRET_HEADER: self.settings.tunnel_secret}
        try:
            async with self._peers.delete(url, params=params, headers=headers) as answer:
                await answer.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            # Its reconcile closes the old socket anyway: the row names this unit now.
            logger.info("could not reach %s to drop an old tunnel: %s", url, error)

    # -- the other units' side -------------------------------------------------------------

    def _trusted(self, request: web.Request) -> bool:
        presented = request.headers.get(SECRET_HEADER, "")
        return hmac.compare_digest(presented.encode(), self.settings.tunnel_secret.encode())

    async def _forward(self, request: web.Request) -> web.Response:
        """Send one request frame through a tunnel of this unit; the cluster's answer frame."""
        if not self._trusted(request):
            return _envelope(403)
        tunnel = self._tunnel_of(request)
        if tunnel is None:
            return _envelope(404, "this unit holds no tunnel of the cluster")
        try:
            frame = _request_frame(await request.json())
        except ValueError as error:
            return _envelope(400, str(error))
        timeout = min(frame.pop("timeout"), self.settings.tunnel_timeout)
        try:
            answer = await tunnel.request(frame, timeout)
        except TunnelBusy:
            message = f"{tunnel.queue_size} requests to {tunnel.cluster} are waiting already"
            return _envelope(503, message, **{"Retry-After": "1"})
        except TunnelTimeout:
            return _envelope(504, f"cluster {tunnel.cluster} did not answer within {timeout:g}s")
        except TunnelClosed:
            return _envelope(502, _closed_message(tunnel, self.settings.tunnel_max_answer_mib))
        answer.pop("uuid", None)
        return web.json_response(answer)

    async def _drop(self, request: web.Request) -> web.Response:
        """Close a tunnel that a newer socket on another unit replaced."""
        if not self._trusted(request):
            return _envelope(403)
        tunnel = self._tunnel_of(request)
        if tunnel is not None and str(tunnel.connection) == request.query.get("connection"):
            self._spawn(tunnel.close(WSCloseCode.OK, "replaced by a newer tunnel"))
        return web.json_response({})

    def _tunnel_of(self, request: web.Request) -> Tunnel | None:
        try:
            return self.tunnels.get(int(request.match_info["cluster_id"]))
        except ValueError:
            return None

    # -- health and housekeeping -----------------------------------------------------------

    async def _alive(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _ready(self, _request: web.Request) -> web.Response:
        try:
            await asyncio.to_thread(self._database.ping)
        except DatabaseUnavailable as error:
            return _envelope(503, f"database unavailable: {error}")
        return web.Response(text=sync_body(None), headers=JSON_HEADERS)

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.tunnel_check_interval)
            try:
                await self.reconcile()
            except DatabaseUnavailable as error:
                logger.warning("tunnel registrations not checked: %s", error)

    async def reconcile(self) -> None:
        """Close the sockets the database gives no longer to this unit; clear its stale rows."""
        held = self.tunnels.all()
        registered = await self._db(lambda conn: registered_connections(conn, self.holder))
        for tunnel in held:
            if tunnel.connection not in registered:
                logger.info("tunnel of %s is no longer this unit's: closing it", tunnel.cluster)
                self._spawn(tunnel.close(WSCloseCode.POLICY_VIOLATION, "cluster removed"))
        await self._clear_own_registrations()

    async def _clear_own_registrations(self, keep_open: bool = True) -> None:
        keep = self.tunnels.connections() | self._registering if keep_open else set()
        try:
            cleared = await self._db(lambda conn: forget_holder(conn, self.holder, keep))
        except DatabaseUnavailable as error:
            logger.warning("tunnel registrations of %s not cleared: %s", self.holder, error)
            return
        if cleared:
            logger.info("cleared %d tunnel registrations this unit no longer holds", cleared)

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _request_frame(body: Any) -> dict[str, Any]:
    """The request frame another unit sent, checked before it goes to a cluster."""
    if not isinstance(body, dict):
        raise ValueError("the request must be a JSON object")
    method, path = body.get("method"), body.get("path")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}")
    if not isinstance(path, str):
        raise ValueError("path must be a string")
    problem = lxd_path_problem(path)
    if problem is not None:
        raise ValueError(problem)
    headers = body.get("headers") or {}
    if not isinstance(headers, dict):
        raise ValueError("headers must be an object")
    payload = body.get("body")
    if payload is not None and not isinstance(payload, str):
        raise ValueError("body must be base64 text or null")
    timeout = body.get("timeout", math.inf)
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise ValueError("timeout must be a positive number of seconds")
    return {
        "method": method,
        "path": path,
        "headers": headers,
        "body": payload,
        "timeout": timeout,
    }


def _too_big(tunnel: Tunnel) -> bool:
    failure = tunnel.failure
    return isinstance(failure, WebSocketError) and failure.code == WSCloseCode.MESSAGE_TOO_BIG


def _closed_message(tunnel: Tunnel, max_answer_mib: int) -> str:
    if _too_big(tunnel):
        return f"the answer of {tunnel.cluster} was larger than {max_answer_mib} MiB"
    return f"the tunnel of {tunnel.cluster} closed before it answered"
