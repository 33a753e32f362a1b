"""The faults of a serial line: noise, lost bytes, a baud mismatch and garbage toward the host.

A ``SerialLine`` holds a ``LineFaults`` in its ``faults`` slot only while a fault is on
(None on a healthy line: a fleet of healthy units pays nothing). ``SerialLine.transmit``
passes each transmission through ``LineFaults.transform`` before it is paced, so a fault
acts on the bytes as they cross the wire, in this order:

1. **noise** (``rate``, both ways): each byte is hit with probability ``rate`` and
   arrives with its bits flipped by a random non-zero mask;
2. **baud mismatch** (``baud``): the DTU's port runs at ``baud`` while the far end
   (the host, or the rest of the bus) keeps the line's configured speed; what crosses
   is what the receiving UART reads of the sender's bit stream (``misread``);
3. **drop** (``rate``, ``direction``): each byte going the given way is lost with
   probability ``rate``.

Which way a byte goes is told by its sender: the firmware's tap is named ``dtu``
(``DTU_TAP``); bytes it sends go ``to-host``, bytes from any other tap (the host's
PTY, a memory host, a slave on the bus) go ``from-host``.

**Garbage toward the host** does not change bytes: random bytes are put on the wire as
if the DTU's transmitter sent them, after whatever it is sending (so its frames arrive
whole, with garbage between them), and are delivered to every node but the DTU's.
``inject`` sends a burst now; a garbage rate sends ``rate`` bytes a second, as a burst
every ``GARBAGE_TICK_S`` (a timer only while the rate is on).

The model of a baud mismatch (``misread``), deterministic: the sender's bytes are one
bit stream at its speed (8N1: a 0 start bit, eight data bits LSB first, a 1 stop bit,
back to back; the line idles at 1 before and after). The receiver waits for the line
to be low (a falling edge, or still low after a framing error), samples the start bit
half a bit time (of its own speed) later — high means a false start and it waits
again — then the data bits and the stop bit at the middle of each of its bit times. A
stop bit read as 0 is a framing error and the byte is read as ``0x00`` (what Linux
delivers by default, without ``PARMRK`` or ``IGNPAR``; the DTU's UART is modelled the
same way). A faster receiver reads one sent byte as several, a slower one reads
several as one; a 2:1 mismatch or more gives mostly ``0x00`` and ``0xFF``-like bytes.
The mangled bytes are then paced like the bytes they replace (at the line's speed):
their timing is approximate, their content exact.

Random draws come from the faults' own seeded source (``rng``), so a run replays.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from vdtu.checks import check_choice, check_int, check_number, check_probability

if TYPE_CHECKING:
    from vdtu.clock.rng import RandomSource

DTU_TAP = "dtu"
"""The name under which a firmware attaches its port to a line (what it sends goes to-host)."""

GARBAGE_TICK_S = 0.1
"""How often a garbage rate puts its bytes on the wire."""
MAX_GARBAGE_BURST = 4096
"""The most garbage bytes one ``inject`` sends (a UART driver's transmit buffer)."""
MAX_GARBAGE_RATE = 10_000.0
"""The highest garbage rate, bytes a second."""
FAULT_BAUDS = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
"""The speeds a mismatched port may run at."""

_FRAMING_ERROR_BYTE = 0x00


class Direction(StrEnum):
    """Which way the bytes a fault acts on go."""

    TO_HOST = "to-host"
    """Sent by the DTU."""
    FROM_HOST = "from-host"
    """Sent by anything else on the line."""
    BOTH = "both"


def check_direction(direction: str) -> Direction:
    """``direction`` as a ``Direction`` (``to-host``, ``from-host`` or ``both``)."""
    return Direction(check_choice("direction", direction, [member.value for member in Direction]))


def check_fault_baud(baud: int) -> int:
    """``baud`` if it is one of ``FAULT_BAUDS``."""
    return check_choice("baud", baud, FAULT_BAUDS)


def check_garbage_count(count: int) -> int:
    """``count`` if it is a garbage burst's size, 0..4096 bytes."""
    return check_int("bytes", count, 0, MAX_GARBAGE_BURST)


def check_garbage_rate(rate: float) -> float:
    """``rate`` if it is a garbage rate, 0..10000 bytes a second."""
    return check_number("rate", rate, 0.0, MAX_GARBAGE_RATE)


def _bit_stream(data: bytes) -> list[int]:
    bits: list[int] = []
    for byte in data:
        bits.append(0)
        bits.extend((byte >> bit) & 1 for bit in range(8))
        bits.append(1)
    return bits


def misread(data: bytes, tx_baud: int, rx_baud: int) -> bytes:
    """What a UART at ``rx_baud`` reads of ``data`` sent back to back at ``tx_baud`` (8N1).

    See the module docstring for the model. Equal speeds read ``data`` unchanged.

    Raises:
        ValueError: a speed that is not a positive integer.
    """
    for name, baud in (("tx_baud", tx_baud), ("rx_baud", rx_baud)):
        check_int(name, baud, 1, 10_000_000)
    if tx_baud == rx_baud:
        return bytes(data)
    bits = _bit_stream(data)
    end = len(bits)
    bit = tx_baud / rx_baud
    """One receiver bit time, in sender bit times (the unit of the stream's clock)."""

    def level(at: float) -> int:
        index = math.floor(at)
        return bits[index] if index < end else 1

    out = bytearray()
    at = 0.0
    while at < end:
        if level(at):
            index = math.floor(at) + 1
            while index < end and bits[index]:
                index += 1
            if index >= end:
                break
            at = float(index)
        start = at
        if level(start + bit / 2):
            at = start + bit / 2
            continue
        value = 0
        for position in range(8):
            value |= level(start + (position + 1.5) * bit) << position
        at = start + 9.5 * bit
        out.append(value if level(at) else _FRAMING_ERROR_BYTE)
    return bytes(out)


class LineFaults:
    """The faults on one line (see the module docstring). Made and dropped by the line."""

    __slots__ = (
        "corrupted",
        "drop_direction",
        "drop_rate",
        "dropped",
        "dtu_baud",
        "garbage_carry",
        "garbage_rate",
        "garbage_timer",
        "injected",
        "noise_rate",
        "rng",
    )

    def __init__(self, rng: RandomSource) -> None:
        self.rng = rng
        self.noise_rate: float | None = None
        self.drop_rate: float | None = None
        self.drop_direction = Direction.BOTH
        self.dtu_baud: int | None = None
        """The speed the DTU's port runs at while mismatched (the far end keeps the line's)."""
        self.garbage_rate: float | None = None
        self.garbage_carry = 0.0
        """The fraction of a garbage byte owed by the last tick."""
        self.garbage_timer: object | None = None
        """The garbage rate's next tick (a timer set earlier does nothing)."""
        self.corrupted = 0
        """Bytes hit by noise."""
        self.dropped = 0
        """Bytes lost."""
        self.injected = 0
        """Garbage bytes sent toward the host."""

    @property
    def idle(self) -> bool:
        """Whether no fault is on (the line may drop this record)."""
        return (
            self.noise_rate is None
            and self.drop_rate is None
            and self.dtu_baud is None
            and self.garbage_rate is None
        )

    def transform(self, data: bytes, *, from_dtu: bool, line_baud: int) -> bytes:
        """What of ``data``, sent by the DTU (``from_dtu``) or another node, crosses the wire."""
        rng = self.rng
        if self.noise_rate:
            rate = self.noise_rate
            hit = bytearray(data)
            for index in range(len(hit)):
                if rate >= 1.0 or rng.random() < rate:
                    hit[index] ^= rng.randrange(1, 256)
                    self.corrupted += 1
            data = bytes(hit)
        if self.dtu_baud is not None:
            if from_dtu:
                data = misread(data, self.dtu_baud, line_baud)
            else:
                data = misread(data, line_baud, self.dtu_baud)
        if self.drop_rate and (
            self.drop_direction is Direction.BOTH
            or (self.drop_direction is Direction.TO_HOST) == from_dtu
        ):
            rate = self.drop_rate
            kept = bytes(byte for byte in data if not (rate >= 1.0 or rng.random() < rate))
            self.dropped += len(data) - len(kept)
            data = kept
        return data

    def garbage(self, count: int) -> bytes:
        """``count`` random bytes."""
        self.injected += count
        return bytes(self.rng.randrange(0, 256) for _ in range(count))

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able view (the line's part of a unit snapshot)."""
        return {
            "noise_rate": self.noise_rate,
            "drop_rate": self.drop_rate,
            "drop_direction": None if self.drop_rate is None else self.drop_direction.value,
            "dtu_baud": self.dtu_baud,
            "garbage_rate": self.garbage_rate,
            "corrupted": self.corrupted,
            "dropped": self.dropped,
            "injected": self.injected,
        }


__all__ = [
    "DTU_TAP",
    "FAULT_BAUDS",
    "GARBAGE_TICK_S",
    "Direction",
    "LineFaults",
    "check_direction",
    "check_fault_baud",
    "check_garbage_count",
    "check_garbage_rate",
    "check_probability",
    "misread",
]
