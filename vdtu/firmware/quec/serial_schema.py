"""The serial side of ``dtu_config.json``: ``uconf`` and ``direction_pin``.

How it works: a ``uconf`` key is a module UART number, and ``UART_PORTS`` says which
of the unit's ports it drives. Each entry is a frozen dataclass read and written by
the field mechanism of ``fields`` (every ``uconf`` value is a string in the seed:
``"baudrate": "115200"``; docs/spec/quec.md#7.3) and checked in ``__post_init__``. That a key of
``direction_pin`` or a channel's ``serialID`` names a configured UART is checked by
the whole document (``config.DtuConfig``).

Pure: the standard library and vdtu's own pure modules only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from types import MappingProxyType
from typing import Final

from vdtu.errors import ConfigError
from vdtu.firmware.quec.fields import (
    JsonObject,
    check_choice,
    check_range,
    json_meta,
    read_int,
    show,
    write_str,
)

UART_PORTS: Final[Mapping[str, str]] = MappingProxyType({"0": "rs232", "1": "rs485", "2": "uart"})
"""Which of the unit's ports each ``uconf`` key (a module UART number) drives.

``"2"`` is the module's MAIN UART, the one the firmware's shipped files configure,
and the unit's host port ``uart``. The firmware binds channels to serial ports in
modbus and passthrough mode only for UARTs 0, 1 and 2, so all three ports are in
that range; ``"1"`` is the RS-485 bus with the Modbus slaves, ``"0"`` the RS-232 port.
"""

PORT_UARTS: Final[Mapping[str, str]] = MappingProxyType({p: u for u, p in UART_PORTS.items()})
"""The ``uconf`` key of each of the unit's ports (``{"uart": "2", ...}``)."""

BAUD_RATES: Final = (
    300,
    600,
    1200,
    2400,
    4800,
    9600,
    19200,
    38400,
    57600,
    115200,
    230400,
    460800,
    921600,
)
"""The baud rates a ``uconf`` entry may ask for: the POSIX/Linux standard rates from
300 to 921600, which a host can set on the unit's pseudo-terminal."""

MAX_GPIO: Final = 128
"""The highest GPIO number a ``direction_pin`` or ``pins`` entry may name."""


class Parity(IntEnum):
    """A ``uconf`` entry's parity, as the firmware numbers it."""

    NONE = 0
    EVEN = 1
    ODD = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class UartConfig(JsonObject):
    """One ``uconf`` entry: how the firmware opens a UART (every value a string in the seed).

    Raises:
        ConfigError: a value outside the allowed set, naming it.
    """

    baudrate: int = field(metadata=json_meta("baudrate", read_int, write_str))
    """One of ``BAUD_RATES``."""
    databits: int = field(metadata=json_meta("databits", read_int, write_str))
    """5..8."""
    parity: Parity = field(metadata=json_meta("parity", read_int, write_str))
    """0 none, 1 even, 2 odd."""
    stopbits: int = field(metadata=json_meta("stopbits", read_int, write_str))
    """1 or 2."""
    flowctl: int = field(metadata=json_meta("flowctl", read_int, write_str))
    """0 none, 1 RTS/CTS."""

    def __post_init__(self) -> None:
        check_choice("baudrate", self.baudrate, BAUD_RATES)
        check_range("databits", self.databits, 5, 8)
        if self.parity not in {p.value for p in Parity}:
            raise ConfigError(
                f"parity must be 0 (none), 1 (even) or 2 (odd), not {show(self.parity)}"
            )
        object.__setattr__(self, "parity", Parity(self.parity))
        check_choice("stopbits", self.stopbits, (1, 2))
        check_choice("flowctl", self.flowctl, (0, 1))


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectionPin(JsonObject):
    """One ``direction_pin`` entry: the GPIO that switches an RS-485 transceiver's direction.

    The firmware calls ``uart.control_485(Pin.GPIO<GPIOn>, direction)``.
    """

    gpio: int = field(metadata=json_meta("GPIOn", read_int))
    """The GPIO number, 1..128."""
    direction: int = field(metadata=json_meta("direction", read_int))
    """1: the pin goes high while sending; 0: it goes low while sending."""

    def __post_init__(self) -> None:
        check_range("GPIOn", self.gpio, 1, MAX_GPIO)
        check_choice("direction", self.direction, (0, 1))
