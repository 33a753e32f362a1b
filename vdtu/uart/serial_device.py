"""A unit's port bound to a real serial device (a USB adapter, a board's UART).

pyserial opens and configures the device (baud rate, 8N1, raw); from then on its
file descriptor is driven on the asyncio loop like a PTY master, because
pyserial's own read/write use ``select()`` and break above fd 1023.
"""

from __future__ import annotations

import asyncio
import os

import serial

from vdtu.clock import Clock
from vdtu.errors import ConfigError
from vdtu.log import UnitLog
from vdtu.uart.fd_endpoint import FdEndpoint
from vdtu.uart.line import SerialLine


class SerialDeviceEndpoint(FdEndpoint):
    """A port on a real serial device.

    Args:
        clock: the door into sim time.
        loop: the loop that watches the device.
        line: the unit's serial line for this port.
        log: the unit's log.
        device: the device path, e.g. ``/dev/ttyUSB0``.
    """

    def __init__(
        self,
        clock: Clock,
        loop: asyncio.AbstractEventLoop,
        line: SerialLine,
        log: UnitLog,
        *,
        device: str,
    ) -> None:
        try:
            self.port = serial.Serial(device, baudrate=line.baud, timeout=0, exclusive=True)
        except (serial.SerialException, ValueError) as exc:
            raise ConfigError(
                f"cannot open serial device {device!r} for {line.name}: {exc}"
            ) from exc
        fd = self.port.fileno()
        os.set_blocking(fd, False)
        super().__init__(clock, loop, line, fd, log, name="device", device=device)

    def close(self) -> None:
        """Stop using the device and close it."""
        super().close()
        self.port.close()
