"""Clock drivers: virtual time runs ahead, real time follows the wall clock, inject is the door."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator

import pytest
import simpy

from vdtu.clock import DomainEnvironment, RealtimeClock, VirtualClock


def test_virtual_clock_runs_a_day_instantly() -> None:
    """A process sleeping an hour at a time advances 24 steps in one run_for(86400)."""
    clock = VirtualClock()
    wakes: list[float] = []

    def hourly() -> Generator[simpy.Event, None, None]:
        while True:
            yield clock.env.timeout(3600)
            wakes.append(clock.now)

    clock.env.process(hourly())
    clock.run_for(86_400.5)
    assert wakes == [3600.0 * i for i in range(1, 25)]


def test_virtual_inject_happens_at_the_current_time_on_the_next_run() -> None:
    """An injected input is processed at the sim time it was injected, in order."""
    clock = VirtualClock()
    seen: list[tuple[float, str]] = []
    clock.run_for(5)
    clock.inject(lambda text: seen.append((clock.now, text)), "a")
    clock.inject(lambda text: seen.append((clock.now, text)), "b")
    assert seen == []
    clock.run_for(1)
    assert seen == [(5.0, "a"), (5.0, "b")]
    assert clock.injected == 2


def test_virtual_clock_rejects_non_positive_durations() -> None:
    """run_for(0) is a mistake worth naming."""
    with pytest.raises(ValueError, match="duration_s must be > 0, not 0"):
        VirtualClock().run_for(0)


@pytest.mark.realtime
def test_realtime_clock_follows_the_wall_clock_and_handles_injection_at_once() -> None:
    """A 50 ms sim timeout fires about 50 ms of wall time later; an injected input is processed
    inside the inject call (no extra loop hop), at a sim time close to the wall clock."""

    async def scenario() -> tuple[float, float, float, list[float]]:
        loop = asyncio.get_running_loop()
        clock = RealtimeClock(loop)
        fired = loop.create_future()
        timeout = clock.env.timeout(0.05)
        timeout.callbacks.append(lambda _e: fired.set_result(loop.time()))
        started = loop.time()
        clock.start()
        fired_at = await fired
        injected: list[float] = []
        clock.inject(lambda: injected.append(clock.now))
        wall = clock.wall_now()
        clock.stop()
        return fired_at - started, wall, clock.max_lateness_s, injected

    elapsed, wall, lateness, injected = asyncio.run(scenario())
    assert 0.045 <= elapsed < 0.5
    assert len(injected) == 1
    assert abs(injected[0] - wall) < 0.05
    assert lateness < 0.5


def test_realtime_factor_must_be_positive() -> None:
    """A factor of 0 would stop time: refused with the value named."""

    async def build() -> None:
        RealtimeClock(asyncio.get_running_loop(), factor=0)

    with pytest.raises(ValueError, match="factor must be > 0, not 0"):
        asyncio.run(build())


@pytest.mark.realtime
def test_a_crash_in_the_simulation_stops_the_realtime_clock_and_is_reported() -> None:
    """An exception out of an injected input stops sim time and reaches on_crash, once."""

    async def scenario() -> tuple[list[str], bool, float]:
        loop = asyncio.get_running_loop()
        clock = RealtimeClock(loop)
        reported: list[str] = []
        clock.on_crash.append(lambda exc: reported.append(str(exc)))
        ticks: list[float] = []

        def ticking() -> Generator[simpy.Event, None, None]:
            while True:
                yield clock.env.timeout(0.01)
                ticks.append(clock.now)

        clock.env.process(ticking())
        clock.start()
        await asyncio.sleep(0.05)

        def broken() -> None:
            raise RuntimeError("model bug")

        clock.inject(broken)
        clock.inject(broken)
        frozen = len(ticks)
        await asyncio.sleep(0.05)
        return reported, len(ticks) == frozen, clock.now

    reported, frozen, _now = asyncio.run(scenario())
    assert reported == ["model bug"]
    assert frozen


def test_advance_to_processes_what_is_due_before_it_and_stands_there_as_run_does() -> None:
    """``DomainEnvironment.advance_to(t)`` (the real-time clock's step) ends where
    ``run(until=t)`` ends: every event before ``t`` processed in order, including those they
    schedule before ``t``; those at ``t`` and later still queued; now at ``t``."""

    def world() -> tuple[DomainEnvironment, list[tuple[float, str]]]:
        env = DomainEnvironment()
        seen: list[tuple[float, str]] = []

        def note(name: str, then: float | None = None) -> Callable[[simpy.Event], None]:
            def fire(_event: simpy.Event) -> None:
                seen.append((float(env.now), name))
                if then is not None:
                    env.call_later(then, note(f"{name}+"))

            return fire

        env.call_later(1.0, note("a", then=0.5))
        env.call_later(2.0, note("b"))
        env.call_later(2.0, note("c", then=5.0))
        env.call_later(3.0, note("at-until"))
        return env, seen

    advanced, by_advance = world()
    advanced.advance_to(3.0)
    ran, by_run = world()
    ran.run(until=3.0)
    assert by_advance == by_run == [(1.0, "a"), (1.5, "a+"), (2.0, "b"), (2.0, "c")]
    assert advanced.now == ran.now == 3.0
    assert advanced.peek() == ran.peek() == 3.0
    with pytest.raises(ValueError, match="must be after now"):
        advanced.advance_to(3.0)
