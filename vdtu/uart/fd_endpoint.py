"""A line node backed by a file descriptor on the asyncio loop (PTY master, serial device).

Bytes read from the fd enter sim time through ``Clock.inject`` (the one door) and
are sent on the line from this node; bytes the line delivers to this node are
written to the fd. Writes never block the loop: what the fd will not take now
waits in a bounded buffer and goes out when the fd is writable. If the other
side stops reading for long, the buffer's oldest bytes are dropped, counted in
``lost_bytes`` and logged: never silently.
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
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EIO:
                return  # a PTY with no slave open; we hold one, so this is transient
            raise
        if not data:
            return
        if self.transform_in is not None:
            data = self.transform_in(data)
        self.clock.inject(self.tap.send, data)

    def close(self) -> None:
        """Stop watching the fd and leave the line (the subclass closes the fd)."""
        if self._closed:
            return
        self._closed = True
        self.loop.remove_reader(self.fd)
        if self._writing:
            self.loop.remove_writer(self.fd)
        self.tap.detach()
