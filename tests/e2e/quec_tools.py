"""Helpers for QuecPython end-to-end tests: the unit's configs, a host on its PTY, and
counterparts the test owns.

Everything here is independent of vdtu's own network code, so it can serve as an
oracle: the TCP, UDP and HTTP counterparts are the standard library's servers, each
on 127.0.0.1 with an ephemeral port, serving in a thread of its own; the cloud side
of MQTT-type channels is a plain paho client logged in with the console login that
``vdtu up`` writes to ``<pty_dir>/up.json``. What a counterpart receives is kept in
an ``Inbox``, a list guarded by a condition, so a test waits for it with a bound.

The host (``QuecHost``) writes frames on a unit's PTY with pyserial and cuts what the
unit writes back into frames by their length fields (``split_frame``), so two frames
that arrive in one read are still two frames. A gap of ``WRITE_GAP_S`` is kept between
writes: the unit cuts its input into frames at line silences.
"""

from __future__ import annotations

import codecs
import http.server
import json
import os
import queue
import selectors
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import paho.mqtt.client as mqtt
import serial
from paho.mqtt.enums import CallbackAPIVersion

from vdtu.cloud.xgc_api import device_password
from vdtu.firmware.quec.config import DtuConfig
from vdtu.firmware.quec.frames import (
    CONFIG_PREFIX,
    CommandFrame,
    ConfigReply,
    ConfigRequest,
    PassthroughFrame,
    PortBinding,
    WorkMode,
    parse_config_reply,
    parse_frame,
)
from vdtu.firmware.quec.serial_schema import Parity, UartConfig
from vdtu.identity import Identity
from vdtu.links.xgc_stack import default_project

WRITE_GAP_S = 0.05
"""Quiet time the host keeps between two writes, so the unit reads two frames."""
WAIT_S = 10.0
"""The default bound on every wait."""

T = TypeVar("T")


class Inbox(Generic[T]):
    """Items that arrive on another thread, in order; waits are bounded."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self._changed = threading.Condition()

    def add(self, item: T) -> None:
        with self._changed:
            self.items.append(item)
            self._changed.notify_all()

    def wait(
        self, match: Callable[[T], bool], *, start: int = 0, timeout_s: float = WAIT_S
    ) -> tuple[int, T]:
        """The first item at index ``start`` or later that ``match`` accepts, and its index.

        Raises:
            AssertionError: none arrived within ``timeout_s``; the message lists what did.
        """
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                for index in range(start, len(self.items)):
                    if match(self.items[index]):
                        return index, self.items[index]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"nothing matching within {timeout_s} s; got {self.items[start:]!r}"
                    )
                self._changed.wait(left)

    def snapshot(self) -> list[T]:
        """The items so far."""
        with self._changed:
            return list(self.items)


# -- configs ----------------------------------------------------------------------------------


def uconf(*uarts: str, baud: int = 115200) -> dict[str, UartConfig]:
    """``uconf`` opening each UART id at ``baud``, 8N1, no flow control."""
    settings = UartConfig(baudrate=baud, databits=8, parity=Parity.NONE, stopbits=1, flowctl=0)
    return dict.fromkeys(uarts, settings)


def broker_login(seed: int, imei: str) -> tuple[str, str]:
    """The login the fleet's embedded broker accepts from unit ``imei``: (IMEI, password)."""
    _project, secret = default_project(seed)
    return imei, device_password(secret, imei)


def write_unit_config(state_dir: Path, seed: int, unit_id: int, config: DtuConfig) -> Path:
    """Write unit ``unit_id``'s ``dtu_config.json`` where ``vdtu up`` reads it at start."""
    path = state_dir / Identity.for_unit(seed, unit_id).imei / "dtu_config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config.to_json(), ensure_ascii=False))
    return path


# -- the host on a PTY ------------------------------------------------------------------------


def _head_fields(first: str, binding: PortBinding) -> int:
    """How many id fields come before ``len`` in a frame whose first field is ``first``."""
    if first == CONFIG_PREFIX and not binding.reads_config_prefix_as_frame():
        return 1
    if binding.mode is WorkMode.COMMAND:
        kind = binding.channels.get(first)
        if kind is None:
            raise AssertionError(f"the unit wrote a frame for unknown channel {first!r}")
        return 2 if kind.has_topic_id else 1
    assert binding.bound is not None  # a passthrough binding has one
    return 1 if binding.bound.has_topic_id else 0


