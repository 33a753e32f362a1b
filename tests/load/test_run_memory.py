"""The run's freeze (ten a second) keeps no garbage: what is dead by then is collected first."""

from __future__ import annotations

import asyncio
import gc
import io
import weakref

from vdtu.load.options import build_options
from vdtu.load.runner import FREEZE_S, LoadRun


class _Node:
    """An object that can sit in a reference cycle."""

    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> _Node:
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    return first


def test_the_runs_freeze_collects_dead_cycles_before_it_freezes_the_living_and_rearms() -> None:
    async def check() -> None:
        options = build_options({"units": 2, "profile": "xgc", "progress": False})
        run = LoadRun(asyncio.get_running_loop(), options, io.StringIO())
        living, dead = _cycle(), _cycle()
        dead_ref = weakref.ref(dead)
        frozen_before = gc.get_freeze_count()
        gc.disable()  # nothing but the freeze may collect in between
        try:
            del dead
            assert dead_ref() is not None  # a cycle: only a collection frees it
            run._freeze()
            assert dead_ref() is None
            assert gc.get_freeze_count() > frozen_before  # the living cycle among them
            assert living.other is not None
            freezer = run._freezer
            assert freezer is not None
            assert freezer.when() - asyncio.get_running_loop().time() <= FREEZE_S
        finally:
            if run._freezer is not None:
                run._freezer.cancel()
            gc.enable()
            gc.unfreeze()
            await run.fleet.close()

    asyncio.run(check())


def test_a_run_turns_the_collectors_automatic_collections_off_and_back_on_at_its_end() -> None:
    options = build_options(
        {"units": 1, "duration": 0.3, "grace": 0, "probe_rate": 0, "progress": False}
    )

    async def main() -> bool:
        run = LoadRun(asyncio.get_running_loop(), options, io.StringIO())
        task = asyncio.create_task(run.run(asyncio.Event()))
        for _ in range(1000):  # the broker and the verifier come first
            if run.started_at or task.done():
                break
            await asyncio.sleep(0.01)
        during = gc.isenabled()
        await task
        return during

    assert gc.isenabled()
    try:
        assert asyncio.run(main()) is False  # _freeze collects instead
        assert gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()
