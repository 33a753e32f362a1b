"""CPU per MQTT connect of a bare ``MqttLink`` against raw sockets speaking the same MQTT.

Run ``python -m bench.link_connect [--links 4000] [--rate 1000] [--publishes 0] [--runs 1]``.

What runs. A private mosquitto (``vdtu.cloud.mosquitto.Mosquitto``, anonymous, no queue
limit) and ``--links`` ``MqttLink``s on one ``MqttHub`` in this process, their
``connect()`` called at ``--rate`` a second (every 10 ms, those due). With
``--publishes N`` each link subscribes to one topic before it connects (so the SUBSCRIBE
goes out after CONNACK) and, once connected, publishes N QoS 1 messages of 220 bytes, as a
unit's first seconds do (the ONLINE message and the properties). A run ends when every
link has connected (and has every PUBACK); its CPU (user + system, ``getrusage``, this
process only: not mosquitto's) from the first ``connect()`` to then, over the links, is the
figure: the dial, CONNECT, CONNACK, the SUBSCRIBE and SUBACK, the PUBLISHes and PUBACKs,
and the loop around them. Closing the links is outside it. Each run is a new hub and a new
broker.

The baseline, in the same run against its own new broker: as many raw non-blocking sockets
on the same loop, dialled on the same schedule, each sending the same MQTT 3.1.1 bytes a
link sends (CONNECT; after CONNACK, the SUBSCRIBE and the N PUBLISHes in one ``send``) and
counting the CONNACKs or PUBACKs it reads (``RawRun``): the kernel's and the loop's share of
a connect, with no MQTT client around them. Each run measures both, links first, and
prints both figures and their ratio (one line each to standard output).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import socket
import sys
import time
from collections.abc import Callable, Sequence

from bench.common import machine_line, progress
from vdtu.cloud.mosquitto import Mosquitto
from vdtu.net.mqtt import MqttHub, MqttLink

STEP_S = 0.01
"""How often the pacing loop calls ``connect()`` on the links that are due."""
PAYLOAD = b'{"seq": 1, "v": "' + b"x" * 200 + b'"}'
DEADLINE_S = 120.0


def cpu_s() -> float:
    """This process's user + system CPU seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Arrivals:
    """The count of what has come back (a CONNACK a client, or a PUBACK a publish)."""

    def __init__(self, links: int, publishes: int) -> None:
        self.publishes = publishes
        self.expected = links * max(publishes, 1)
        self.count = 0
        self.failures: list[str] = []
        self.done = asyncio.Event()
        self.dials: list[Callable[[], None]] = []
        """What starts each client's connect, in order."""

    def arrived(self, *_mid: int) -> None:
        self.count += 1
        if self.count == self.expected:
            self.done.set()


class Run(Arrivals):
    """One run's links on one hub."""

    def __init__(self, hub: MqttHub, port: int, links: int, publishes: int) -> None:
        super().__init__(links, publishes)
        self.dials = [self._link(hub, port, index).connect for index in range(links)]

    def _link(self, hub: MqttHub, port: int, index: int) -> MqttLink:
        link = MqttLink(hub, client_id=f"bench-{index}", host="127.0.0.1", port=port)
        link.on_connect_failed = self.failures.append
        if self.publishes:
            link.subscribe(f"bench/{index}/down", 1)
            link.on_connected = lambda: self._publish(link, index)
            link.on_published = self.arrived
        else:
            link.on_connected = self.arrived
        return link

    def _publish(self, link: MqttLink, index: int) -> None:
        for _ in range(self.publishes):
            link.publish(f"bench/{index}/up", PAYLOAD, qos=1)


def _remaining(length: int) -> bytes:
    """MQTT's variable-length encoding of a packet's remaining length."""
    out = bytearray()
    while True:
        length, digit = divmod(length, 128)
        out.append(digit | (0x80 if length else 0))
        if not length:
            return bytes(out)


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _remaining(len(body)) + body


def _text(value: str) -> bytes:
    data = value.encode()
    return len(data).to_bytes(2, "big") + data


