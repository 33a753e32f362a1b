"""What the benchmarks share: starting processes, sampling them, the host's PTY end, timing, and
the report.

Every benchmark imports from here and none imports another benchmark. This module imports
only the standard library and psutil, never ``vdtu``: ``bench.fuzz``'s child has to import
the ``vdtu`` package for the first time under atheris' instrumentation, after this module.

- Processes: ``vdtu_up_argv`` (the ``vdtu up`` the PTY benchmarks start), ``child_json`` (a
  benchmark's own ``--child`` in a fresh process, answering with one JSON value),
  ``mosquitto_pid`` and ``stderr_kind`` (vdtu's stderr lines grouped by kind).
- Sampling: ``rss_bytes``/``rss_mb`` and ``cpu_seconds`` (user + system) of any process,
  this one by default, through psutil.
- The host's end of a PTY: ``open_host_port`` (raw, 115200, non-blocking), ``write_all``.
- Timing: ``Latency`` (nearest-rank p50/p99/max of wall times), ``gc_paused`` (the
  collector off while timing) and ``GcWatch`` (the collector's pauses while it runs).
- Options: ``parse_list`` and ``parse_counts`` (comma-separated, each error naming the option).
- The report: ``progress`` (standard error), ``machine``/``machine_line`` (what was measured
  on), ``markdown_table`` and the cell formats ``opt`` and ``us_as_ms``.
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import re
import subprocess
import sys
import termios
import time
import tty
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
"""Where child processes run, so ``-m vdtu.cli`` and ``-m bench.<name>`` are found."""
READ_SIZE = 4096
"""Bytes read from a PTY at a time."""
STOP_TIMEOUT_S = 60.0
"""How long ``vdtu up`` may take to exit after SIGINT before it is killed."""


# -- processes ------------------------------------------------------------------------------------


def vdtu_up_argv(units: int, pty_dir: Path) -> list[str]:
    """``vdtu up`` with ``units`` units listed as JSON lines, pacing off, flash in memory and
    only the uart port, its links in ``pty_dir``."""
    argv = [sys.executable, "-m", "vdtu.cli", "up", "--units", str(units), "--json"]
    return [*argv, "--no-pacing", "--no-state", "--ports", "uart", "--pty-dir", str(pty_dir)]


def child_json(module: str, args: Sequence[str]) -> Any:
    """Run ``python -m module --child *args`` from the repository root and read its standard
    output as one JSON value; None when it printed none. Its standard error is ours."""
    command = [sys.executable, "-m", module, "--child", *args]
    done = subprocess.run(command, stdout=subprocess.PIPE, cwd=REPO_ROOT, check=False)
    try:
        return json.loads(done.stdout)
    except ValueError:
        return None


def mosquitto_pid() -> int:
    """The pid of this process's mosquitto child (there is one at a time)."""
    children = [p for p in psutil.Process().children() if p.name() == "mosquitto"]
    if len(children) != 1:
        raise RuntimeError(f"expected one mosquitto child, found {len(children)}")
    return int(children[0].pid)


_STDERR_NOISE = re.compile(r"'[^']*'|\"[^\"]*\"|\d+(\.\d+)?")


def stderr_kind(line: str) -> str:
    """A vdtu stderr line without its unit, time, quoted parts and numbers."""
    _unit, _sep, rest = line.partition("] ")
    return _STDERR_NOISE.sub("_", rest or line).strip()[:80]


# -- sampling -------------------------------------------------------------------------------------


def rss_bytes(process: psutil.Process | None = None) -> int:
    """Resident memory of ``process`` (default: this one)."""
    return int((process or psutil.Process()).memory_info().rss)


def rss_mb(process: psutil.Process | None = None) -> float:
    """Resident memory of ``process`` (default: this one) in MiB."""
    return rss_bytes(process) / 2**20


def cpu_seconds(process: psutil.Process | None = None) -> float:
    """User and system CPU time ``process`` (default: this one) has used so far."""
    times = (process or psutil.Process()).cpu_times()
    return float(times.user + times.system)


# -- the host's end of a PTY ----------------------------------------------------------------------


