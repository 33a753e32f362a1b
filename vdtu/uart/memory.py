"""An in-memory host endpoint: a line node that records what it receives, with sim times.

Used by virtual-time tests, by headless units (no PTY) and by host behaviour
models: ``write`` sends bytes on the line as the host would, ``received``
holds every chunk that arrived, ``take_lines`` returns complete CRLF lines.
Like a PTY host, what it writes on a point-to-point line takes no wire time;
on the RS-485 bus it is paced like every other talker.
"""

from __future__ import annotations

import simpy

from vdtu.uart.line import SerialLine


class MemoryEndpoint:
    """A host (or bus device) that lives only in memory."""

    def __init__(self, env: simpy.Environment, line: SerialLine, *, name: str = "host") -> None:
        self.env = env
        self.tap = line.attach(self, name, paced=line.half_duplex)
        self.received: list[tuple[float, bytes]] = []
        """Every chunk that arrived, with its sim time."""
        self._pending = bytearray()

    def receive(self, data: bytes) -> None:
        self.received.append((float(self.env.now), data))
        self._pending += data

    def write(self, data: bytes) -> float:
        """Send ``data`` on the line, in the line's failure domain; returns when its last
        byte arrives."""
        line = self.tap.line
        with line.env.entered(line.domain):
            return self.tap.send(data)

    def take_lines(self) -> list[bytes]:
        """Complete lines (ending in ``\\n``) received since the last call, terminators kept."""
        lines: list[bytes] = []
        while (end := self._pending.find(b"\n")) >= 0:
            lines.append(bytes(self._pending[: end + 1]))
            del self._pending[: end + 1]
        return lines

    @property
    def data(self) -> bytes:
        """Everything received so far, concatenated."""
        return b"".join(chunk for _, chunk in self.received)
