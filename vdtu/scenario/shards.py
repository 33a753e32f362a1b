"""A scenario run split over processes: each runs every n-th unit, all run one timeline.

Units never touch each other, so a scenario's units can be simulated in several
processes: shard ``i`` of ``n`` builds the units whose id is ``i`` modulo ``n`` and runs
the whole timeline. Wherever the timeline needs the whole fleet (a selector that
reads states, a wait, an expectation, the transcript's hash) it calls
``Exchange.gather``: each shard hands in its own part and gets every shard's part
back, in shard order, so all shards decide alike and stay on one timeline. A run in
one process gathers from itself (``Alone``).

``run_split`` forks the shards (each a ``ScenarioRun`` of the same file and seed
with a ``PipeExchange``) and is their hub: it waits for every shard's part of a
gather (each part is labelled, and shards that ask different things are a bug
reported as such), hands the parts out, adds their progress into one line and takes
the report of shard 0 (every shard computes the same one). A shard that fails or dies
ends the run with an error naming it. With a transcript file each shard writes its
own units' lines (shard 0 also the scenario's) and the hub merges the parts in the
transcript's canonical order.
"""

from __future__ import annotations

import heapq
import multiprocessing
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

from vdtu.scenario.report import sim_clock
from vdtu.scenario.schema import Scenario
from vdtu.scenario.world import writer_rank

T = TypeVar("T")

PROGRESS_EVERY_S = 2.0
"""Wall seconds between two progress lines."""


class Exchange(Protocol):
    """How the shards of one run share what the timeline needs of the whole fleet."""

    @property
    def shards(self) -> int:
        """How many shards there are."""

    def gather(self, label: str, part: T) -> list[T]:
        """Every shard's ``part`` (this one's included), in shard order. ``label`` says
        what is gathered; every shard gathers the same labels in the same order."""

    def progress(self, figures: tuple[float, int, int, int]) -> None:
        """This shard's progress (sim time, connected units, units, events) for the line
        printed every few wall seconds."""


class Alone:
    """The exchange of a run in one process: it gathers from itself and prints its own
    progress line to ``out`` (None: nowhere)."""

    shards = 1

    def __init__(self, out: IO[str] | None = None, *, duration_s: float = 0.0) -> None:
        self.out = out
        self.duration_s = duration_s
        self._printed = time.monotonic()

    def gather(self, label: str, part: T) -> list[T]:
        return [part]

    def progress(self, figures: tuple[float, int, int, int]) -> None:
        if self.out is None or time.monotonic() - self._printed < PROGRESS_EVERY_S:
            return
        self._printed = time.monotonic()
        print(progress_line(figures, self.duration_s), file=self.out, flush=True)


def progress_line(figures: tuple[float, int, int, int], duration_s: float) -> str:
    """The progress line: sim time reached, connected units and events so far."""
    now, connected, units, events = figures
    return (
        f"sim {sim_clock(now)} of {sim_clock(duration_s)}  "
        f"connected {connected}/{units}  events {events}"
    )


class PipeExchange:
    """A shard's side of the exchange: parts go to the hub on ``conn``, the gathered
    parts come back on it."""

    def __init__(self, conn: Connection, shards: int) -> None:
        self.conn = conn
        self.shards = shards
        self._sent = time.monotonic()

    def gather(self, label: str, part: T) -> list[T]:
        self.conn.send(("gather", label, part))
        parts: list[T] = self.conn.recv()
        return parts

    def progress(self, figures: tuple[float, int, int, int]) -> None:
        if time.monotonic() - self._sent >= PROGRESS_EVERY_S / 2:
            self._sent = time.monotonic()
            self.conn.send(("progress", figures))


class ShardError(RuntimeError):
    """A shard of a split run failed or died; the message says which and why."""


RunShard = Callable[[Exchange, tuple[int, int], IO[str] | None], dict[str, Any]]
"""Runs one shard (its exchange, (index, count), its transcript part or None) to its
report."""