def split_frame(text: str, binding: PortBinding) -> tuple[str, str] | None:
    """Cut the first whole frame off ``text``: (frame, rest), or None while it is incomplete.

    Frames are ``[ids,]len,crc32,data`` (config replies ``99,len,crc32,json``); ``len``
    counts the characters of ``data``.

    Raises:
        AssertionError: ``text`` does not start with a frame of this port.
    """
    first = text.partition(",")[0]
    if "," not in text:
        return None
    heads = _head_fields(first, binding)
    fields = text.split(",", heads + 2)
    if len(fields) < heads + 3:
        return None
    length_text = fields[heads]
    if not length_text.isdigit():
        raise AssertionError(f"the unit wrote a frame without a length field: {text!r}")
    prefix = len(",".join(fields[: heads + 2])) + 1
    end = prefix + int(length_text)
    if len(text) < end:
        return None
    return text[:end], text[end:]


class QuecHost:
    """A host MCU on one of a unit's PTYs.

    Args:
        path: the PTY (or its link).
        binding: how the unit reads this port (what the host's frames look like).
        baud: the port's speed (the unit's ``uconf``).
    """

    def __init__(self, path: str, binding: PortBinding, *, baud: int = 115200) -> None:
        self.port = serial.serial_for_url(path, baudrate=baud, timeout=0.05)
        self.binding = binding
        self.chunks: list[bytes] = []
        """Whole frames the unit wrote and nobody has taken yet, oldest first."""
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._text = ""
        self._last_write = 0.0

    def close(self) -> None:
        self.port.close()

    def write(self, data: bytes) -> None:
        """Write ``data`` in one go, at least ``WRITE_GAP_S`` after the previous write."""
        wait = self._last_write + WRITE_GAP_S - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self.port.write(data)
        self.port.flush()
        self._last_write = time.monotonic()

    def send(self, frame: CommandFrame | PassthroughFrame | ConfigRequest) -> None:
        self.write(frame.encode())

    def pump(self) -> None:
        """Read what the unit wrote and cut it into frames."""
        data = self.port.read(65536)
        if not data:
            return
        self._text += self._decoder.decode(data)
        while True:
            cut = split_frame(self._text, self.binding)
            if cut is None:
                return
            frame, self._text = cut
            self.chunks.append(frame.encode())

    def take(self, match: Callable[[bytes], bool], *, timeout_s: float = WAIT_S) -> bytes:
        """The oldest frame ``match`` accepts (others stay), waiting up to ``timeout_s``.

        Raises:
            AssertionError: none arrived in time; the message lists what did.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            for index, chunk in enumerate(self.chunks):
                if match(chunk):
                    return self.chunks.pop(index)
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no matching frame within {timeout_s} s; got {self.chunks!r} "
                    f"and {self._text!r} unfinished"
                )
            self.pump()

    def next_frame(self, *, timeout_s: float = WAIT_S) -> CommandFrame | PassthroughFrame:
        """The next data frame the unit wrote, checked (length and CRC-32) and parsed."""
        chunk = self.take(lambda c: not _is_config_reply(c, self.binding), timeout_s=timeout_s)
        parsed = parse_frame(chunk, self.binding)
        assert isinstance(parsed, CommandFrame | PassthroughFrame), parsed
        return parsed

    def command(
        self, code: int, password: str, *, data: Any = None, timeout_s: float = 2.0
    ) -> dict[str, Any]:
        """Send ``code`` on the serial configuration channel; the unit's reply as JSON."""
        self.chunks = [c for c in self.chunks if not _is_config_reply(c, self.binding)]
        message: dict[str, Any] = {"cmd_code": code, "password": password}
        if data is not None:
            message["data"] = data
        self.send(ConfigRequest(text=json.dumps(message)))
        chunk = self.take(lambda c: _is_config_reply(c, self.binding), timeout_s=timeout_s)
        reply = parse_config_reply(chunk)
        assert isinstance(reply, ConfigReply), reply
        value: dict[str, Any] = json.loads(reply.text)
        return value


def _is_config_reply(chunk: bytes, binding: PortBinding) -> bool:
    if not chunk.startswith(f"{CONFIG_PREFIX},".encode()):
        return False
    return not binding.reads_config_prefix_as_frame() or isinstance(
        parse_config_reply(chunk), ConfigReply
    )


