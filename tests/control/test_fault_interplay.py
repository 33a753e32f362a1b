"""Faults that meet: two kinds on one model setting, a model that cannot do it now, a fault
that something else ended, a burst that is over, parameters that contradict each other."""

from __future__ import annotations

from typing import Any

import pytest

from tests.firmware.test_xgc_cloud import CloudBench
from tests.firmware.test_xgc_link_faults import connected
from vdtu.faults.active import apply_fault, clear_faults, current_faults
from vdtu.faults.catalogue import FaultError, parse_request
from vdtu.faults.effects import spare_card


def fault(bench: CloudBench, kind: str, **params: Any) -> None:
    apply_fault(bench.unit, parse_request(kind, params))


def test_clearing_one_data_refusal_keeps_the_other() -> None:
    bench = connected()
    fault(bench, "pdp-reject", cause=27)
    fault(bench, "sim-no-data")
    clear_faults(bench.unit, "pdp-reject")
    bench.clock.run_for(60)
    assert bench.unit.modem.data_state.value == "REFUSED"
    assert int(bench.unit.modem.data_cause or 0) == 33
    clear_faults(bench.unit, "sim-no-data")
    bench.clock.run_for(60)
    assert bench.unit.modem.data_ready


def test_external_power_returns_only_when_neither_fault_holds_it_off() -> None:
    bench = connected()
    fault(bench, "vbus-off")
    fault(bench, "battery-drain", pct_per_min=1)
    clear_faults(bench.unit, "battery-drain")
    assert not bench.unit.battery.vbus
    clear_faults(bench.unit, "vbus-off")
    assert bench.unit.battery.vbus


def test_a_swapped_and_pulled_card_comes_back_as_the_swapped_one_then_the_own() -> None:
    bench = connected()
    fault(bench, "sim-swap")
    fault(bench, "sim-pull")
    clear_faults(bench.unit, "sim-swap")
    assert bench.unit.sim.card is None  # still pulled
    clear_faults(bench.unit, "sim-pull")
    assert bench.unit.sim.card == bench.unit.sim_card
    fault(bench, "sim-swap")
    fault(bench, "sim-pull")
    clear_faults(bench.unit, "sim-pull")
    assert bench.unit.sim.card == spare_card(bench.unit)


def test_a_model_that_cannot_do_it_now_is_a_refusal() -> None:
    bench = connected()
    bench.unit.power_off()
    with pytest.raises(ValueError, match="cannot reboot the modem: it is off"):
        fault(bench, "modem-reboot")
    bench.unit.power_on()
    bench.clock.run_for(30)
    fault(bench, "pdp-drop", retry=600)
    with pytest.raises(ValueError, match="data"):
        fault(bench, "pdp-drop", retry=600)


def test_a_fault_something_else_ended_leaves_with_an_event() -> None:
    bench = connected()
    events: list[tuple[str, dict[str, Any]]] = []
    bench.unit.log.observer = lambda _n, _at, kind, data: events.append((kind, data))
    fault(bench, "power-cut")
    bench.unit.power_on()
    assert current_faults(bench.unit) == []
    assert events[-1] == ("fault-cleared", {"kind": "power-cut", "params": {}, "why": "ended"})


def test_a_garbage_burst_without_a_rate_is_over_once_sent() -> None:
    bench = connected()
    fault(bench, "host-garbage", bytes=32, rate=0)
    assert current_faults(bench.unit) == []
    fault(bench, "host-garbage", bytes=0, rate=5)
    assert [f.kind for f in current_faults(bench.unit)] == ["host-garbage"]


def test_jitter_larger_than_the_delay_is_refused_before_it_reaches_a_unit() -> None:
    with pytest.raises(FaultError, match=r"link-latency: jitter \(50\) must not exceed ms \(10\)"):
        parse_request("link-latency", {"ms": 10, "jitter": 50})


def test_an_unpowered_unit_says_off_not_its_last_state() -> None:
    bench = connected()
    assert bench.unit.states == ("connected", "mqtt-connected")
    bench.unit.power_off()
    assert bench.unit.states == ("off", "off")
