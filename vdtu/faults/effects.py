"""What each unit fault of the catalogue does to a unit: the model calls that apply and clear it.

Every fault lives in the model of the layer it belongs to (the modem and SIM in
``vdtu.modem``, the battery in ``vdtu.io.power``, the slaves in ``vdtu.io.modbus_slave``,
the serial lines in ``vdtu.uart.line``, the IP link in the personality's transports);
this table only names the calls, so the models stay free of the catalogue. ``apply``
and ``clear`` run in sim time inside the unit's failure domain (``vdtu.faults.active``);
a ``ValueError`` from a model (an empty SIM slot, no slave at that address) is the
user's error and is reported, not a fault of the unit.

Two kinds may act on one setting of a model (``pdp-reject`` and ``sim-no-data`` both
refuse the data context; ``vbus-off`` and ``battery-drain`` both remove external power;
``sim-pull`` and ``sim-swap`` both change the card in the slot): clearing one leaves the
setting as the other, still in force, wants it (``_other``).

``holds`` says whether a condition is still in force when something other than its
clear may have ended it (a power cycle ends a modem hang; powering a cut unit on ends
the cut): the unit's list of active faults drops it then.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from vdtu.faults.catalogue import Value
from vdtu.identity import Identity
from vdtu.modem import SimCard
from vdtu.modem.registration import EsmCause
from vdtu.net.conditions import NO_LINK_CONDITIONS, PlatformConditions

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


def _other(unit: Unit, kind: str) -> Params | None:
    """The parameters of the fault ``kind`` still in force on ``unit`` (None: none)."""
    for active in (unit.active_faults or {}).values():
        if active.kind == kind:
            return active.params
    return None


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
    if card is not None and card.iccid != unit.sim_card.iccid:
        unit.sim.swap(unit.sim_card)
    # an empty slot (sim-pull in force): that fault's clear puts the own card in


def _card_back(unit: Unit, _params: Params) -> None:
    """``sim-pull`` ends: the card goes back in (the spare one while ``sim-swap`` holds)."""
    unit.sim.insert(spare_card(unit) if _other(unit, "sim-swap") is not None else unit.sim_card)


def _data_back(unit: Unit, _params: Params) -> None:
    """A data refusal ends, unless the other kind that refuses data is still in force."""
    if _other(unit, "sim-no-data") is not None:
        unit.modem.refuse_data(EsmCause.SERVICE_OPTION_NOT_SUBSCRIBED)
    elif (other := _other(unit, "pdp-reject")) is not None:
        unit.modem.refuse_data(_int(other, "cause"))
    else:
        unit.modem.clear_data_refusal()


def _vbus_back(unit: Unit, _params: Params) -> None:
    """External power returns, unless the other kind that removed it is still in force."""
    if _other(unit, "vbus-off") is None and _other(unit, "battery-drain") is None:
        unit.set_vbus(True)


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
    "pdp-reject": Effect(lambda unit, p: unit.modem.refuse_data(_int(p, "cause")), _data_back),
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
        lambda unit, _p: unit.pull_sim(), _card_back, holds=lambda unit: unit.sim.card is None
    ),
    "sim-swap": Effect(_swap, _own_card_back),
    "sim-pin-lock": Effect(
        lambda unit, _p: unit.sim.pin_lock(), lambda unit, _p: unit.sim.clear_pin_lock()
    ),
    "sim-puk-block": Effect(lambda unit, _p: unit.sim.block(), lambda unit, _p: unit.sim.unblock()),
    "sim-no-data": Effect(_no_data, _data_back),
}


def _values(changes: Mapping[str, Any], params: Params) -> dict[str, Any]:
    """``changes`` with each value that names a parameter replaced by the parameter's value."""
    return {
        name: params[value] if isinstance(value, str) else value for name, value in changes.items()
    }


def _link(**changes: Any) -> Callable[[Unit, Params], None]:
    """Add (or, given the idle values, take away) link conditions, keeping the others: a
    string value names the fault's parameter that gives it."""

    def change(unit: Unit, params: Params) -> None:
        current = unit.firmware.link_conditions or NO_LINK_CONDITIONS
        unit.firmware.set_link_conditions(current.with_changes(**_values(changes, params)))

    return change


def _platform(**changes: Any) -> Callable[[Unit, Params], None]:
    """As ``_link``, for the unit's conditions at the platform."""

    def change(unit: Unit, params: Params) -> None:
        current = unit.firmware.platform_conditions or PlatformConditions()
        conditions = replace(current, **_values(changes, params))
        unit.firmware.set_platform_conditions(conditions.normalized())

    return change


