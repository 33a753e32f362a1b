"""A serial line in sim time: the wire between a DTU port and whatever is on the other end.

A ``SerialLine`` joins nodes. A point-to-point UART or RS-232 line has two (the
DTU's port and the host's PTY); the RS-485 bus has the DTU's transceiver, any
simulated Modbus slaves, and a PTY through which outside code sits on the bus.
A node sends through its ``Tap``; every *other* node receives the bytes.

Pacing: bytes take wire time, 10 bit times a byte (8N1). A transmission starts
when the sender's direction is free (full duplex: each sender has its own
direction; half duplex, as RS-485: the whole bus is one direction) and is
delivered in chunks of about one millisecond of wire time, each chunk arriving
when its last bit has left. With ``pacing=False`` bytes arrive in the next event
at the same sim time (benchmarks of the protocol path alone).

A tap attached with ``paced=False`` skips the wire time for what *it* sends. The
host side of a point-to-point line uses it: the host's UART is outside the
simulation, and when its ``write()`` on the PTY returns the bytes are, for the
host, already sent; pacing them again would only make the DTU look slow. On the
RS-485 bus every talker is paced, because bus timing (t3.5 silences, turn-around)
is what Modbus framing is made of.

On a half-duplex bus a node that starts talking while another transmission is
on the wire waits for it to finish (the transceiver's DE line is modelled as
polite) and the overlap is counted in ``collisions`` so a scenario can see it.

Each paced sender has a transmit buffer of ``TX_BUFFER`` bytes, as a UART driver's
ring has: bytes waiting for the wire (the sender's own, and on a shared bus the
transmission it waits behind) count against it. What does not fit when ``send`` is
called is dropped, as a driver's ``write`` takes only what fits, and counted in
the tap's ``dropped``. So memory and scheduled events per line stay bounded
however fast a node writes.

The line remembers the failure domain it was built in (its unit's): outside input
for it enters sim time in that domain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import simpy

from vdtu.clock.domain import DomainEnvironment

TX_BUFFER = 4096
"""Bytes a paced sender's transmit buffer holds (what is still waiting for the wire)."""

STANDARD_BAUDS = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)


class LineNode(Protocol):
    """Anything attached to a serial line."""

    def receive(self, data: bytes) -> None:
        """Bytes from another node have arrived (called in sim time)."""


@dataclass(slots=True, eq=False)
class Tap:
    """A node's connection to a line; ``send`` puts bytes on the wire."""

    line: SerialLine
    node: LineNode
    name: str
    paced: bool = True
    """Whether what this tap sends takes wire time."""
    busy_until: float = 0.0
    """Full duplex: when this sender's direction is free again."""
    sent: int = 0
    """Bytes this node has sent."""
    received: int = 0
    """Bytes this node has received."""
    dropped: int = 0
    """Bytes this node wrote that its full transmit buffer did not take."""

    def send(self, data: bytes) -> float:
        """Transmit ``data``; returns the sim time at which its last byte has arrived."""
        return self.line.transmit(self, bytes(data))

    def detach(self) -> None:
        """Leave the line; nothing more is delivered to this node."""
        self.line.detach(self)


class SerialLine:
    """A wire joining two (UART, RS-232) or more (RS-485) nodes.

    Args:
        env: the SimPy environment.
        name: ``uart``, ``rs232`` or ``rs485`` (used in diagnostics).
        baud: line speed in bits per second.
        half_duplex: True for RS-485 (one talker at a time on the whole bus).
        pacing: deliver at wire speed (True) or at once (False).
    """

    __slots__ = (
        "_bus_busy_until",
        "_bus_owner",
        "baud",
        "byte_time_s",
        "chunk_bytes",
        "collisions",
        "domain",
        "env",
        "half_duplex",
        "name",
        "pacing",
        "taps",
    )

    def __init__(
        self,
        env: DomainEnvironment,
        *,
        name: str,
        baud: int,
        half_duplex: bool = False,
        pacing: bool = True,
    ) -> None:
        self.env = env
        self.domain = env.domain
        """The failure domain the line was built in (its unit's)."""
        self.name = name
        self.half_duplex = half_duplex
        self.pacing = pacing
        self.taps: list[Tap] = []
        self.collisions = 0
        self._bus_busy_until = 0.0
        self._bus_owner: Tap | None = None
        self.baud = baud
        self.set_baud(baud)

    def set_baud(self, baud: int) -> None:
        """Change the line speed (applies to transmissions that start later)."""
        if not 50 <= baud <= 4_000_000:
            raise ValueError(f"baud must be in 50..4000000, not {baud}")
        self.baud = baud
        self.byte_time_s = 10.0 / baud
        self.chunk_bytes = max(1, round(baud / 10 / 1000))

    @property
    def silence_s(self) -> float:
        """The Modbus RTU inter-frame gap t3.5 for this speed (1.75 ms above 19200 baud)."""
        return 3.5 * self.byte_time_s if self.baud <= 19200 else 0.00175

    def attach(self, node: LineNode, name: str, *, paced: bool = True) -> Tap:
        """Connect ``node`` to the line (``paced=False``: what it sends takes no wire time)."""
        tap = Tap(line=self, node=node, name=name, paced=paced)
        self.taps.append(tap)
        return tap

    def detach(self, tap: Tap) -> None:
        """Disconnect a tap."""
        if tap in self.taps:
            self.taps.remove(tap)

    def transmit(self, sender: Tap, data: bytes) -> float:
        """Schedule delivery of ``data`` from ``sender`` to every other node.

        A paced sender's bytes beyond its free transmit buffer are dropped (``Tap.dropped``).
        """
        now = float(self.env.now)
        if not data:
            return now
        if not (self.pacing and sender.paced):
            sender.sent += len(data)
            self._schedule(0.0, sender, data)
            return now
        if self.half_duplex:
            if self._bus_busy_until > now and self._bus_owner is not sender:
                self.collisions += 1
            start = max(now, self._bus_busy_until)
        else:
            start = max(now, sender.busy_until)
        waiting = round((start - now) / self.byte_time_s)
        room = max(0, TX_BUFFER - waiting)
        if len(data) > room:
            sender.dropped += len(data) - room
            data = data[:room]
            if not data:
                return start
        sender.sent += len(data)
        step = self.chunk_bytes
        for offset in range(0, len(data), step):
            chunk = data[offset : offset + step]
            arrive_at = start + (offset + len(chunk)) * self.byte_time_s
            self._schedule(arrive_at - now, sender, chunk)
        end = start + len(data) * self.byte_time_s
        if self.half_duplex:
            self._bus_busy_until = end
            self._bus_owner = sender
        else:
            sender.busy_until = end
        return end

    def _schedule(self, delay_s: float, sender: Tap, chunk: bytes) -> None:
        timeout = self.env.timeout(delay_s)
        timeout.callbacks.append(self._deliverer(sender, chunk))

    def _deliverer(self, sender: Tap, chunk: bytes) -> Callable[[simpy.Event], None]:
        def deliver(_event: simpy.Event) -> None:
            for tap in tuple(self.taps):
                if tap is not sender:
                    tap.received += len(chunk)
                    tap.node.receive(chunk)

        return deliver
