"""The unit's hardware models as the QuecPython commands read them (``executor.QuecDevice``).

GPIO numbering (code 8): the module's GPIO 1..8 are the unit's relay outputs
``out1..out8`` and GPIO 9..16 its opto inputs ``in1..in8``; docs/quec-protocol.md
says the same. Code 11 asks the firmware for its channels' live states.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from vdtu.firmware.hardware import Hardware
from vdtu.modem import SimState

INPUT_GPIO_BASE = 8
"""GPIO ``INPUT_GPIO_BASE + n`` is input ``in<n>``."""


class ChannelStates(Protocol):
    def channel_states(self) -> Mapping[str, int]: ...


class HardwareDevice:
    """``QuecDevice`` over a unit's ``Hardware``.

    Args:
        hardware: the models.
        channels: who knows the channels' states (the firmware).
    """

    def __init__(self, hardware: Hardware, channels: ChannelStates) -> None:
        self.hw = hardware
        self.channels = channels

    @property
    def imei(self) -> str:
        return self.hw.modem.imei

    @property
    def phone_number(self) -> str | None:
        card = self.hw.sim.card
        if card is None or self.hw.modem.sim_state is not SimState.READY:
            return None
        return card.phone

    @property
    def iccid(self) -> str | None:
        return self.hw.modem.iccid

    def csq(self) -> int:
        return self.hw.modem.rssi

    def adc_mv(self, channel: int) -> int:
        return self.hw.adc.read(channel)

    def gpio_level(self, pin: int) -> int:
        gpio = self.hw.gpio
        if 1 <= pin <= INPUT_GPIO_BASE:
            levels = gpio.output_levels()
            name = f"out{pin}"
        else:
            levels = gpio.input_levels()
            name = f"in{pin - INPUT_GPIO_BASE}"
        if name not in levels:
            outputs = len(gpio.output_levels())
            inputs = len(gpio.input_levels())
            raise ValueError(
                f"GPIO {pin} does not exist: this unit has GPIO 1..{outputs} (relays) and "
                f"{INPUT_GPIO_BASE + 1}..{INPUT_GPIO_BASE + inputs} (inputs)"
            )
        return levels[name]

    def vbatt_mv(self) -> int:
        return self.hw.battery.vbat_mv

    def temperature_humidity(self) -> tuple[float, float]:
        return self.hw.sensor.read()

    def channel_states(self) -> Mapping[str, int]:
        return self.channels.channel_states()

    def cell_status(self) -> tuple[int, int]:
        stat = int(self.hw.modem.reg_stat)
        return stat, stat

    def cell_location(self) -> tuple[float, float, int] | None:
        location = self.hw.modem.location
        if location is None:
            return None
        longitude, latitude = location
        return longitude, latitude, 550
