"""The event ring: bounded, numbered, and a reader that fell behind is told how much it missed."""

from __future__ import annotations

import asyncio

import pytest

from vdtu.control.events import EventLog


def test_a_reader_gets_what_came_after_its_cursor() -> None:
    log = EventLog(None, capacity=10)
    for n in range(5):
        log.emit(float(n), n, "state", {"n": n})
    batch = log.read(2)
    assert [event.seq for event in batch.events] == [3, 4, 5]
    assert batch.missed == 0
    assert batch.cursor == 5
    assert log.read(5).events == []
    assert log.read(5).cursor == 5


def test_the_ring_keeps_the_newest_and_counts_what_a_slow_reader_missed() -> None:
    log = EventLog(None, capacity=10)
    for n in range(25):
        log.emit(float(n), None, "metrics", {})
    batch = log.read(0)
    assert batch.missed == 15
    assert [event.seq for event in batch.events] == list(range(16, 26))
    assert log.read(20, limit=3).cursor == 23


def test_unit_events_carry_the_unit_id_from_its_name() -> None:
    log = EventLog(None)
    log.unit_event("dtu42", 1.5, "fault", {"kind": "signal"})
    event = log.read(0).events[0]
    assert (event.unit, event.at, event.kind) == (42, 1.5, "fault")
    assert event.view()["data"] == {"kind": "signal"}


def test_a_follower_wakes_once_an_event_arrives() -> None:
    async def scenario() -> list[int]:
        log = EventLog(asyncio.get_running_loop())
        waiter = asyncio.create_task(log.wait(0))
        await asyncio.sleep(0)
        assert not waiter.done()
        log.emit(0.0, 1, "uplink", {})
        log.emit(0.0, 2, "uplink", {})
        await asyncio.wait_for(waiter, 1)
        return [event.unit or 0 for event in log.read(0).events]

    assert asyncio.run(scenario()) == [1, 2]


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        EventLog(None, capacity=0)
