"""MicroCloud's reverse tunnel to the cluster manager, emulated the way ``microcloudd`` does it.

Read from canonical/microcloud (copying nothing): ``cmd/microcloudd/cluster_manager_tunnel.go``
(the 10 s reconcile ticker, one request at a time, the path and method checks, the headers
forwarded to LXD, the 30 s LXD timeout, the error answers), ``client/cluster_manager_client.go``
(``ConnectTunnel``: the same certificate probe, fingerprint pin and client certificate as
heartbeats, a bare gorilla ``websocket.Dialer``), ``api/types/cluster_manager.go`` (the frame
structs). From gorilla/websocket v1.5.3 (microcloud's go.mod): ``client.go`` (handshake headers,
no Origin, no timeout, no proxy), ``conn.go`` (4096-byte write frames, no read limit, pings
answered only while reading, a close frame echoed, ``Close`` drops TCP without a close frame),
``json.go`` (``WriteJSON`` is a Go ``json.Encoder``: newline at the end; ``ReadJSON`` decodes one
value of any data message). From Go's ``net/http/cookie.go``: the ``http.Cookie`` fields and
``ParseSetCookie``. ``docs/reverse-tunnel.md`` ("What microcloudd does") lists the facts.

Example:
    lxd = EmulatedLXD()
    tunnel = TunnelClient(MicroCloudClient(token, resolve=...), lxd).start()
    tunnel.wait_connected(15)
    ...
    tunnel.stop()
"""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
import contextlib
import hashlib
import json
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.utilities import LocalProtocolError

from tools import gojson
from tools.lxd import LXDRequest, LXDResponse
from tools.microcloud import TUNNEL_CHECK_INTERVAL, MicroCloudClient
from tools.tlsclient import GO_USER_AGENT, ClusterManagerError, pinned_context

TUNNEL_PATH = "/1.0/remote-cluster/ws"
LXD_TIMEOUT = 30.0  # the LXD http.Client timeout
ALLOWED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# gorilla's default write buffer: a longer message goes out as several frames of this size.
GORILLA_FRAME_SIZE = 4096
# version.UserAgent of LXD (shared/version/useragent.go) plus the cookie-jar feature.
LXD_USER_AGENT = "LXD 6.5 (Linux; x86_64; 24.04; 6.8.0) (cookiejar)"
LXD_PORT = 8443
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_BODY_METHODS = ("POST", "PUT", "PATCH")

LXDHandler = Callable[[LXDRequest], LXDResponse]


class FrameError(ValueError):
    """A request frame Go's ``json.Decoder`` would refuse; microcloudd then drops the tunnel."""


class TunnelHandshakeError(ConnectionError):
    """The manager did not upgrade the connection to a websocket."""

    def __init__(self, status: int, body: bytes):
        super().__init__(f"websocket: bad handshake (HTTP {status})")
        self.status = status
        self.body = body


class TunnelClosed(ConnectionError):
    """The websocket ended (close frame, EOF or socket error)."""


@dataclass(frozen=True)
class TunnelRequest:
    """``ClusterManagerTunnelRequest`` after Go decoded it (absent or null fields are zero)."""

    uuid: str = ""
    method: str = ""
    path: str = ""
    headers: Mapping[str, list[str]] | None = None
    body: bytes | None = None


# --- frames ----------------------------------------------------------------------------------

_STRING_FIELDS = ("uuid", "method", "path")