def wait_for_channels(
    host: QuecHost,
    password: str,
    ready: Callable[[Mapping[str, int]], bool],
    *,
    timeout_s: float = 40.0,
) -> list[dict[str, int]]:
    """Ask code 11 on the serial configuration channel until ``ready(states)``.

    Returns:
        Every state table seen, the last one ready (the unit boots and registers to
        the network first, so the early questions go unanswered).

    Raises:
        AssertionError: not ready within ``timeout_s``; the message has the last states.
    """
    deadline = time.monotonic() + timeout_s
    seen: list[dict[str, int]] = []
    while True:
        try:
            reply = host.command(11, password, timeout_s=1.0)
        except AssertionError:
            reply = {}
        states = reply.get("data")
        if isinstance(states, dict):
            seen.append(states)
            if ready(states):
                return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"channels not ready within {timeout_s} s: {seen[-3:]}")
        time.sleep(0.3)


# -- the up process's log -------------------------------------------------------------------


class StderrTail:
    """What ``vdtu up`` writes to stderr, read as it comes (so its pipe never fills)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        self._fd = process.stderr.fileno()
        os.set_blocking(self._fd, False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._fd, selectors.EVENT_READ)
        self._bytes = b""

    def text(self) -> str:
        """Everything written so far."""
        while self._selector.select(timeout=0):
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            if not data:
                self._selector.unregister(self._fd)
                break
            self._bytes += data
        return self._bytes.decode(errors="replace")

    def close(self) -> None:
        self._selector.close()


# -- counterparts -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    """One read (TCP), datagram (UDP) or message (MQTT) a counterpart got."""

    data: bytes
    source: Any
    """The connection (TCP), the sender's address (UDP) or the topic (MQTT)."""
    at: float
    """``time.monotonic()`` at arrival."""


class TcpCounterpart:
    """A TCP server: what each connection sends, and a way to write to the newest one."""

    def __init__(self) -> None:
        self.reads: Inbox[Received] = Inbox()
        self.connections: list[socket.socket] = []
        counterpart = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                connection: socket.socket = self.request
                counterpart.connections.append(connection)
                while True:
                    try:
                        data = connection.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    counterpart.reads.add(Received(data, connection, time.monotonic()))

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def stream(self, connection: socket.socket | None = None) -> bytes:
        """Every byte one connection (default: the newest) has sent so far."""
        reads = self.reads.snapshot()
        chosen = connection or (reads[-1].source if reads else None)
        return b"".join(r.data for r in reads if r.source is chosen)

    def send(self, data: bytes) -> None:
        """Write to the newest connection."""
        self.connections[-1].sendall(data)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        for connection in self.connections:
            connection.close()


class UdpCounterpart:
    """A UDP server: every datagram with its sender, and replies to a sender."""

    def __init__(self) -> None:
        self.datagrams: Inbox[Received] = Inbox()
        counterpart = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, _socket = self.request
                counterpart.datagrams.add(Received(data, self.client_address, time.monotonic()))

        self.server = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def send_to(self, address: Any, data: bytes) -> None:
        self.server.socket.sendto(data, address)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True, slots=True)
class HttpRequestSeen:
    """One request an ``HttpCounterpart`` answered."""

    method: str
    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes


