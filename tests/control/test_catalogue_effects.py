"""Every unit fault of the catalogue, applied and cleared through ``vdtu.faults.active`` (as the
control API applies it), changes the model it names and undoes it: the wiring from a kind's
name and parameters to the models. What each model's fault then does to the firmware (the
frames the host sees, what the cloud gets) is tested per layer: tests/firmware/
test_xgc_cellular_faults.py, test_xgc_link_faults.py, test_xgc_hardware_faults.py and their
QuecPython counterparts in tests/quec/."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.firmware.test_xgc_cloud import CloudBench
from tests.firmware.test_xgc_link_faults import connected
from vdtu.faults.active import apply_fault, clear_faults
from vdtu.faults.catalogue import CATALOGUE, Scope, parse_request
from vdtu.faults.effects import spare_card

Probe = Callable[[CloudBench], Any]


def snap(bench: CloudBench) -> dict[str, Any]:
    return bench.unit.snapshot()


def modem(key: str) -> Probe:
    return lambda bench: snap(bench)["modem"][key]


def slave(key: str) -> Probe:
    return lambda bench: (snap(bench)["slaves"][0]["faults"] or {}).get(key)


def line(port: str, key: str) -> Probe:
    return lambda bench: (snap(bench)["lines"][port]["faults"] or {}).get(key)


def link(key: str) -> Probe:
    return lambda bench: (snap(bench)["link"] or {}).get(key)


def platform(key: str) -> Probe:
    return lambda bench: (snap(bench)["platform"] or {}).get(key)


CONDITIONS: dict[str, tuple[dict[str, object], Probe, object, object]] = {
    # kind: (params, probe, while applied, after clear)
    "signal": ({"csq": 4}, lambda b: b.unit.signal.base_rssi, 4, 26),
    "coverage-loss": ({}, modem("registered"), False, True),
    "reg-reject": ({"cause": 15}, modem("registered"), False, True),
    "roaming": ({}, modem("roaming"), True, False),
    "pdp-reject": ({"cause": 27}, modem("data_state"), "REFUSED", "ACTIVE"),
    "pdp-drop": ({"retry": 600}, modem("data_state"), "DROPPED", "ACTIVE"),
    "dns-fail": ({}, modem("dns_ok"), False, True),
    "modem-hang": ({}, lambda b: b.unit.modem.hung, True, False),
    "no-network-time": ({}, lambda b: b.unit.modem.network_time_ms() is None, True, False),
    "sim-pull": ({}, lambda b: b.unit.modem.iccid, None, "898604E0092221379975"),
    "sim-swap": ({}, lambda b: b.unit.modem.iccid, "spare", "898604E0092221379975"),
    "sim-pin-lock": ({}, lambda b: b.unit.modem.sim_state.value, "PIN_LOCKED", "READY"),
    "sim-puk-block": ({}, lambda b: b.unit.modem.sim_blocked, True, False),
    "sim-no-data": ({}, modem("data_state"), "REFUSED", "ACTIVE"),
    "link-latency": ({"ms": 300, "jitter": 20}, link("latency_ms"), 300.0, None),
    "link-bandwidth": ({"kbps": 9.6}, link("bandwidth_kbps"), 9.6, None),
    "link-blackhole": ({}, link("blackhole"), True, None),
    "link-connect-timeout": ({}, link("connect_timeout"), True, None),
    "platform-refuse": ({}, platform("refuse"), True, None),
    "platform-slow": ({"ms": 1500}, platform("delay_ms"), 1500.0, None),
    "power-cut": ({}, lambda b: b.unit.powered, False, True),
    "battery-drain": (
        {"pct_per_min": 2},
        lambda b: snap(b)["battery"]["drain_pct_per_min"],
        2.0,
        None,
    ),
    "vbus-off": ({}, lambda b: snap(b)["battery"]["vbus"], False, True),
    "slave-offline": ({"address": 1}, lambda b: snap(b)["slaves"][0]["online"], False, True),
    "slave-slow": ({"address": 1, "ms": 700}, slave("late_ms"), 700.0, None),
    "slave-crc": ({"address": 1, "rate": 0.5}, slave("crc_rate"), 0.5, None),
    "slave-exception": ({"address": 1, "code": 6}, slave("exception"), 6, None),
    "bus-noise": ({"rate": 0.2}, line("rs485", "noise_rate"), 0.2, None),
    "host-garbage": ({"bytes": 0, "rate": 5}, line("uart", "garbage_rate"), 5.0, None),
    "host-drop": (
        {"rate": 0.5, "direction": "to-host"},
        line("uart", "drop_direction"),
        "to-host",
        None,
    ),
    "host-baud": ({"baud": 9600}, line("uart", "dtu_baud"), 9600, None),
    "relay-stuck": ({"index": 2, "level": 1}, lambda b: snap(b)["gpio"]["contacts"]["out2"], 1, 0),
}


def test_the_table_covers_every_unit_condition() -> None:
    conditions = {
        name for name, kind in CATALOGUE.items() if kind.scope is Scope.UNIT and not kind.one_shot
    }
    assert conditions == set(CONDITIONS)


@pytest.mark.parametrize("kind", sorted(CONDITIONS))
def test_a_condition_changes_its_model_and_its_clear_undoes_it(kind: str) -> None:
    params, probe, applied, cleared = CONDITIONS[kind]
    bench = connected()
    if applied == "spare":
        applied = spare_card(bench.unit).iccid
    before = probe(bench)
    apply_fault(bench.unit, parse_request(kind, params))
    bench.clock.run_for(3)
    assert probe(bench) == applied
    assert clear_faults(bench.unit) != []
    bench.clock.run_for(120)
    assert probe(bench) == cleared
    if cleared is not None:
        assert before == cleared


def test_one_shot_events_happen_now() -> None:
    bench = connected()
    unit = bench.unit
    lost = unit.firmware.counters().links_lost
    apply_fault(unit, parse_request("link-reset", {}))
    bench.clock.run_for(0.5)
    assert unit.firmware.counters().links_lost == lost + 1
    apply_fault(unit, parse_request("modem-reboot", {}))
    assert not unit.modem.registered
    apply_fault(unit, parse_request("brown-out", {"ms": 200}))
    assert not unit.powered
    bench.clock.run_for(0.3)
    assert unit.powered
    edges: list[int] = []
    unit.gpio.on_input_change += (lambda _name, level: edges.append(level),)
    apply_fault(
        unit,
        parse_request("input-pulse", {"index": 3, "width_ms": 50, "count": 2, "period_ms": 200}),
    )
    apply_fault(
        unit, parse_request("input-bounce", {"index": 4, "level": 1, "bounces": 2, "ms": 5})
    )
    bench.clock.run_for(1)
    assert edges.count(1) == 2 + 3  # two pulses, and a bounce of 2 ending high
    assert edges.count(0) == 2 + 2
    assert unit.active_faults is None


def test_a_brown_out_during_a_power_cut_keeps_the_unit_off() -> None:
    bench = connected()
    apply_fault(bench.unit, parse_request("brown-out", {"ms": 500}))
    apply_fault(bench.unit, parse_request("power-cut", {}))
    bench.clock.run_for(2)
    assert not bench.unit.powered
