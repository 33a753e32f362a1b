"""The hardware a DTU firmware drives: one bundle, whatever the personality.

The unit builds the models; a firmware (XGC, QuecPython) receives them as a
``Hardware`` and reads or drives only what its protocol needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from vdtu.io.adc import Adc
from vdtu.io.gpio import Gpio
from vdtu.io.power import Battery
from vdtu.io.sensor import TempHumiditySensor
from vdtu.modem import Modem, SimSlot
from vdtu.uart.line import SerialLine


@dataclass(frozen=True, slots=True, kw_only=True)
class Hardware:
    """The models of one unit."""

    modem: Modem
    sim: SimSlot
    gpio: Gpio
    battery: Battery
    adc: Adc
    sensor: TempHumiditySensor
    lines: dict[str, SerialLine]
    """Serial lines by port: ``uart``, ``rs232``, ``rs485``."""