def set_host_line(fd: int) -> None:
    """Raw mode at 115200 baud on a PTY slave."""
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[4] = attrs[5] = termios.B115200
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def open_host_port(path: str) -> int:
    """Open a PTY slave (or a link to one) as the host: raw, 115200, non-blocking."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    set_host_line(fd)
    return fd


def write_all(fd: int, data: bytes) -> None:
    """Write ``data`` in one call; a PTY with room always takes a short line whole."""
    written = os.write(fd, data)
    if written != len(data):
        raise RuntimeError(f"short write on fd {fd}: {written} of {len(data)} bytes")


# -- timing ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Latency:
    """A distribution of wall times, in microseconds."""

    samples: int
    p50_us: float
    p99_us: float
    max_us: float

    @classmethod
    def of(cls, durations_ns: Sequence[int]) -> Latency:
        """Nearest-rank percentiles of ``durations_ns``."""
        if not durations_ns:
            raise ValueError("need at least one duration, not an empty sequence")
        ordered = sorted(durations_ns)

        def rank(q: float) -> float:
            return ordered[max(0, math.ceil(q * len(ordered)) - 1)] / 1000

        return cls(samples=len(ordered), p50_us=rank(0.50), p99_us=rank(0.99), max_us=rank(1.0))


@contextmanager
def gc_paused() -> Iterator[None]:
    """Keep the client's garbage collector out of the timed section."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@dataclass(slots=True, kw_only=True)
class GcPauses:
    """The garbage collector's runs while it is watched, and how long they stopped the loop."""

    collections: int = 0
    full: int = 0
    """Generation 2 collections (they walk every object of every unit)."""
    longest_ms: float = 0.0
    total_ms: float = 0.0


class GcWatch:
    """Times every collection through ``gc.callbacks`` while ``watching()``."""

    def __init__(self) -> None:
        self.pauses = GcPauses()
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause_ms = (time.perf_counter() - self._started) * 1000
        pauses = self.pauses
        pauses.collections += 1
        pauses.full += info["generation"] == 2
        pauses.longest_ms = max(pauses.longest_ms, pause_ms)
        pauses.total_ms += pause_ms

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Time the collections that happen inside the block."""
        gc.callbacks.append(self._callback)
        try:
            yield
        finally:
            gc.callbacks.remove(self._callback)


# -- options --------------------------------------------------------------------------------------


def parse_list(text: str, *, option: str, parse: Callable[[str], Any]) -> list[Any]:
    """``a,b,c`` through ``parse``; ValueError naming the option and the text."""
    try:
        values = [parse(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{option} takes a comma-separated list, not {text!r}") from None
    if not values:
        raise ValueError(f"{option} needs at least one value, not {text!r}")
    return values


def parse_counts(text: str, *, option: str, top: int, why: str = "") -> list[int]:
    """``a,b`` -> ``[a, b]``, each 1..``top``; ValueError naming the option otherwise.

    Args:
        why: the reason for ``top``, shown in the message (`` (...)``).
    """
    counts: list[int] = parse_list(text, option=option, parse=int)
    if any(not 1 <= n <= top for n in counts):
        raise ValueError(f"{option} values must be 1..{top}{why}, not {text!r}")
    return counts


# -- the report -----------------------------------------------------------------------------------


def progress(text: str) -> None:
    """A progress line on standard error."""
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def machine_line() -> str:
    """``machine: 2 CPUs, Linux ..., Python ..., <date>``: the report's first words."""
    info = machine()
    return (
        f"machine: {info['cpus']} CPUs, Linux {info['kernel']}, Python {info['python']}, "
        f"{info['date']}"
    )


def markdown_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table with right-aligned columns, padded to read in a terminal too."""
    widths = [max(len(cell) for cell in column) for column in zip(head, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    return "\n".join([line(head), rule, *(line(row) for row in rows)])


def opt(value: float | None, form: str) -> str:
    """``value`` in ``form`` (a format spec), or ``-`` when there is none."""
    return "-" if value is None else format(value, form)


def us_as_ms(value_us: float | None) -> str:
    """Microseconds shown as milliseconds to the microsecond, or ``-``."""
    return opt(None if value_us is None else value_us / 1000, ".3f")