def decode_request(payload: str | bytes) -> TunnelRequest:
    """Decode one request message the way ``conn.ReadJSON(&req)`` does.

    Go matches field names case-insensitively, ignores unknown fields and anything after the
    first JSON value, leaves null fields zero, and fails on a wrong type or bad base64.

    Args:
        payload: the message (text or binary: gorilla reads both).

    Returns:
        The decoded request.

    Raises:
        FrameError: when Go's decoder returns an error.
    """
    text = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else payload
    start = len(text) - len(text.lstrip(" \t\r\n"))
    if start == len(text):
        raise FrameError("unexpected EOF")
    try:
        value, _ = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise FrameError(str(exc)) from exc
    if value is None:
        return TunnelRequest()
    if not isinstance(value, dict):
        raise FrameError(
            "json: cannot unmarshal into Go value of type ClusterManagerTunnelRequest"
        )
    fields: dict[str, Any] = {}
    for key, item in value.items():
        name = key.lower()
        if name in _STRING_FIELDS:
            if item is not None and not isinstance(item, str):
                raise FrameError(f"json: cannot unmarshal into field {name} of type string")
            if item is not None:
                fields[name] = item
        elif name == "headers":
            fields[name] = _decode_headers(item)
        elif name == "body":
            fields[name] = _decode_body(item)
    return TunnelRequest(**fields)


def _decode_headers(item: Any) -> dict[str, list[str]] | None:
    if item is None:
        return None
    if not isinstance(item, dict):
        raise FrameError("json: cannot unmarshal into field headers of type http.Header")
    headers: dict[str, list[str]] = {}
    for name, values in item.items():
        if values is None:
            headers[name] = []
            continue
        if not isinstance(values, list) or any(
            v is not None and not isinstance(v, str) for v in values
        ):
            raise FrameError("json: cannot unmarshal into field headers of type []string")
        headers[name] = [v or "" for v in values]
    return headers


def _decode_body(item: Any) -> bytes | None:
    if item is None:
        return None
    if not isinstance(item, str):
        raise FrameError("json: cannot unmarshal into field body of type []uint8")
    try:
        # Go's base64.StdEncoding: padding required, CR and LF ignored.
        return base64.b64decode(item.replace("\r", "").replace("\n", ""), validate=True)
    except binascii.Error as exc:
        raise FrameError(f"illegal base64 data: {exc}") from exc


def encode_response(response: Mapping[str, Any]) -> str:
    """A response frame as gorilla's ``WriteJSON`` writes it (Go encoder, trailing newline)."""
    return gojson.dumps(dict(response)) + "\n"


def error_answer(uuid: str, status: int) -> dict[str, Any]:
    """The answer microcloudd sends when it does not (or cannot) ask LXD: nil fields are null."""
    return {"uuid": uuid, "status": status, "headers": None, "cookies": None, "body": None}


def go_time(value: datetime | None) -> str:
    """A time as Go's ``time.Time`` marshals it (RFC 3339, trailing zeros of the fraction cut)."""
    if value is None:
        return "0001-01-01T00:00:00Z"
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_GO_TIME = re.compile(
    r"^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2})([ -])(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct"
    r"|Nov|Dec)\2(\d{4}) (\d{2}):(\d{2}):(\d{2}) [A-Z]{3,}$"
)
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_WS = " \t\r\n"


def _cookie_value(raw: str, allow_quote: bool) -> tuple[str, bool, bool]:
    quoted = False
    if allow_quote and len(raw) > 1 and raw[0] == '"' and raw[-1] == '"':
        raw, quoted = raw[1:-1], True
    ok = all(0x20 <= ord(c) < 0x7F and c not in '";\\' for c in raw)
    return (raw if ok else ""), quoted, ok


def _expires(value: str) -> datetime | None:
    match = _GO_TIME.match(value)
    if match is None:
        return None
    day, _, month, year, hour, minute, second = match.groups()
    try:
        return datetime(
            int(year), _MONTHS.index(month) + 1, int(day), int(hour), int(minute), int(second),
            tzinfo=UTC,
        )  # fmt: skip
    except ValueError:
        return None


