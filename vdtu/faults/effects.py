"""What each unit fault of the catalogue does to a unit: the model calls that apply and clear it.

Every fault lives in the model of the layer it belongs to (the modem and SIM in
``vdtu.modem``, the battery in ``vdtu.io.power``, the slaves in ``vdtu.io.modbus_slave``,
the serial lines in ``vdtu.uart.line``, the IP link in the personality's transports);
this table only names the calls, so the models stay free of the catalogue. ``apply``
and ``clear`` run in sim time inside the unit's failure domain (``vdtu.faults.active``);
a ``ValueError`` from a model (an empty SIM slot, no slave at that address) is the
user's error and is reported, not a fault of the unit.

``holds`` says whether a condition is still in force when something other than its
clear may have ended it (a power cycle ends a modem hang; powering a cut unit on ends
the cut): the unit's list of active faults drops it then.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vdtu.faults.catalogue import Value
from vdtu.identity import Identity
from vdtu.modem import SimCard
from vdtu.modem.registration import EsmCause

if TYPE_CHECKING:
    from vdtu.unit import Unit

Params = Mapping[str, Value]


@dataclass(frozen=True, slots=True)
class Effect:
    """How one kind is applied to a unit and cleared from it."""

    apply: Callable[[Unit, Params], None]
    clear: Callable[[Unit, Params], None] | None = None
    """None for a one-shot event; it gets the parameters the fault was applied with."""
    holds: Callable[[Unit], bool] | None = None
    """Whether the condition still holds (None: until cleared)."""


def _int(params: Params, name: str) -> int:
    value = params[name]
    assert isinstance(value, int)
    return value


def _float(params: Params, name: str) -> float:
    value = params[name]
    assert isinstance(value, int | float)
    return float(value)


def _signal(unit: Unit, params: Params) -> None:
    over = _float(params, "over")
    if over > 0:
        unit.signal.fade_to(_int(params, "csq"), over)
    else:
        unit.signal.cancel_fade()
        unit.signal.set_level(_int(params, "csq"))


def _signal_back(unit: Unit, _params: Params) -> None:
    unit.signal.cancel_fade()
    unit.signal.set_level(unit.config.rssi)


def spare_card(unit: Unit) -> SimCard:
    """The card ``sim-swap`` puts in: another subscriber's, the same for a unit every run."""
    other = Identity.for_unit(unit.config.seed ^ 0x5A5A5A, unit.config.unit_id)
    return SimCard(iccid=other.iccid, imsi=other.imsi, phone=other.phone)


def _swap(unit: Unit, _params: Params) -> None:
    unit.sim.swap(spare_card(unit))


def _own_card_back(unit: Unit, _params: Params) -> None:
    card = unit.sim.card
    if card is None:
        unit.sim.insert(unit.sim_card)
    elif card.iccid != unit.sim_card.iccid:
        unit.sim.swap(unit.sim_card)


def _no_data(unit: Unit, _params: Params) -> None:
    unit.modem.refuse_data(EsmCause.SERVICE_OPTION_NOT_SUBSCRIBED)


CELLULAR: Mapping[str, Effect] = {
    "signal": Effect(_signal, _signal_back),
    "coverage-loss": Effect(
        lambda unit, _p: unit.set_coverage(False), lambda unit, _p: unit.set_coverage(True)
    ),
    "reg-reject": Effect(
        lambda unit, p: unit.modem.reject_registration(_int(p, "cause")),
        lambda unit, _p: unit.modem.clear_registration_reject(),
    ),
    "roaming": Effect(
        lambda unit, _p: unit.modem.force_roaming(), lambda unit, _p: unit.modem.clear_roaming()
    ),
    "pdp-reject": Effect(
        lambda unit, p: unit.modem.refuse_data(_int(p, "cause")),
        lambda unit, _p: unit.modem.clear_data_refusal(),
    ),
    "pdp-drop": Effect(
        lambda unit, p: unit.modem.drop_data(retry_s=_float(p, "retry")),
        lambda unit, _p: unit.modem.clear_data_drop(),
        holds=lambda unit: not unit.modem.data_ready,
    ),
    "dns-fail": Effect(
        lambda unit, _p: unit.modem.fail_dns(), lambda unit, _p: unit.modem.clear_dns_failure()
    ),
    "modem-hang": Effect(
        lambda unit, _p: unit.modem.hang(),
        lambda unit, _p: unit.modem.reset(),
        holds=lambda unit: unit.modem.hung,
    ),
    "modem-reboot": Effect(lambda unit, _p: unit.modem.reboot()),
    "no-network-time": Effect(
        lambda unit, _p: unit.modem.withhold_network_time(),
        lambda unit, _p: unit.modem.clear_network_time_fault(),
    ),
}

SIM: Mapping[str, Effect] = {
    "sim-pull": Effect(
        lambda unit, _p: unit.pull_sim(),
        lambda unit, _p: unit.insert_sim(),
        holds=lambda unit: unit.sim.card is None,
    ),
    "sim-swap": Effect(_swap, _own_card_back),
    "sim-pin-lock": Effect(
        lambda unit, _p: unit.sim.pin_lock(), lambda unit, _p: unit.sim.clear_pin_lock()
    ),
    "sim-puk-block": Effect(lambda unit, _p: unit.sim.block(), lambda unit, _p: unit.sim.unblock()),
    "sim-no-data": Effect(_no_data, lambda unit, _p: unit.modem.clear_data_refusal()),
}

POWER: Mapping[str, Effect] = {
    "power-cut": Effect(
        lambda unit, _p: unit.power_off(),
        lambda unit, _p: unit.power_on(),
        holds=lambda unit: not unit.powered,
    ),
    "vbus-off": Effect(lambda unit, _p: unit.set_vbus(False), lambda unit, _p: unit.set_vbus(True)),
}

RS485: Mapping[str, Effect] = {
    "slave-offline": Effect(
        lambda unit, p: unit.set_slave_online(_int(p, "address"), False),
        lambda unit, p: unit.set_slave_online(_int(p, "address"), True),
    ),
}

EFFECTS: Mapping[str, Effect] = {**CELLULAR, **SIM, **POWER, **RS485}
"""Every unit fault kind's effect, by kind name."""
