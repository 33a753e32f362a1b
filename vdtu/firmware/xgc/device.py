"""The unit as the XGC actions read it: ``outcome.XgcDevice`` over the hardware models.

The firmware makes one ``UnitDevice`` per command (and for the notifications that
reuse an action's reply): its own state is copied in (state, pipe, flash, busy
actions, ...), the hardware is read when the action asks (signal, battery, SIM,
registration, GPIO), exactly as the action would have read the models itself.
It holds no state of its own between commands.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any

from vdtu.firmware.hardware import Hardware
from vdtu.firmware.xgc.options import XgcOptions
from vdtu.firmware.xgc.pipe import Pipe
from vdtu.firmware.xgc.states import DtuState
from vdtu.modem import NetMode, NetState, SimState


@dataclass(slots=True, kw_only=True, eq=False)
class UnitDevice:
    """``XgcDevice`` for one command: the firmware's state, and its hardware read live.

    Not a frozen dataclass: one is made for every command, and a frozen one's ``__init__``
    sets each field through ``object.__setattr__`` (2.5 times the cost). Nothing changes it:
    the actions read it as an ``XgcDevice``, whose properties are read-only.
    """

    hardware: Hardware
    version: str
    options: XgcOptions
    state: DtuState
    pipe: Pipe
    flash: Mapping[str, Any]
    busy: Set[str]
    has_cloud_session: bool

    @property
    def imei(self) -> str:
        return self.hardware.modem.imei

    @property
    def model(self) -> str:
        return self.hardware.modem.model

    @property
    def sim_state(self) -> SimState:
        return self.hardware.sim.state

    @property
    def iccid(self) -> str | None:
        return self.hardware.modem.iccid

    @property
    def registered(self) -> bool:
        return self.hardware.modem.registered

    @property
    def rssi(self) -> int:
        return self.hardware.modem.rssi

    @property
    def net_state(self) -> NetState:
        return self.hardware.modem.net_state

    @property
    def net_mode(self) -> NetMode:
        return self.hardware.modem.net_mode

    @property
    def location(self) -> tuple[float, float] | None:
        return self.hardware.modem.location

    def network_time_ms(self) -> int | None:
        return self.hardware.modem.network_time_ms()

    @property
    def vbat_mv(self) -> int:
        return self.hardware.battery.vbat_mv

    @property
    def vbus(self) -> bool:
        return self.hardware.battery.vbus

    def gpio_levels(self) -> Mapping[str, int]:
        gpio = self.hardware.gpio
        return gpio.output_levels() | gpio.input_levels()
