"""A unit's serial port exposed as a pseudo-terminal with a stable symlink.

``os.openpty`` gives the pair; the slave is put in raw mode at the port's baud
rate so a host that does not configure the port still gets clean bytes at the
right speed. vdtu keeps one slave fd open itself, so the master never reads EIO
between host reconnects (with no slave fd open, the master reads EIO until a host opens
the slave again).

The host's line settings are visible on the master: ``TCGETS2`` gives the exact
baud (standard or not) and CSTOPB. There is no change notification, so
``poll_host_settings`` is called periodically by the fleet. A baud that differs
from the port's is logged and shown in ``host_baud``; with the ``garble`` policy
the bytes are also corrupted both ways, as a real UART at the wrong speed would.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import random
import struct
import termios
import tty
from enum import StrEnum
from pathlib import Path

from vdtu.clock import Clock
from vdtu.log import LogLevel, UnitLog
from vdtu.uart.fd_endpoint import FdEndpoint
from vdtu.uart.line import SerialLine

TCGETS2 = 0x802C542A
_TERMIOS2 = struct.Struct("IIIIB19sII")
_BAUD_CONSTANTS = {
    getattr(termios, f"B{rate}"): rate
    for rate in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
}


class BaudMismatch(StrEnum):
    """What happens when the host's baud differs from the port's."""

    WARN = "warn"
    """Log it and show it; bytes pass unchanged (the default)."""
    GARBLE = "garble"
    """Log it and corrupt the bytes both ways, as a real line would."""


def read_host_settings(fd: int) -> tuple[int, bool]:
    """The baud rate and two-stop-bits flag set on the slave, read through the master."""
    raw = fcntl.ioctl(fd, TCGETS2, bytes(_TERMIOS2.size))
    _iflag, _oflag, cflag, _lflag, _line, _cc, ispeed, ospeed = _TERMIOS2.unpack(raw)
    return (ospeed or ispeed), bool(cflag & termios.CSTOPB)


class PtyEndpoint(FdEndpoint):
    """A port of a unit on a PTY.

    Args:
        clock: the door into sim time.
        loop: the loop that watches the master.
        line: the unit's serial line for this port.
        log: the unit's log.
        link: where to put the stable symlink to the slave (None: no link).
        mismatch: the baud-mismatch policy.
        rng: random source of the garbler.
    """

    def __init__(
        self,
        clock: Clock,
        loop: asyncio.AbstractEventLoop,
        line: SerialLine,
        log: UnitLog,
        *,
        link: Path | None,
        mismatch: BaudMismatch = BaudMismatch.WARN,
        rng: random.Random | None = None,
    ) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        attrs = termios.tcgetattr(slave)
        speed = next(
            (const for const, rate in _BAUD_CONSTANTS.items() if rate == line.baud), termios.B38400
        )
        attrs[4] = attrs[5] = speed
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        os.set_blocking(master, False)
        self.master = master
        self._slave = slave
        self.path = os.ttyname(slave)
        """The slave device, e.g. ``/dev/pts/7``."""
        self.link = link
        self.mismatch = mismatch
        self._rng = rng if rng is not None else random.Random(self.path)
        self.host_baud: int | None = None
        """The baud the host set on its side, from the last poll."""
        self.host_two_stop_bits = False
        if link is not None:
            link.parent.mkdir(parents=True, exist_ok=True)
            temporary = link.with_name(link.name + ".new")
            temporary.unlink(missing_ok=True)
            temporary.symlink_to(self.path)
            temporary.replace(link)
        device = str(link) if link is not None else self.path
        super().__init__(clock, loop, line, master, log, name="pty", device=device)
        self.poll_host_settings()

    @property
    def baud_mismatch(self) -> bool:
        """True while the host's baud differs from the port's."""
        return self.host_baud is not None and self.host_baud != self.line.baud

    def poll_host_settings(self) -> None:
        """Read the host's line settings and report a change of baud."""
        try:
            baud, two_stop = read_host_settings(self.master)
        except OSError:
            return
        if baud == self.host_baud and two_stop == self.host_two_stop_bits:
            return
        self.host_baud, self.host_two_stop_bits = baud, two_stop
        if self.baud_mismatch:
            self.log.write(
                self.clock.now,
                LogLevel.WARN,
                self.line.name,
                f"host set {baud} baud on {self.device} but the port runs at {self.line.baud}: "
                "a real line would garble every byte",
            )
        garble = self.baud_mismatch and self.mismatch is BaudMismatch.GARBLE
        self.transform_in = self._garble if garble else None
        self.transform_out = self._garble if garble else None

    def _garble(self, data: bytes) -> bytes:
        return bytes(byte ^ self._rng.randrange(1, 256) for byte in data)

    def close(self) -> None:
        """Close the PTY and remove the link (if it still points at this PTY)."""
        super().close()
        if self.link is not None and self.link.is_symlink() and os.readlink(self.link) == self.path:
            self.link.unlink()
        os.close(self.master)
        os.close(self._slave)
