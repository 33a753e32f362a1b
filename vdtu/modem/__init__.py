"""The cellular side of a DTU: modem, SIM slot, radio signal, registration, SMS, AT commands.

``registration`` and ``at`` are pure (standard library only); ``sim``,
``signal`` and ``modem`` are SimPy models. A unit wires them together::

    sim = SimSlot(env, card=SimCard(iccid=..., imsi=..., phone=...))
    signal = Signal(env, rng)
    modem = Modem(env, rng, imei=..., sim=sim, signal=signal, epoch_s=clock.epoch_s)
    modem.power_on()
    at = AtInterpreter(modem)
"""

from __future__ import annotations

from vdtu.modem.at import AtInterpreter, ModemView
from vdtu.modem.modem import Modem, StopCause
from vdtu.modem.registration import (
    REGISTERED_STATS,
    NetMode,
    NetState,
    RegInput,
    Registration,
    RegStat,
    SimState,
    net_state,
)
from vdtu.modem.signal import Signal
from vdtu.modem.sim import SimCard, SimSlot
from vdtu.modem.sms import SmsOutbox, SmsRecord, sms_parts

__all__ = [
    "REGISTERED_STATS",
    "AtInterpreter",
    "Modem",
    "ModemView",
    "NetMode",
    "NetState",
    "RegInput",
    "RegStat",
    "Registration",
    "Signal",
    "SimCard",
    "SimSlot",
    "SimState",
    "SmsOutbox",
    "SmsRecord",
    "StopCause",
    "net_state",
    "sms_parts",
]
