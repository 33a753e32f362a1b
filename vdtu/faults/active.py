"""Faults in force on a unit: applying, expiring and clearing them in sim time.

A unit keeps its active faults in one slot (``Unit.active_faults``) that is None while
it has none, so a healthy fleet pays nothing. A fault is keyed by its kind and, for
kinds aimed at one part, that part (``slave-offline address=2`` and ``address=3`` are
two faults; a second ``signal`` replaces the first). A fault applied ``for_s`` seconds
clears itself when they have run out in sim time, unless it was cleared or replaced
first. Every apply, expiry and clear is an event of the unit (``UnitLog.event``:
``fault`` and ``fault-cleared``), and the snapshot lists what is in force.

These functions run in sim time, in the unit's failure domain (the control API calls
them through ``Clock.call``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from vdtu.errors import LocalProtocolError
from vdtu.faults.catalogue import ActiveFault, FaultRequest, fault_key
from vdtu.faults.effects import EFFECTS


@contextmanager
def _refused() -> Iterator[None]:
    """A model's ``LocalProtocolError`` (it cannot do that now) as the user's ``ValueError``."""
    try:
        yield
    except LocalProtocolError as exc:
        raise ValueError(str(exc)) from None


if TYPE_CHECKING:
    import simpy

    from vdtu.unit import Unit


def apply_fault(unit: Unit, request: FaultRequest) -> None:
    """Apply ``request`` to ``unit`` now (replacing a fault with the same key).

    Raises:
        ValueError: the unit's models refuse it (an empty SIM slot, no such slave, a modem
            that is off, ...).
    """
    kind = request.kind.name
    effect = EFFECTS[kind]
    params = dict(request.params)
    key = fault_key(kind, params)
    now = float(unit.env.now)
    with _refused():
        effect.apply(unit, params)
    unit.log.event(now, "fault", {"kind": kind, "params": params, "for_s": request.for_s})
    if request.kind.one_shot:
        return
    until = None if request.for_s is None else now + request.for_s
    active = ActiveFault(kind, params, now, until)
    if unit.active_faults is None:
        unit.active_faults = {}
    unit.active_faults[key] = active
    if request.for_s is not None:
        unit.env.timeout(request.for_s).callbacks.append(lambda _event: _expire(unit, active))


def _expire(unit: Unit, active: ActiveFault, _event: simpy.Event | None = None) -> None:
    faults = unit.active_faults
    if faults is None or faults.get(active.key) is not active:
        return  # cleared or replaced meanwhile
    _end(unit, active, "expired")


def clear_faults(unit: Unit, kind: str | None = None) -> list[str]:
    """Clear the unit's faults of ``kind`` (every fault when None); returns their keys."""
    cleared: list[str] = []
    for active in current_faults(unit):
        if kind is None or active.kind == kind:
            _end(unit, active, "cleared")
            cleared.append(active.key)
    return cleared


def _end(unit: Unit, active: ActiveFault, why: str) -> None:
    faults = unit.active_faults
    assert faults is not None
    del faults[active.key]
    if not faults:
        unit.active_faults = None
    clear = EFFECTS[active.kind].clear
    if clear is not None:
        with _refused():
            clear(unit, active.params)
    unit.log.event(
        float(unit.env.now),
        "fault-cleared",
        {"kind": active.kind, "params": active.params, "why": why},
    )


def current_faults(unit: Unit) -> list[ActiveFault]:
    """The unit's faults in force, oldest first; one that something else ended (a power
    cycle ended a hang, a poke powered a cut unit on) is dropped, with its event."""
    faults = unit.active_faults
    if faults is None:
        return []
    for key, active in list(faults.items()):
        holds = EFFECTS[active.kind].holds
        if holds is not None and not holds(unit):
            del faults[key]
            unit.log.event(
                float(unit.env.now),
                "fault-cleared",
                {"kind": active.kind, "params": active.params, "why": "ended"},
            )
    if not faults:
        unit.active_faults = None
        return []
    return list(faults.values())