class HttpCounterpart:
    """An HTTP server that records each request and answers 200 with ``reply_body``."""

    def __init__(self) -> None:
        self.requests: Inbox[HttpRequestSeen] = Inbox()
        self.reply_body = b""
        """What the next requests get as the body of a 200 answer."""
        counterpart = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                reply = counterpart.reply_body
                counterpart.requests.add(HttpRequestSeen(self.command, self.path, headers, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(reply)

            do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815 (http.server's names)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads ``requests``."""

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class CloudClient:
    """The cloud side of MQTT-type channels: paho with the console login of ``up.json``.

    Args:
        pty_dir: where ``vdtu up`` wrote ``up.json``.
        client_id: this client's id.
    """

    def __init__(self, pty_dir: Path, *, client_id: str = "quec-e2e-cloud") -> None:
        discovery = json.loads((pty_dir / "up.json").read_text())
        self.messages: Inbox[Received] = Inbox()
        self._acks: queue.Queue[int] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.username_pw_set(discovery["username"], discovery["password"])
        self.client.on_message = lambda _c, _u, message: self.messages.add(
            Received(bytes(message.payload), message.topic, time.monotonic())
        )
        self.client.on_subscribe = lambda _c, _u, mid, _codes, _p: self._acks.put(mid)
        connected: queue.Queue[str] = queue.Queue()
        self.client.on_connect = lambda _c, _u, _f, reason, _p: connected.put(str(reason))
        broker = discovery["broker"]
        self.client.connect(broker["host"], broker["port"])
        self.client.loop_start()
        reason = connected.get(timeout=WAIT_S)
        assert reason == "Success", f"the console login was refused: {reason}"

    def subscribe(self, *topics: str) -> None:
        """Subscribe to ``topics`` at QoS 1 and wait for the broker's grant."""
        for topic in topics:
            _result, mid = self.client.subscribe(topic, qos=1)
            while self._acks.get(timeout=WAIT_S) != mid:
                pass

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 and wait until the broker has it."""
        self.client.publish(topic, payload, qos=1).wait_for_publish(WAIT_S)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


# -- each counterpart behind one interface -----------------------------------------------------


class Side(Protocol):
    """A channel's far end: checks one uplink and answers it with a downlink."""

    def arm(self, downlink: bytes) -> None:
        """What the next uplink is answered with."""

    def expect(self, uplink: bytes) -> None:
        """Wait for the next uplink, check it is exactly ``uplink``, answer it."""


@dataclass
class MqttSide:
    """An MQTT-type channel's far end: its publish topic in, its subscribe topic out."""

    cloud: CloudClient
    up_topic: str
    down_topic: str
    cursor: int = 0
    downlink: bytes = b""

    def arm(self, downlink: bytes) -> None:
        self.downlink = downlink

    def expect(self, uplink: bytes) -> None:
        index, message = self.cloud.messages.wait(
            lambda m: m.source == self.up_topic, start=self.cursor
        )
        self.cursor = index + 1
        assert message.data == uplink
        self.cloud.publish(self.down_topic, self.downlink)


@dataclass
class TcpSide:
    """A tcp channel's far end: the newest connection's stream in, a write out."""

    server: TcpCounterpart
    heartbeat: bytes = b""
    """Bytes the unit writes between uplinks (left out of the comparison)."""
    registration: bool = False
    """The stream starts with the registration message (left out of the comparison)."""
    cursor: int = 0
    downlink: bytes = b""

    def payloads(self) -> bytes:
        """The stream without the registration message and the heartbeats."""
        stream = self.server.stream()
        if self.registration:
            end = registration_end(stream)
            stream = b"" if end is None else stream[end:]
        return stream.replace(self.heartbeat, b"") if self.heartbeat else stream

    def arm(self, downlink: bytes) -> None:
        self.downlink = downlink

    def expect(self, uplink: bytes) -> None:
        deadline = time.monotonic() + WAIT_S
        while len(self.payloads()) < self.cursor + len(uplink):
            assert time.monotonic() < deadline, f"TCP got only {self.payloads()!r}"
            time.sleep(0.02)
        payloads = self.payloads()
        assert payloads[self.cursor :] == uplink
        self.cursor = len(payloads)
        self.server.send(self.downlink)


@dataclass
class UdpSide:
    """A udp channel's far end: the next datagram in, a datagram back to its sender out."""

    server: UdpCounterpart
    cursor: int = 0
    downlink: bytes = b""

    def arm(self, downlink: bytes) -> None:
        self.downlink = downlink

    def expect(self, uplink: bytes) -> None:
        index, datagram = self.server.datagrams.wait(lambda _d: True, start=self.cursor)
        self.cursor = index + 1
        assert datagram.data == uplink
        self.server.send_to(datagram.source, self.downlink)


@dataclass
class HttpSide:
    """An http channel's far end: the next request in (a POST to ``path``), its answer out."""

    server: HttpCounterpart
    path: str
    cursor: int = 0

    def arm(self, downlink: bytes) -> None:
        self.server.reply_body = downlink

    def expect(self, uplink: bytes) -> None:
        index, request = self.server.requests.wait(lambda _r: True, start=self.cursor)
        self.cursor = index + 1
        assert (request.method, request.path, request.body) == ("POST", self.path, uplink)
        assert request.headers["content-type"] == "application/json"


def registration_end(stream: bytes) -> int | None:
    """Where the registration message (a JSON object) opening ``stream`` ends, in bytes;
    None while it is incomplete."""
    text = stream.decode(errors="replace")
    try:
        _value, end = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError:
        return None
    return len(text[:end].encode())