LINK: Mapping[str, Effect] = {
    "link-latency": Effect(
        _link(latency_ms="ms", jitter_ms="jitter"), _link(latency_ms=0.0, jitter_ms=0.0)
    ),
    "link-bandwidth": Effect(_link(bandwidth_kbps="kbps"), _link(bandwidth_kbps=None)),
    "link-blackhole": Effect(_link(blackhole=True), _link(blackhole=False)),
    "link-reset": Effect(lambda unit, _p: unit.firmware.reset_link()),
    "link-connect-timeout": Effect(_link(connect_timeout=True), _link(connect_timeout=False)),
    "platform-refuse": Effect(_platform(refuse=True), _platform(refuse=False)),
    "platform-slow": Effect(_platform(delay_ms="ms"), _platform(delay_ms=0.0)),
}


def _drain(unit: Unit, params: Params) -> None:
    unit.set_vbus(False)
    unit.battery.drain(pct_per_min=_float(params, "pct_per_min"))


def _drain_end(unit: Unit, params: Params) -> None:
    unit.battery.stop_drain()
    _vbus_back(unit, params)


POWER: Mapping[str, Effect] = {
    "power-cut": Effect(
        lambda unit, _p: unit.power_off(),
        lambda unit, _p: unit.power_on(),
        holds=lambda unit: not unit.powered,
    ),
    "brown-out": Effect(lambda unit, p: unit.brown_out(_float(p, "ms"))),
    "battery-drain": Effect(_drain, _drain_end),
    "vbus-off": Effect(lambda unit, _p: unit.set_vbus(False), _vbus_back),
}

RS485: Mapping[str, Effect] = {
    "slave-offline": Effect(
        lambda unit, p: unit.slave(_int(p, "address")).set_online(False),
        lambda unit, p: unit.slave(_int(p, "address")).set_online(True),
    ),
    "slave-slow": Effect(
        lambda unit, p: unit.slave(_int(p, "address")).answer_late(_float(p, "ms")),
        lambda unit, p: unit.slave(_int(p, "address")).answer_on_time(),
    ),
    "slave-crc": Effect(
        lambda unit, p: unit.slave(_int(p, "address")).corrupt_crc(_float(p, "rate")),
        lambda unit, p: unit.slave(_int(p, "address")).stop_corrupting_crc(),
    ),
    "slave-exception": Effect(
        lambda unit, p: unit.slave(_int(p, "address")).answer_exception(_int(p, "code")),
        lambda unit, p: unit.slave(_int(p, "address")).stop_exception(),
    ),
    "bus-noise": Effect(
        lambda unit, p: unit.lines["rs485"].add_noise(
            _float(p, "rate"), rng=unit.random_source("rs485-noise")
        ),
        lambda unit, _p: unit.lines["rs485"].stop_noise(),
    ),
}


def _port(params: Params) -> str:
    return str(params["port"])


def _garbage(unit: Unit, params: Params) -> None:
    line = unit.lines[_port(params)]
    rng = unit.random_source(f"{_port(params)}-garbage")
    if _int(params, "bytes"):
        line.inject_garbage(_int(params, "bytes"), rng=rng)
    if _float(params, "rate"):
        line.start_garbage(_float(params, "rate"), rng=rng)


HOST_SERIAL: Mapping[str, Effect] = {
    "host-garbage": Effect(
        _garbage,
        lambda unit, p: unit.lines[_port(p)].stop_garbage(),
        holds=lambda unit: any(
            line.faults is not None and line.faults.garbage_rate for line in unit.lines.values()
        ),
    ),
    "host-drop": Effect(
        lambda unit, p: unit.lines[_port(p)].drop_bytes(
            _float(p, "rate"),
            direction=str(p["direction"]),
            rng=unit.random_source(f"{_port(p)}-drop"),
        ),
        lambda unit, p: unit.lines[_port(p)].stop_dropping(),
    ),
    "host-baud": Effect(
        lambda unit, p: unit.lines[_port(p)].mismatch_baud(_int(p, "baud")),
        lambda unit, p: unit.lines[_port(p)].match_baud(),
    ),
}

GPIO: Mapping[str, Effect] = {
    "input-pulse": Effect(
        lambda unit, p: unit.gpio.pulse_input(
            _int(p, "index"),
            width_ms=_float(p, "width_ms"),
            count=_int(p, "count"),
            period_ms=_float(p, "period_ms"),
        )
    ),
    "input-bounce": Effect(
        lambda unit, p: unit.gpio.bounce_input(
            _int(p, "index"), _int(p, "level"), bounces=_int(p, "bounces"), ms=_float(p, "ms")
        )
    ),
    "relay-stuck": Effect(
        lambda unit, p: unit.gpio.stick_relay(_int(p, "index"), _int(p, "level")),
        lambda unit, p: unit.gpio.unstick_relay(_int(p, "index")),
    ),
}

EFFECTS: Mapping[str, Effect] = {
    **CELLULAR, **SIM, **LINK, **POWER, **RS485, **HOST_SERIAL, **GPIO
}  # fmt: skip
"""Every unit fault kind's effect, by kind name."""