def parse_set_cookie(line: str) -> dict[str, Any] | None:
    """One ``Set-Cookie`` value as Go's ``http.ParseSetCookie`` reads it, as JSON fields.

    Args:
        line: the header value.

    Returns:
        The ``http.Cookie`` object with Go's (capitalised) field names in Go's order, or None
        when Go drops the line.
    """
    parts = line.strip(_WS).split(";")
    if len(parts) == 1 and parts[0] == "":
        return None
    name, sep, value = parts[0].strip(_WS).partition("=")
    name = name.strip(_WS)
    if not sep or not _TOKEN.match(name):
        return None
    value, quoted, ok = _cookie_value(value, True)
    if not ok:
        return None
    cookie: dict[str, Any] = {
        "Name": name,
        "Value": value,
        "Quoted": quoted,
        "Path": "",
        "Domain": "",
        "Expires": None,
        "RawExpires": "",
        "MaxAge": 0,
        "Secure": False,
        "HttpOnly": False,
        "SameSite": 0,
        "Partitioned": False,
        "Raw": line,
        "Unparsed": [],
    }
    for part in parts[1:]:
        part = part.strip(_WS)
        attr, _, val = part.partition("=")
        if not part or not attr.isascii():
            continue
        val, _, ok = _cookie_value(val, False)
        if not ok or not _cookie_attribute(cookie, attr.lower(), val):
            cookie["Unparsed"].append(part)
    cookie["Expires"] = go_time(cookie["Expires"])
    cookie["Unparsed"] = cookie["Unparsed"] or None
    return cookie


_SAME_SITE = {"lax": 2, "strict": 3, "none": 4}  # 1 is SameSiteDefaultMode
_FLAGS = {"secure": "Secure", "httponly": "HttpOnly", "partitioned": "Partitioned"}


def _cookie_attribute(cookie: dict[str, Any], attr: str, val: str) -> bool:
    """Apply one attribute; False when Go keeps it in ``Unparsed``."""
    if attr == "samesite":
        cookie["SameSite"] = _SAME_SITE.get(val.lower(), 1) if val.isascii() else 1
    elif attr in _FLAGS:
        cookie[_FLAGS[attr]] = True
    elif attr in ("domain", "path"):
        cookie[attr.capitalize()] = val
    elif attr == "max-age":
        if not re.fullmatch(r"[+-]?\d+", val) or (int(val) != 0 and val[0] == "0"):
            return False
        cookie["MaxAge"] = int(val) if int(val) > 0 else -1
    elif attr == "expires":
        cookie["RawExpires"] = val
        cookie["Expires"] = _expires(val)
        return cookie["Expires"] is not None
    else:
        return False
    return True


def canonical_header(name: str) -> str:
    """Go's ``textproto.CanonicalMIMEHeaderKey`` (names with invalid bytes stay as they are)."""
    if not _TOKEN.match(name):
        return name
    return "-".join(word[:1].upper() + word[1:].lower() for word in name.split("-"))


def _bad_target(path: str) -> bool:
    """Whether Go's ``url.Parse`` (inside ``http.NewRequest``) refuses ``https://host<path>``."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return True
    return re.search(r"%(?![0-9A-Fa-f]{2})", path.split("?", 1)[0].split("#", 1)[0]) is not None


def _bad_header_value(value: str) -> bool:
    """Go's transport refuses header values with control characters other than tab."""
    return any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value)


def _first(headers: Mapping[str, list[str]] | None, name: str) -> str:
    """``http.Header.Get`` on a header map decoded from JSON: the key must be canonical."""
    values = (headers or {}).get(name) or []
    return values[0] if values else ""


