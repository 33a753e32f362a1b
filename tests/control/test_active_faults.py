"""Faults in force on a unit: applied now, cleared by hand or when their time runs out in sim
time, replaced by a second one of the same key, and reported as events and in the snapshot."""

from __future__ import annotations

from typing import Any

from tests.xgc_harness import XgcBench
from vdtu.faults.active import apply_fault, clear_faults, current_faults
from vdtu.faults.catalogue import parse_request
from vdtu.modem.sim import SimState


def observed(bench: XgcBench) -> list[tuple[float, str, dict[str, Any]]]:
    events: list[tuple[float, str, dict[str, Any]]] = []
    bench.unit.log.observer = lambda _name, at, kind, data: events.append((at, kind, data))
    return events


def booted() -> XgcBench:
    bench = XgcBench(rssi_spread=0)
    bench.boot()
    return bench


def test_a_fault_for_a_time_clears_itself_when_the_time_has_run_out() -> None:
    bench = booted()
    events = observed(bench)
    start = bench.clock.now
    apply_fault(bench.unit, parse_request("signal", {"csq": 5}, 30))
    bench.clock.run_for(1)
    assert bench.unit.modem.rssi == 5
    assert [f.key for f in current_faults(bench.unit)] == ["signal"]
    bench.clock.run_for(30)
    assert bench.unit.modem.rssi == 26
    assert bench.unit.active_faults is None
    faults = [
        (round(at - start, 6), kind, data.get("why"))
        for at, kind, data in events
        if "fault" in kind
    ]
    assert faults == [(0.0, "fault", None), (30.0, "fault-cleared", "expired")]


def test_a_second_fault_of_the_same_key_replaces_the_first_and_its_timer() -> None:
    bench = booted()
    apply_fault(bench.unit, parse_request("signal", {"csq": 5}, 10))
    bench.clock.run_for(1)
    apply_fault(bench.unit, parse_request("signal", {"csq": 12}))
    bench.clock.run_for(20)
    assert bench.unit.modem.rssi == 12
    (active,) = current_faults(bench.unit)
    assert (active.params["csq"], active.until) == (12, None)


def test_faults_aimed_at_different_parts_are_kept_apart() -> None:
    bench = booted()
    apply_fault(bench.unit, parse_request("slave-offline", {"address": 1}))
    keys = [f.key for f in current_faults(bench.unit)]
    assert keys == ["slave-offline address=1"]
    assert bench.unit.snapshot()["active_faults"][0]["params"] == {"address": 1}


def test_clearing_ends_every_fault_or_those_of_one_kind() -> None:
    bench = booted()
    events = observed(bench)
    apply_fault(bench.unit, parse_request("sim-pull", {}))
    apply_fault(bench.unit, parse_request("roaming", {}))
    bench.clock.run_for(2)
    assert bench.unit.modem.sim_state is SimState.ABSENT
    assert clear_faults(bench.unit, "roaming") == ["roaming"]
    assert [f.key for f in current_faults(bench.unit)] == ["sim-pull"]
    assert clear_faults(bench.unit) == ["sim-pull"]
    bench.clock.run_for(2)
    assert bench.unit.snapshot()["modem"]["sim"]["state"] == SimState.READY.value
    assert [data["why"] for _at, kind, data in events if kind == "fault-cleared"] == [
        "cleared",
        "cleared",
    ]
    assert clear_faults(bench.unit) == []


def test_a_condition_something_else_ended_is_no_longer_listed() -> None:
    bench = booted()
    apply_fault(bench.unit, parse_request("modem-hang", {}))
    bench.clock.run_for(1)
    assert [f.key for f in current_faults(bench.unit)] == ["modem-hang"]
    bench.unit.reboot()  # a power cycle resets the module
    bench.clock.run_for(1)
    assert current_faults(bench.unit) == []


def test_a_one_shot_event_happens_and_is_not_kept() -> None:
    bench = booted()
    events = observed(bench)
    apply_fault(bench.unit, parse_request("modem-reboot", {}))
    assert not bench.unit.modem.registered
    assert bench.unit.active_faults is None
    assert [kind for _at, kind, _d in events] == ["fault"]
