"""A unit is a failure domain: a fault inside one unit resets that unit, never the run."""

from __future__ import annotations

from collections.abc import Generator

import pytest
import simpy

from vdtu.clock import DomainEnvironment, FaultDomain, VirtualClock
from vdtu.firmware.xgc import actions
from vdtu.firmware.xgc.actions import ACTIONS
from vdtu.firmware.xgc.codec import CodeFormat, Frame, FrameKind
from vdtu.firmware.xgc.outcome import Outcome, Request, XgcDevice
from vdtu.identity import Identity
from vdtu.log import LogLevel
from vdtu.uart.memory import MemoryEndpoint
from vdtu.unit import Unit, UnitConfig


def test_a_failing_process_goes_to_its_domain_and_the_others_run_on() -> None:
    env = DomainEnvironment()
    faults: list[tuple[str, BaseException]] = []

    def recorder(name: str) -> FaultDomain:
        return FaultDomain(name, lambda exc: faults.append((name, exc)))

    domains = {name: recorder(name) for name in ("a", "b")}
    ticks: list[float] = []

    def crashes_later() -> Generator[simpy.Event, None, None]:
        yield env.timeout(1)
        raise RuntimeError("boom in a")

    def ticks_on() -> Generator[simpy.Event, None, None]:
        while True:
            yield env.timeout(1)
            ticks.append(float(env.now))

    with env.entered(domains["a"]):
        env.process(crashes_later())
    with env.entered(domains["b"]):
        env.process(ticks_on())
    env.run(until=5.5)
    assert [(name, str(exc)) for name, exc in faults] == [("a", "boom in a")]
    assert ticks == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_what_a_domain_schedules_stays_in_it_through_callbacks() -> None:
    """A timeout set by a callback of a domain's timeout still belongs to the domain."""
    env = DomainEnvironment()
    faults: list[str] = []
    domain = FaultDomain("a", lambda exc: faults.append(str(exc)))

    def second(_event: simpy.Event) -> None:
        raise ValueError("deep")

    def first(_event: simpy.Event) -> None:
        env.timeout(2).callbacks.append(second)

    with env.entered(domain):
        env.timeout(1).callbacks.append(first)
    env.run(until=10)
    assert faults == ["deep"]


def test_a_fault_outside_every_domain_still_ends_the_run() -> None:
    env = DomainEnvironment()

    def boom(_event: simpy.Event) -> None:
        raise RuntimeError("fleet bug")

    env.timeout(1).callbacks.append(boom)
    with pytest.raises(RuntimeError, match="fleet bug"):
        env.run(until=2)


def test_the_other_callbacks_of_a_faulting_event_still_run() -> None:
    env = DomainEnvironment()
    faults: list[str] = []
    seen: list[str] = []
    domain = FaultDomain("a", lambda exc: faults.append(str(exc)))
    with env.entered(domain):
        event = env.timeout(1)

    def boom(_event: simpy.Event) -> None:
        raise RuntimeError("first")

    event.callbacks.extend([boom, lambda _event: seen.append("second")])
    env.run(until=2)
    assert faults == ["first"]
    assert seen == ["second"]


def test_injected_input_runs_in_the_domain_it_is_for() -> None:
    clock = VirtualClock()
    faults: list[str] = []
    domain = FaultDomain("a", lambda exc: faults.append(str(exc)))

    def bad_input() -> None:
        raise KeyError("no such key")

    clock.inject(bad_input, domain=domain)
    clock.run_for(1)
    assert faults == ["'no such key'"]


class TwoUnits:
    """Two XGC units on one clock, a host on each uart, a host process on unit B."""

    def __init__(self, *, fault_in_a: bool) -> None:
        self.clock = VirtualClock()
        env = self.clock.env
        self.units = [
            Unit(
                env,
                UnitConfig(unit_id=i, identity=Identity.for_unit(7, i), watchdog_s=3.0),
                epoch_s=self.clock.epoch_s,
            )
            for i in range(2)
        ]
        self.hosts = [MemoryEndpoint(env, unit.lines["uart"]) for unit in self.units]
        self.fault_in_a = fault_in_a
        for unit in self.units:
            unit.power_on()
        env.process(self._host_b())

    def _host_b(self) -> Generator[simpy.Event, None, None]:
        get_imei = Frame(kind=FrameKind.COMMAND, action="GET_IMEI", sn="0", timestamp="0")
        while True:
            yield self.clock.env.timeout(0.25)
            self.hosts[1].write(get_imei.encode(CodeFormat.HEX))

    def ask_a(self, action: str) -> None:
        frame = Frame(kind=FrameKind.COMMAND, action=action, sn="0", timestamp="0")
        self.hosts[0].write(frame.encode(CodeFormat.HEX))


def test_a_fault_in_one_unit_resets_it_and_leaves_the_other_untouched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unit A's GET_ICCID handler raises; A goes dark, is reset by its watchdog 3 s later and
    boots again; unit B's serial traffic is byte for byte and instant for instant what it
    is in a run without the fault."""
    healthy = ACTIONS["GET_ICCID"]
    runs: dict[bool, TwoUnits] = {}
    for fault in (False, True):
        world = TwoUnits(fault_in_a=fault)
        unit_a = world.units[0]

        def failing(request: Request, device: XgcDevice, unit_a: Unit = unit_a) -> Outcome:
            if device.imei == unit_a.imei:
                raise RuntimeError("a bug in the handler")
            return healthy(request, device)

        if fault:
            monkeypatch.setitem(ACTIONS, "GET_ICCID", failing)
        world.clock.run_for(20)
        world.ask_a("GET_ICCID")
        world.clock.run_for(1)
        monkeypatch.setitem(ACTIONS, "GET_ICCID", healthy)
        if fault:
            assert unit_a.faults == 1
            assert not unit_a.powered  # dark until the watchdog fires
        world.clock.run_for(30)
        runs[fault] = world

    faulty, clean = runs[True], runs[False]
    assert faulty.hosts[1].received == clean.hosts[1].received
    assert len(clean.hosts[1].received) > 100
    unit_a = faulty.units[0]
    assert unit_a.powered
    assert unit_a.faults == 1
    before = len(faulty.hosts[0].data)
    faulty.ask_a("GET_IMEI")
    faulty.clock.run_for(1)
    assert b"$XGC_ACK#GET_IMEI#" in faulty.hosts[0].data[before:]  # booted again and answers
    fatal = [r for r in unit_a.log.records if r.level is LogLevel.FATAL]
    assert len(fatal) == 1
    assert "RuntimeError: a bug in the handler" in fatal[0].text
    assert "Traceback" in fatal[0].text
    assert "unit reset in 3 s" in fatal[0].text
    assert unit_a.snapshot()["faults"] == 1
    assert actions.ACTIONS["GET_ICCID"] is healthy
