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

Faults on the wire (noise, lost bytes, a baud mismatch, garbage toward the host) are
``vdtu.uart.line_faults``; their record sits in ``faults`` only while one is on. They
are conditions of the wire, so a power cycle of the unit does not end them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import simpy

from vdtu.clock.domain import DomainEnvironment
from vdtu.clock.rng import RandomSource, SplitMix64
from vdtu.uart.line_faults import (
    DTU_TAP,
    GARBAGE_TICK_S,
    LineFaults,
    check_direction,
    check_fault_baud,
    check_garbage_count,
    check_garbage_rate,
    check_probability,
)

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
        "faults",
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
        self.faults: LineFaults | None = None
        """The faults on the wire; None while it is healthy."""
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
        faults = self.faults
        if faults is not None and data:
            data = faults.transform(data, from_dtu=sender.name == DTU_TAP, line_baud=self.baud)
        return self._put(sender, data, now, own=True)

    def _put(self, sender: Tap, data: bytes, now: float, *, own: bool) -> float:
        """Pace ``data`` out of ``sender``'s transmitter (``own``: counted as its bytes)."""
        if not data:
            return now
        if not (self.pacing and sender.paced):
            if own:
                sender.sent += len(data)
            self._schedule(0.0, sender, data)
            return now
        start = self._start_at(sender, now)
        waiting = round((start - now) / self.byte_time_s)
        room = max(0, TX_BUFFER - waiting)
        if len(data) > room:
            if own:
                sender.dropped += len(data) - room
            data = data[:room]
            if not data:
                return start
        if own:
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

    def _start_at(self, sender: Tap, now: float) -> float:
        """When a transmission ``sender`` starts now can go on the wire (counts collisions)."""
        if not self.half_duplex:
            return max(now, sender.busy_until)
        if self._bus_busy_until > now and self._bus_owner is not sender:
            self.collisions += 1
        return max(now, self._bus_busy_until)

    def _schedule(self, delay_s: float, sender: Tap | None, chunk: bytes) -> None:
        """Deliver ``chunk`` to every node but ``sender``, ``delay_s`` from now."""

        def deliver(_event: simpy.Event) -> None:
            for tap in tuple(self.taps):
                if tap is not sender:
                    tap.received += len(chunk)
                    tap.node.receive(chunk)

        self.env.call_later(delay_s, deliver)

    # -- faults -------------------------------------------------------------------------------

    def add_noise(self, rate: float, *, rng: RandomSource | None = None) -> None:
        """The bus-noise fault: each byte on the wire, either way, is corrupted with
        probability ``rate`` (0..1).

        Args:
            rate: the probability.
            rng: the faults' random source, if none is set yet (default: seeded from the
                unit's and the line's names).

        Raises:
            ValueError: ``rate`` out of range.
        """
        self._ensure_faults(rng).noise_rate = check_probability("rate", rate)

    def stop_noise(self) -> None:
        """End the bus-noise fault."""
        if self.faults is not None:
            self.faults.noise_rate = None
            self._drop_idle_faults()

    def drop_bytes(
        self, rate: float, *, direction: str = "both", rng: RandomSource | None = None
    ) -> None:
        """The host-drop fault: each byte going ``direction`` (``to-host``, ``from-host``,
        ``both``) is lost with probability ``rate`` (0..1).

        Raises:
            ValueError: ``rate`` or ``direction`` not allowed.
        """
        checked_rate = check_probability("rate", rate)
        checked_direction = check_direction(direction)
        faults = self._ensure_faults(rng)
        faults.drop_rate = checked_rate
        faults.drop_direction = checked_direction

    def stop_dropping(self) -> None:
        """End the host-drop fault."""
        if self.faults is not None:
            self.faults.drop_rate = None
            self._drop_idle_faults()

    def mismatch_baud(self, baud: int) -> None:
        """The host-baud fault: the DTU's port runs at ``baud`` (one of ``FAULT_BAUDS``) while
        the far end keeps ``self.baud``; bytes both ways are misread (``line_faults.misread``).

        Raises:
            ValueError: ``baud`` not allowed.
        """
        self._ensure_faults(None).dtu_baud = check_fault_baud(baud)

    def match_baud(self) -> None:
        """End the host-baud fault: both ends at ``self.baud`` again."""
        if self.faults is not None:
            self.faults.dtu_baud = None
            self._drop_idle_faults()

    def inject_garbage(self, count: int, *, rng: RandomSource | None = None) -> float:
        """The host-garbage fault, one burst: ``count`` (0..4096) random bytes toward the host,
        sent after whatever the DTU is sending.

        Returns:
            The sim time at which the last of them has arrived.

        Raises:
            ValueError: ``count`` out of range.
        """
        count = check_garbage_count(count)
        now = float(self.env.now)
        if count == 0:
            return now
        faults = self._ensure_faults(rng)
        data = faults.garbage(count)
        self._drop_idle_faults()
        dtu = next((tap for tap in self.taps if tap.name == DTU_TAP), None)
        if dtu is None:
            self._schedule(0.0, None, data)
            return now
        return self._put(dtu, data, now, own=False)

    def start_garbage(self, rate: float, *, rng: RandomSource | None = None) -> None:
        """The host-garbage fault, lasting: ``rate`` (0..10000) random bytes a second toward
        the host, a burst every ``GARBAGE_TICK_S``, until ``stop_garbage``.

        Raises:
            ValueError: ``rate`` out of range.
        """
        checked = check_garbage_rate(rate)
        faults = self._ensure_faults(rng)
        faults.garbage_rate = checked or None
        faults.garbage_carry = 0.0
        self._arm_garbage(faults)
        self._drop_idle_faults()

    def stop_garbage(self) -> None:
        """End the lasting host-garbage fault."""
        if self.faults is not None:
            self.faults.garbage_rate = None
            self.faults.garbage_timer = None
            self._drop_idle_faults()

    def clear_faults(self) -> None:
        """End every fault on the line."""
        self.faults = None

    def _ensure_faults(self, rng: RandomSource | None) -> LineFaults:
        if self.faults is None:
            if rng is None:
                unit = self.domain.name if self.domain is not None else ""
                rng = SplitMix64(f"{unit}:{self.name}:faults")
            self.faults = LineFaults(rng)
        return self.faults

    def _drop_idle_faults(self) -> None:
        if self.faults is not None and self.faults.idle:
            self.faults = None

    def _arm_garbage(self, faults: LineFaults) -> None:
        if faults.garbage_rate is None:
            faults.garbage_timer = None
            return
        timer = self.env.timeout(GARBAGE_TICK_S)
        faults.garbage_timer = timer

        def tick(event: simpy.Event) -> None:
            if self.faults is not faults or faults.garbage_timer is not event:
                return
            rate = faults.garbage_rate or 0.0
            faults.garbage_carry += rate * GARBAGE_TICK_S
            count = min(int(faults.garbage_carry), 4096)
            faults.garbage_carry -= count
            if count:
                self.inject_garbage(count)
            self._arm_garbage(faults)

        timer.callbacks.append(tick)