@dataclass
class RequestHandler:
    """``handleTunnelRequest``: check, forward to LXD, turn LXD's answer into a frame.

    Attributes:
        lxd: the LXD to ask.
        lxd_address: ``host:port`` of LXD's ``core.https_address`` (the Host header).
        timeout: seconds to wait for LXD before answering 500.
    """

    lxd: LXDHandler
    lxd_address: str = f"10.0.0.1:{LXD_PORT}"
    timeout: float = LXD_TIMEOUT
    _pool: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(4, "emulated-lxd")
    )

    def __call__(self, request: TunnelRequest) -> dict[str, Any]:
        """Answer one request frame (what microcloudd writes back)."""
        if request.path != "/1.0" and not request.path.startswith("/1.0/"):
            return error_answer(request.uuid, 400)
        if request.method not in ALLOWED_METHODS:
            return error_answer(request.uuid, 405)
        if _bad_target(request.path):
            return error_answer(request.uuid, 500)
        body = request.body or b""
        cookie = _first(request.headers, "Cookie")
        authorization = _first(request.headers, "Authorization")
        if _bad_header_value(cookie) or _bad_header_value(authorization):
            return error_answer(request.uuid, 500)
        # Go's transport writes Host, User-Agent, Content-Length, then the headers sorted, then
        # Accept-Encoding; Header.Set("Cookie", "") still sends an empty header.
        headers: list[tuple[str, str]] = [
            ("Host", self.lxd_address),
            ("User-Agent", LXD_USER_AGENT),
        ]
        if body or request.method in _BODY_METHODS:
            headers.append(("Content-Length", str(len(body))))
        headers += [("Authorization", authorization.strip(_WS)), ("Cookie", cookie.strip(_WS))]
        headers.append(("Accept-Encoding", "gzip"))
        target = request.path.split("#", 1)[0]
        lxd_request = LXDRequest(request.method, target, tuple(headers), body)
        future = self._pool.submit(self.lxd, lxd_request)
        try:
            answer = future.result(self.timeout)
        except Exception:  # timeout or LXD failure: microcloudd logs it and answers 500
            return error_answer(request.uuid, 500)
        return self.frame(request.uuid, answer)

    @staticmethod
    def frame(uuid: str, answer: LXDResponse) -> dict[str, Any]:
        """LXD's response as ``ClusterManagerTunnelResponse`` (header keys sorted, as Go)."""
        grouped: dict[str, list[str]] = {}
        for name, value in answer.headers:
            grouped.setdefault(canonical_header(name), []).append(value)
        cookies = [
            cookie
            for line in grouped.get("Set-Cookie", [])
            if (cookie := parse_set_cookie(line)) is not None
        ]
        return {
            "uuid": uuid,
            "status": answer.status,
            "headers": {name: grouped[name] for name in sorted(grouped)},
            "cookies": cookies,
            "body": base64.b64encode(answer.body).decode(),
        }

    def close(self) -> None:
        """Stop the LXD worker threads (a call still running is abandoned)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


# --- the websocket ---------------------------------------------------------------------------


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value for a ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()  # noqa: S324


def handshake_request(host: str, key: str) -> bytes:
    """The upgrade request bytes gorilla's ``Dialer`` writes (through Go's ``Request.Write``)."""
    return (
        f"GET {TUNNEL_PATH} HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        f"User-Agent: {GO_USER_AGENT}\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Upgrade: websocket\r\n"
        "\r\n"
    ).encode()


def _tokens(headers: Mapping[str, str], name: str) -> set[str]:
    return {t.strip().lower() for t in headers.get(name.lower(), "").split(",")}


class WebSocket:
    """One client websocket over a TLS socket, read and written like a gorilla ``Conn``."""

    def __init__(self, sock: ssl.SSLSocket, trailing: bytes = b""):
        self.sock = sock
        self._ws = Connection(ConnectionType.CLIENT, trailing_data=trailing)
        self._write_lock = threading.Lock()

    @classmethod
    def connect(cls, sock: ssl.SSLSocket, host: str) -> WebSocket:
        """Do the upgrade handshake on an open TLS socket.

        Args:
            sock: the TLS connection to the manager.
            host: the ``Host`` header (the token address).

        Returns:
            The open websocket.

        Raises:
            TunnelHandshakeError: no valid 101 answer.
            TunnelClosed: the server closed the connection during the handshake.
        """
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(handshake_request(host, key))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise TunnelClosed("connection closed during the websocket handshake")
            data += chunk
            if len(data) > 1 << 20:
                raise TunnelHandshakeError(0, data[:1024])
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        fields = lines[0].split(" ", 2)
        status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            key_name = name.strip().lower()
            headers[key_name] = ", ".join(filter(None, [headers.get(key_name), value.strip()]))
        if (
            status != 101
            or "websocket" not in _tokens(headers, "Upgrade")
            or "upgrade" not in _tokens(headers, "Connection")
            or headers.get("sec-websocket-accept") != accept_key(key)
        ):
            raise TunnelHandshakeError(status, rest[:1024])
        return cls(sock, rest)

    def _send(self, data: bytes) -> None:
        with self._write_lock:
            self.sock.sendall(data)

    def read_message(self) -> str | bytes:
        """The next data message; pings are answered and a close frame echoed meanwhile.

        Raises:
            TunnelClosed: on a close frame, EOF or a socket error.
        """
        parts: list[Any] = []
        while True:
            for event in self._ws.events():
                if isinstance(event, Ping):
                    self._send(self._ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    with contextlib.suppress(LocalProtocolError, OSError):
                        self._send(self._ws.send(CloseConnection(code=event.code)))
                    raise TunnelClosed(f"websocket: close {event.code} {event.reason}".strip())
                elif isinstance(event, TextMessage | BytesMessage):
                    parts.append(event.data)
                    if event.message_finished:
                        if isinstance(event, TextMessage):
                            return "".join(parts)
                        return b"".join(parts)
            try:
                data = self.sock.recv(65536)
            except OSError as exc:
                raise TunnelClosed(str(exc)) from exc
            if not data:
                raise TunnelClosed("unexpected EOF")
            self._ws.receive_data(data)

    def send_text(self, text: str) -> None:
        """Send one text message in gorilla's frames of at most 4096 bytes each."""
        raw = text.encode()
        out = b""
        start = 0
        while True:
            end = min(start + GORILLA_FRAME_SIZE, len(raw))
            while end < len(raw) and raw[end] & 0xC0 == 0x80:  # stay on a character boundary
                end -= 1
            last = end >= len(raw)
            message = TextMessage(data=raw[start:end].decode(), message_finished=last)
            out += self._ws.send(message)
            if last:
                break
            start = end
        self._send(out)

    def abort(self) -> None:
        """Shut the TCP connection down, waking the reading thread, which then closes it.

        Safe from another thread: ``SSLSocket.shutdown`` and ``close`` drop the SSL object under
        a thread still reading or writing it (which then fails with ``ValueError`` or
        ``AttributeError``), so only the socket-level shutdown is done here.
        """
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)

    def close(self) -> None:
        """Drop the TCP connection without a close frame (gorilla's ``Conn.Close``).

        Only for the thread that reads and writes the websocket; others call :meth:`abort`.
        """
        self.abort()
        self.sock.close()