def run_split(
    scenario: Scenario,
    run_shard: RunShard,
    *,
    shards: int,
    transcript: IO[str] | None,
    progress: IO[str] | None,
) -> dict[str, Any]:
    """Run ``scenario`` as ``shards`` processes and return shard 0's report (wall time:
    the whole run's). ``run_shard`` runs in each forked process."""
    started = time.monotonic()
    context = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory(prefix="vdtu-shards-") as parts_dir:
        parts = [Path(parts_dir) / f"shard{index}.txt" for index in range(shards)]
        conns: list[Connection] = []
        processes = []
        for index in range(shards):
            ours, theirs = context.Pipe()
            part = parts[index] if transcript is not None else None
            process = context.Process(
                target=_shard_main,
                args=(run_shard, theirs, (index, shards), part),
                name=f"vdtu-shard-{index}",
                daemon=True,
            )
            process.start()
            theirs.close()
            conns.append(ours)
            processes.append(process)
        try:
            report = _hub(conns, scenario.duration, progress)
        finally:
            for process in processes:
                if process.is_alive():
                    process.kill()
                process.join()
        if transcript is not None:
            transcript.writelines(_merged(parts))
    report["wall_s"] = round(time.monotonic() - started, 3)
    report["processes"] = shards
    return report


def _shard_main(
    run_shard: RunShard, conn: Connection, shard: tuple[int, int], part: Path | None
) -> None:
    try:
        exchange = PipeExchange(conn, shard[1])
        if part is None:
            report = run_shard(exchange, shard, None)
        else:
            with part.open("w", encoding="utf-8") as out:
                report = run_shard(exchange, shard, out)
        conn.send(("done", report))
    except BaseException:  # whatever it was, the hub must hear of it
        conn.send(("failed", traceback.format_exc()))
    finally:
        conn.close()


def _hub(conns: list[Connection], duration_s: float, progress: IO[str] | None) -> dict[str, Any]:
    """Serve the shards until each has sent its report; return shard 0's."""
    gathering: dict[int, tuple[str, Any]] = {}
    reports: dict[int, dict[str, Any]] = {}
    figures: dict[int, tuple[float, int, int, int]] = {}
    printed = time.monotonic()
    index_of = {id(conn): index for index, conn in enumerate(conns)}
    while len(reports) < len(conns):
        for ready in wait([c for i, c in enumerate(conns) if i not in reports]):
            assert isinstance(ready, Connection)
            index = index_of[id(ready)]
            try:
                message = ready.recv()
            except EOFError:
                raise ShardError(f"shard {index} died without a word") from None
            kind = message[0]
            if kind == "failed":
                raise ShardError(f"shard {index} failed:\n{message[1]}")
            if kind == "done":
                reports[index] = message[1]
            elif kind == "progress":
                figures[index] = message[1]
            else:
                gathering[index] = (message[1], message[2])
        if len(gathering) == len(conns):
            labels = {label for label, _part in gathering.values()}
            if len(labels) != 1:
                raise ShardError(f"the shards left the one timeline: they gather {labels}")
            gathered = [gathering[index][1] for index in range(len(conns))]
            for conn in conns:
                conn.send(gathered)
            gathering.clear()
        if (
            progress is not None
            and len(figures) == len(conns)
            and time.monotonic() - printed >= PROGRESS_EVERY_S
        ):
            printed = time.monotonic()
            total = (
                min(f[0] for f in figures.values()),
                sum(f[1] for f in figures.values()),
                sum(f[2] for f in figures.values()),
                sum(f[3] for f in figures.values()),
            )
            print(progress_line(total, duration_s), file=progress, flush=True)
    return reports[0]


def _merged(parts: list[Path]) -> Iterator[str]:
    """The shards' transcript parts as one, in canonical order (each part is in it)."""
    files = [part.open(encoding="utf-8") for part in parts]
    try:
        yield from heapq.merge(*files, key=_line_key)
    finally:
        for file in files:
            file.close()


def _line_key(line: str) -> tuple[float, int]:
    at, who, _rest = line.split(" ", 2)
    return (float(at), writer_rank(who))