class RawClient:
    """One raw socket speaking the bytes an ``MqttLink`` sends (the baseline)."""

    def __init__(self, run: RawRun, index: int) -> None:
        self.run = run
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.buffer = bytearray()
        # CONNECT: "MQTT", level 4, clean session, keepalive 60, the client id
        self.connect_packet = _packet(
            0x10, _text("MQTT") + bytes([4, 0x02, 0, 60]) + _text(f"bench-{index}")
        )
        self.after_connack = b""
        if run.publishes:
            self.after_connack = _packet(
                0x82, (1).to_bytes(2, "big") + _text(f"bench/{index}/down") + b"\x01"
            )
            for mid in range(2, run.publishes + 2):
                self.after_connack += _packet(
                    0x32, _text(f"bench/{index}/up") + mid.to_bytes(2, "big") + PAYLOAD
                )

    def dial(self) -> None:
        loop = self.run.loop
        if self.sock.connect_ex(("127.0.0.1", self.run.port)) == 0:
            self._connected()
        else:
            loop.add_writer(self.sock.fileno(), self._writable)

    def _writable(self) -> None:
        self.run.loop.remove_writer(self.sock.fileno())
        error = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            self.run.failures.append(os.strerror(error))
            return
        self._connected()

    def _connected(self) -> None:
        self.sock.send(self.connect_packet)
        self.run.loop.add_reader(self.sock.fileno(), self._readable)

    def _readable(self) -> None:
        data = self.sock.recv(4096)
        if not data:
            self.run.failures.append("closed by the broker")
            self.run.loop.remove_reader(self.sock.fileno())
            return
        buffer = self.buffer
        buffer += data
        while len(buffer) >= 2:
            length, shift, at = 0, 0, 1
            while at < len(buffer):
                length |= (buffer[at] & 0x7F) << shift
                shift += 7
                at += 1
                if not buffer[at - 1] & 0x80:
                    break
            else:
                return
            if len(buffer) < at + length:
                return
            kind = buffer[0] >> 4
            del buffer[: at + length]
            if kind == 2:  # CONNACK
                if self.after_connack:
                    self.sock.send(self.after_connack)
                else:
                    self.run.arrived()
            elif kind == 4:  # PUBACK
                self.run.arrived()


class RawRun(Arrivals):
    """The baseline's sockets."""

    def __init__(self, port: int, links: int, publishes: int) -> None:
        super().__init__(links, publishes)
        self.loop = asyncio.get_running_loop()
        self.port = port
        self.clients = [RawClient(self, index) for index in range(links)]
        self.dials = [client.dial for client in self.clients]

    def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_reader(client.sock.fileno())
            client.sock.close()


async def paced(dials: Sequence[Callable[[], None]], rate: float) -> None:
    """Call ``dials`` in order, ``rate`` a second (every ``STEP_S``, those due)."""
    started, called = time.monotonic(), 0
    while called < len(dials):
        due = min(len(dials), int((time.monotonic() - started + STEP_S) * rate))
        for dial in dials[called:due]:
            dial()
        called = max(called, due)
        await asyncio.sleep(STEP_S)


async def measured(run: Arrivals, rate: float) -> tuple[float, float]:
    """CPU and wall seconds from the first dial until everything expected has come back."""
    cpu_before, wall_before = cpu_s(), time.monotonic()
    await paced(run.dials, rate)
    async with asyncio.timeout(DEADLINE_S):
        await run.done.wait()
    if run.failures:
        raise SystemExit(f"{len(run.failures)} connects failed, first: {run.failures[0]}")
    return cpu_s() - cpu_before, time.monotonic() - wall_before


async def one_run(links: int, rate: float, publishes: int) -> str:
    """One run of both kinds, each on a new broker; its report lines."""
    with Mosquitto(max_queued_messages=0) as broker:
        hub = MqttHub(asyncio.get_running_loop())
        try:
            cpu, wall = await measured(Run(hub, broker.url.port, links, publishes), rate)
        finally:
            hub.close()
    with Mosquitto(max_queued_messages=0) as broker:
        raw = RawRun(broker.url.port, links, publishes)
        try:
            raw_cpu, raw_wall = await measured(raw, rate)
        finally:
            raw.close()
    return (
        f"links {links}, {rate:g}/s, {publishes} QoS 1 publishes each:\n"
        f"  MqttLink:    wall {wall:.2f} s, cpu {cpu:.3f} s = {1e6 * cpu / links:.1f} us per link\n"
        f"  raw sockets: wall {raw_wall:.2f} s, cpu {raw_cpu:.3f} s = "
        f"{1e6 * raw_cpu / links:.1f} us per link\n"
        f"  ratio {cpu / raw_cpu:.2f}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options and print each run's figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.link_connect", description=__doc__)
    parser.add_argument("--links", type=int, default=4000)
    parser.add_argument("--rate", type=float, default=1000.0, help="connect() calls a second")
    parser.add_argument("--publishes", type=int, default=0, help="QoS 1 messages per link")
    parser.add_argument("--runs", type=int, default=1)
    options = parser.parse_args(argv)
    if options.links < 1 or options.rate <= 0 or options.publishes < 0 or options.runs < 1:
        parser.error("--links and --runs must be >= 1, --rate > 0, --publishes >= 0")
    print(machine_line())
    for number in range(options.runs):
        progress(f"run {number + 1} of {options.runs}")
        print(asyncio.run(one_run(options.links, options.rate, options.publishes)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
