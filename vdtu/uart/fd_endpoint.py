"""A line node backed by a file descriptor on the asyncio loop (PTY master, serial device).

Bytes read from the fd enter sim time through ``Clock.inject`` (the one door) and
are sent on the line from this node; bytes the line delivers to this node are
written to the fd. Writes never block the loop: what the fd will not take now
waits in a bounded buffer and goes out when the fd is writable. If the other
side stops reading for long, the buffer's oldest bytes are dropped, counted in
``lost_bytes`` and logged: never silently.

Reads are paced too: a host cannot push bytes through a real UART faster than its
baud rate, and a real tty makes a fast writer wait. The endpoint keeps track of
how far ahead of the wire it has read and, once ``MAX_AHEAD`` bytes are waiting,
stops reading the fd until the wire has caught up; the kernel's buffer fills and
the host's ``write`` blocks, as on real hardware. So a flood costs the process
wire-speed work and bounded memory, and nothing the host wrote is lost. With
``pacing`` off on the line, reads are not paced.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Callable

from vdtu.clock import Clock
from vdtu.log import LogLevel, UnitLog
from vdtu.uart.line import SerialLine

MAX_PENDING = 64 * 1024
"""Bytes kept for a reader that is not reading, per endpoint."""
MAX_AHEAD = 2048
"""Bytes read from the host that may wait for the wire before reading pauses."""


class FdEndpoint:
    """Move bytes between a non-blocking fd and a serial line.

    Args:
        clock: the clock whose ``inject`` is the door into sim time.
        loop: the asyncio loop that watches the fd.
        line: the serial line this endpoint sits on.
        fd: a non-blocking file descriptor (owned by the subclass).
        log: the unit's log.
        name: the tap's name on the line (``pty``, ``device``).
        device: what a host opens to reach this port.
    """

    def __init__(
        self,
        clock: Clock,
        loop: asyncio.AbstractEventLoop,
        line: SerialLine,
        fd: int,
        log: UnitLog,
        *,
        name: str,
        device: str,
    ) -> None:
        self.clock = clock
        self.device = device
        """What a host opens to reach this port (a PTY link or path, a device path)."""
        self.loop = loop
        self.line = line
        self.fd = fd
        self.log = log
        self.tap = line.attach(self, name, paced=line.half_duplex)
        self.lost_bytes = 0
        self.transform_in: Callable[[bytes], bytes] | None = None
        """Applied to bytes from the fd before they go on the line (a baud-mismatch garbler)."""
        self.transform_out: Callable[[bytes], bytes] | None = None
        """Applied to bytes from the line before they are written to the fd."""
        self._pending = bytearray()
        self._writing = False
        self._closed = False
        self._wire_free_at = 0.0
        """Loop time at which the bytes read so far have crossed the wire."""
        self._resume: asyncio.TimerHandle | None = None
        loop.add_reader(fd, self._readable)

    def receive(self, data: bytes) -> None:
        """Bytes from the line for the outside world (called in sim time)."""
        if self._closed:
            return
        if self.transform_out is not None:
            data = self.transform_out(data)
        if self._pending:
            self._queue(data)
            return
        try:
            written = os.write(self.fd, data)
        except BlockingIOError:
            written = 0
        except OSError as exc:
            self._lose(len(data), f"write failed ({exc.strerror})")
            return
        if written < len(data):
            self._queue(data[written:])

    def _queue(self, data: bytes) -> None:
        self._pending += data
        overflow = len(self._pending) - MAX_PENDING
        if overflow > 0:
            del self._pending[:overflow]
            self._lose(overflow, "the other side is not reading")
        if not self._writing:
            self._writing = True
            self.loop.add_writer(self.fd, self._writable)

    def _lose(self, count: int, why: str) -> None:
        self.lost_bytes += count
        self.log.write(
            self.clock.now, LogLevel.WARN, self.line.name, f"{count} bytes to the host lost: {why}"
        )

    def _writable(self) -> None:
        try:
            written = os.write(self.fd, self._pending)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lose(len(self._pending), f"write failed ({exc.strerror})")
            written = len(self._pending)
        del self._pending[:written]
        if not self._pending:
            self._writing = False
            self.loop.remove_writer(self.fd)

    def _readable(self) -> None:
        room = self._room()
        if room <= 0:
            self._pause()
            return
        try:
            data = os.read(self.fd, room)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EIO:
                return  # a PTY with no slave open; we hold one, so this is transient
            raise
        if not data:
            return
        if self.line.pacing:
            now = self.loop.time()
            self._wire_free_at = max(self._wire_free_at, now) + len(data) * self.line.byte_time_s
        if self.transform_in is not None:
            data = self.transform_in(data)
        self.clock.inject(self.tap.send, data, domain=self.line.domain)

    def _room(self) -> int:
        """How many bytes may be read now without running more than MAX_AHEAD ahead."""
        if not self.line.pacing:
            return 65536
        ahead_s = self._wire_free_at - self.loop.time()
        return MAX_AHEAD - max(0, int(ahead_s / self.line.byte_time_s))

    def _pause(self) -> None:
        """Stop reading until the wire has room again (the host's writes block meanwhile)."""
        self.loop.remove_reader(self.fd)
        wait_s = self._wire_free_at - self.loop.time() - MAX_AHEAD / 2 * self.line.byte_time_s
        self._resume = self.loop.call_later(max(0.0, wait_s), self._resume_reading)

    def _resume_reading(self) -> None:
        self._resume = None
        if not self._closed:
            self.loop.add_reader(self.fd, self._readable)

    def close(self) -> None:
        """Stop watching the fd and leave the line (the subclass closes the fd)."""
        if self._closed:
            return
        self._closed = True
        self.loop.remove_reader(self.fd)
        if self._resume is not None:
            self._resume.cancel()
        if self._writing:
            self.loop.remove_writer(self.fd)
        self.tap.detach()
