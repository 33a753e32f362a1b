"""The cellular side of a DTU: modem, SIM slot, radio signal, registration, SMS, AT commands.

``registration`` and ``at`` are pure (standard library only); ``sim``,
``signal`` and ``modem`` are SimPy models. A unit wires them together::

    sim = SimSlot(env, card=SimCard(iccid=..., imsi=..., phone=...))
    signal = Signal(env, rng)
    modem = Modem(env, rng, imei=..., sim=sim, signal=signal, epoch_s=clock.epoch_s)
    modem.power_on()
    at = AtInterpreter(modem)

The SimPy models (``Modem``, ``Signal``, ``SimSlot``, ``SimCard``) are imported on first
use, so that pure code importing ``vdtu.modem.registration`` (the XGC actions, the
codecs) does not load SimPy with the package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vdtu.modem.at import AtInterpreter, ModemView
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
from vdtu.modem.sms import SmsOutbox, SmsRecord, sms_parts

if TYPE_CHECKING:
    from vdtu.modem.modem import Modem, StopCause
    from vdtu.modem.signal import Signal
    from vdtu.modem.sim import SimCard, SimSlot

_MODELS = {
    "Modem": "vdtu.modem.modem",
    "StopCause": "vdtu.modem.modem",
    "Signal": "vdtu.modem.signal",
    "SimCard": "vdtu.modem.sim",
    "SimSlot": "vdtu.modem.sim",
}
"""The SimPy models, by name, and the module each lives in (imported on first use)."""


def __getattr__(name: str) -> Any:
    module = _MODELS.get(name)
    if module is None:
        raise AttributeError(f"module 'vdtu.modem' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


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