class TunnelClient:
    """The reverse tunnel of one emulated MicroCloud (its database leader).

    Every ``interval`` seconds (the first time one interval after ``start``), while enabled and
    no tunnel is open, it probes the manager, checks the pinned fingerprint and dials
    ``wss://<address>/1.0/remote-cluster/ws`` with the cluster certificate; the dial blocks the
    ticker (missed ticks are dropped, like Go's ``time.Ticker``). Requests are read and answered
    one at a time by one thread; pings are answered only while waiting for a request.

    Attributes:
        client: the MicroCloud whose token, certificate and TLS set-up are used.
        handler: what answers requests (path and method checks, LXD, frames).
        interval: seconds between reconcile ticks.
        enabled: ``reverse_tunnel`` of the cluster-manager config; False closes the tunnel.
        connects: how many tunnels were opened.
        answered: how many requests were answered.
        errors: dial and read errors, newest last.
    """

    def __init__(
        self,
        client: MicroCloudClient,
        lxd: LXDHandler,
        *,
        interval: float = TUNNEL_CHECK_INTERVAL,
        lxd_timeout: float = LXD_TIMEOUT,
        lxd_address: str = f"10.0.0.1:{LXD_PORT}",
        enabled: bool = True,
    ):
        """Set up the tunnel; nothing happens until :meth:`start`.

        Args:
            client: the emulated MicroCloud.
            lxd: the LXD requests are forwarded to.
            interval: seconds between reconcile ticks (microcloudd: 10).
            lxd_timeout: seconds to wait for LXD (microcloudd: 30).
            lxd_address: LXD's address (the Host header LXD sees).
            enabled: whether ``reverse_tunnel`` is on.
        """
        self.client = client
        self.handler = RequestHandler(lxd, lxd_address, lxd_timeout)
        self.interval = interval
        self.enabled = enabled
        self.connects = 0
        self.answered = 0
        self.errors: list[str] = []
        self._socket: WebSocket | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._readers: list[threading.Thread] = []
        self._contexts: dict[bytes, ssl.SSLContext] = {}

    def __enter__(self) -> TunnelClient:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def connected(self) -> bool:
        """Whether a tunnel is open."""
        with self._lock:
            return self._socket is not None

    def start(self) -> TunnelClient:
        """Start the reconcile ticker."""
        self._ticker = threading.Thread(target=self._tick, name="tunnel-ticker", daemon=True)
        self._ticker.start()
        return self

    def stop(self) -> None:
        """Stop the ticker and drop the tunnel (the daemon shutting down).

        Returns once the ticker and the tunnel's reading thread have ended (a reading thread
        waits at most the LXD timeout for a request in progress), so none outlives the client.
        """
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=30)
        self.close_tunnel()
        with self._lock:
            readers, self._readers = self._readers, []
        for reader in readers:
            reader.join(timeout=self.handler.timeout + 5)
        self.handler.close()

    def close_tunnel(self) -> None:
        """Drop the open tunnel, if any, without a close frame (``ensureTunnelClosed``).

        The socket is shut down here; its reading thread wakes up and closes it.
        """
        with self._lock:
            ws, self._socket = self._socket, None
            self._changed.notify_all()
        if ws is not None:
            ws.abort()

    def wait_connected(self, timeout: float, count: int = 1) -> bool:
        """Wait until a tunnel is open and at least ``count`` were opened in all."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._socket is None or self.connects < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def wait_disconnected(self, timeout: float) -> bool:
        """Wait until no tunnel is open."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._socket is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def _tick(self) -> None:
        next_tick = time.monotonic() + self.interval
        while not self._stop.wait(max(0.0, next_tick - time.monotonic())):
            self.reconcile()
            now = time.monotonic()
            while next_tick <= now:
                next_tick += self.interval

    def reconcile(self) -> None:
        """One tick: open the tunnel when enabled and none is open, close it when disabled."""
        if not self.enabled:
            self.close_tunnel()
            return
        if self.connected:
            return
        try:
            ws = self._dial()
        except (OSError, ConnectionError, ValueError, ClusterManagerError) as exc:
            self._error(f"Failed to connect cluster manager tunnel: {exc}")
            return
        reader = threading.Thread(target=self._serve, args=(ws,), name="tunnel", daemon=True)
        with self._lock:
            self._socket = ws
            self.connects += 1
            self._readers = [t for t in self._readers if t.is_alive()] + [reader]
            reader.start()  # under the lock: stop() never sees (and joins) an unstarted thread
            self._changed.notify_all()

    def _dial(self) -> WebSocket:
        destination, der = self.client.probe()
        context = self._contexts.get(der)
        if context is None:
            context = pinned_context(der, self.client.cluster_cert)
            self._contexts = {der: context}
        raw = socket.create_connection(destination.connect, self.client.timeout)
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock = context.wrap_socket(raw, server_hostname=destination.host)
        except BaseException:
            raw.close()
            raise
        try:
            ws = WebSocket.connect(sock, destination.address)
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)  # gorilla sets no read deadline: an idle tunnel waits forever
        return ws

    def _serve(self, ws: WebSocket) -> None:
        try:
            while True:
                message = ws.read_message()
                request = decode_request(message)
                ws.send_text(encode_response(self.handler(request)))
                with self._lock:
                    self.answered += 1
        except (TunnelClosed, FrameError, OSError) as exc:
            self._error(f"Cluster manager tunnel read error: {exc}")
        finally:
            with self._lock:
                mine = self._socket is ws
                if mine:
                    self._socket = None
                    self._changed.notify_all()
            ws.close()

    def _error(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)
            del self.errors[:-50]
