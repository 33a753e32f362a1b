"""Fuzzing at length: every target of ``tests/fuzz/targets.py`` under atheris, against a bare
engine.

Run ``python -m bench.fuzz [--inputs 10000000] [--target NAME ...] [--seconds N]
[--baseline-seconds 20] [--seed 1] [--out DIR] [--json]``; ``--repro FILE --target NAME``
runs one saved input again and prints its traceback. It needs atheris
(``pip install -e '.[fuzz]'``).

Engine. atheris (libFuzzer for Python, coverage guided): each target runs in a child
process of its own, one after the other (never two at once), with the ``vdtu`` package
instrumented for coverage, the target's seeds (``targets.seeds``) as the starting corpus
and a libFuzzer dictionary of the protocols' tokens. ``--inputs`` is split between the
targets by weight (``WEIGHTS``: the unit-level targets, the slowest, get fewer); ``--seconds``
caps each target's time as well.

What is counted, per target, by a wrapper around the target (not by libFuzzer, which would
stop at the first crash):

* **inputs** run and **inputs/s**;
* **crashes**: an exception out of the target (``InvariantBroken`` included). The first
  input of each distinct crash (exception type and the innermost project frame) is saved
  to ``<out>/crash-<target>-<n>.bin`` and printed with its traceback and a repro command;
  fuzzing goes on. For a unit-level target the inputs the unit took before are saved
  beside it (``...-history.json``), since its state carries over between inputs;
* **hangs**: an input that took over ``HANG_S`` (1 s); libFuzzer's own ``-timeout`` (30 s)
  kills a child stuck for good, which is reported as a hang too;
* **memory**: the child's RSS before the first input, after warm-up (``WARMUP`` of the
  inputs) and at the end. "Flat" means the end is within ``FLAT_MB`` of the warm-up value.
  libFuzzer keeps its corpus in memory, so the corpus size is reported beside it.

Baseline (the benchmarks' rule: a reference measured in the same run): the same engine,
wrapper and instrumentation on a trivial target, ``json.loads`` in a ``try``, for
``--baseline-seconds``. The ratio is baseline inputs/s over the target's: what the
project's code costs per input, in multiples of the bare engine.

Progress goes to standard error; the report (Markdown, or JSON with ``--json``) to
standard output. The exit status is 1 when any target crashed or hung.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.common import markdown_table, opt, progress, rss_mb

HANG_S = 1.0
"""An input that takes longer than this is a hang."""
WARMUP = 0.1
"""The share of a target's inputs after which its RSS is taken as the warm value."""
FLAT_MB = 8.0
"""Memory is flat when the end RSS is within this of the warm value."""
PROGRESS_EVERY_S = 5.0
STALL_S = 120.0
"""A child that reports nothing for this long is killed (libFuzzer's -timeout is 30 s)."""
WEIGHTS = {
    "xgc_reader": 100,
    "xgc_downlink": 500,
    "xgc_downlink_json": 400,
    "xgc_unit_serial": 120,
    "xgc_unit_actions": 750,
    "xgc_unit_downlink": 430,
    "quec_frames": 1100,
    "quec_frames_structured": 200,
    "quec_commands": 3500,
    "quec_commands_structured": 900,
    "quec_unit": 2000,
}
"""How ``--inputs`` is split (thousandths of 10 million): from 2 to 6 minutes a target on a
2-core machine, from each one's measured inputs/s (xgc_reader reads every input in several
chunkings with three readers; xgc_unit_serial and xgc_unit_downlink make the unit handle
whole lines of noise and 4 KB messages; the QuecPython parser without a unit is the fastest)."""
BASELINE = "baseline"
DICTIONARY = [
    "$XGC#",
    "$XGC_ACK#",
    "SET_DTU_PIPE#",
    "&#",
    "\\r\\n",
    "#0#",
    "PID:",
    ";PSECRET:",
    "addr:",
    ";instructions:",
    ";reg:",
    ";value:",
    "out1:1",
    "interval:",
    "updateLoc:true",
    "PHONE:",
    ";CONTENT:",
    "filename:",
    "fwVersion:",
    "url:http%3A%2F%2F",
    "AT+CSQ",
    "485",
    "232",
    '"cmd_code":',
    '"msg_id":',
    '"password":',
    '"data":',
    '"topic_id":',
    '"modbus":',
    '"configVersion":',
    "99,",
    "\\ud800",
    "true",
    "null",
    "1e999",
]


# -- the child: one target under atheris -------------------------------------------------------


@dataclass
class ChildReport:
    """What one child says, as one JSON line per progress step (the last one has done=True)."""

    target: str
    inputs: int = 0
    seconds: float = 0.0
    crashes: int = 0
    hangs: int = 0
    slowest_s: float = 0.0
    rss_start_mb: float = 0.0
    rss_warm_mb: float = 0.0
    rss_end_mb: float = 0.0
    rss_max_mb: float = 0.0
    corpus: int = 0
    crash_files: list[str] = field(default_factory=list)
    done: bool = False
    note: str = ""


def _crash_site(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.name != "check"]
    project = [f for f in frames if "/vdtu/" in f.filename] or frames
    last = project[-1] if project else None
    where = f"{Path(last.filename).name}:{last.lineno}" if last else "?"
    return f"{type(exc).__name__} at {where}"


class Runner:
    """The wrapper libFuzzer calls: counts, times, catches, reports, and ends the child."""

    def __init__(
        self,
        name: str,
        target: Callable[[bytes], None],
        *,
        runs: int,
        seconds: float,
        out: Path,
        corpus: Path,
        on_crash: Callable[[], list[bytes] | None],
    ) -> None:
        self.name = name
        self.target = target
        self.runs = runs
        self.seconds = seconds
        self.out = out
        self.corpus = corpus
        self.on_crash = on_crash
        self.report = ChildReport(target=name, rss_start_mb=rss_mb())
        self.sites: set[str] = set()
        self.started = time.perf_counter()
        self.next_progress = self.started + PROGRESS_EVERY_S
        self.warm_at = max(1, int(runs * WARMUP))

    def __call__(self, data: bytes) -> None:
        report = self.report
        report.inputs += 1
        began = time.perf_counter()
        try:
            self.target(data)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit out of project code is a bug too
            self._crashed(data, exc)
        took = time.perf_counter() - began
        report.slowest_s = max(report.slowest_s, took)
        if took > HANG_S:
            report.hangs += 1
            if report.hangs <= 5:
                self._save(f"hang-{self.name}-{report.hangs}.bin", data)
        if not report.rss_warm_mb and (
            report.inputs >= self.warm_at or began - self.started >= WARMUP * self.seconds
        ):
            report.rss_warm_mb = rss_mb()
        if began >= self.next_progress or report.inputs >= self.runs:
            self._progress(began)

    def _crashed(self, data: bytes, exc: BaseException) -> None:
        report = self.report
        report.crashes += 1
        history = self.on_crash()
        site = _crash_site(exc)
        if site in self.sites or len(self.sites) >= 20:
            return
        self.sites.add(site)
        stem = f"crash-{self.name}-{len(self.sites)}"
        path = self._save(f"{stem}.bin", data)
        if history:
            self._save(f"{stem}-history.json", json.dumps([h.hex() for h in history]).encode())
        trace = "".join(traceback.format_exception(exc)).rstrip()
        print(
            f"\n=== CRASH in {self.name}: {site}\ninput ({len(data)} bytes): {data[:300]!r}\n"
            f"{trace}\nrepro: python -m bench.fuzz --target {self.name} --repro {path}\n",
            file=sys.stderr,
            flush=True,
        )

    def _save(self, name: str, data: bytes) -> Path:
        path = self.out / name
        path.write_bytes(data)
        self.report.crash_files.append(str(path))
        return path

    def _progress(self, now: float) -> None:
        report = self.report
        report.seconds = now - self.started
        report.rss_end_mb = rss_mb()
        report.rss_max_mb = max(report.rss_max_mb, report.rss_end_mb)
        report.corpus = sum(1 for _ in self.corpus.iterdir())
        self.next_progress = now + PROGRESS_EVERY_S
        report.done = report.inputs >= self.runs or report.seconds >= self.seconds
        if report.done and not report.rss_warm_mb:
            report.rss_warm_mb = report.rss_start_mb
        print(json.dumps(asdict(report)), flush=True)
        if report.done:
            sys.stderr.flush()
            os._exit(0)


def _baseline(data: bytes) -> None:
    with contextlib.suppress(ValueError):
        json.loads(data)


def run_child(name: str, *, runs: int, seconds: float, seed: int, out: Path) -> None:
    """Fuzz target ``name`` with atheris until ``runs`` inputs or ``seconds``; never returns."""
    import atheris  # noqa: PLC0415 (optional: only the fuzzing child needs it)

    with atheris.instrument_imports(include=["vdtu"]):
        from tests.fuzz import targets  # noqa: PLC0415 (imported under instrumentation)

    target: Callable[[bytes], None]
    if name == BASELINE:
        target, initial = _baseline, [b'{"a": [1, 2.5, "x"]}', b"[]", b'"text"']
    else:
        target, initial = targets.TARGETS[name], targets.seeds(name)

    def on_crash() -> list[bytes] | None:
        if name not in targets.UNIT_TARGETS:
            return None
        history = targets.unit_history(name)
        targets.reset_unit()
        return history

    work = Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-", dir=out))
    corpus, seed_dir = work / "corpus", work / "seeds"
    corpus.mkdir()
    seed_dir.mkdir()
    for index, data in enumerate(initial):
        (seed_dir / f"seed-{index}").write_bytes(data)
    dictionary = work / "tokens.dict"
    dictionary.write_text("".join(f"{json.dumps(token)}\n" for token in DICTIONARY))
    runner = Runner(
        name,
        target,
        runs=runs,
        seconds=seconds,
        out=out,
        corpus=corpus,
        on_crash=on_crash,
    )
    args = [
        sys.argv[0],
        str(corpus),
        str(seed_dir),
        f"-seed={seed}",
        "-timeout=30",
        "-rss_limit_mb=4096",
        "-max_len=4096",
        f"-dict={dictionary}",
        f"-artifact_prefix={out}/{name}-",
        "-print_final_stats=0",
    ]
    atheris.Setup(args, runner)
    atheris.Fuzz()


def repro(name: str, path: Path) -> int:
    """Run one saved input (or a unit's saved history, then the input) and show the result."""
    from tests.fuzz import targets  # noqa: PLC0415 (bench modules import vdtu lazily)

    target = targets.TARGETS[name]
    history = path.with_name(path.stem + "-history.json")
    inputs = [path.read_bytes()]
    if history.exists():
        inputs = [bytes.fromhex(h) for h in json.loads(history.read_text())] + inputs
    for index, data in enumerate(inputs, 1):
        try:
            target(data)
        except Exception:
            traceback.print_exc()
            print(f"crashed on input {index} of {len(inputs)}: {data[:300]!r}")
            return 1
    print(f"{len(inputs)} input(s) ran without a crash")
    return 0


# -- the parent: one child after another, then the report --------------------------------------


@dataclass
class Result:
    """One target's figures, as reported."""

    report: ChildReport
    exit_code: int | None
    ratio: float | None = None

    @property
    def rate(self) -> float:
        return self.report.inputs / self.report.seconds if self.report.seconds else 0.0

    @property
    def flat(self) -> bool:
        return self.report.rss_end_mb - self.report.rss_warm_mb <= FLAT_MB


def run_target(
    name: str, *, runs: int, seconds: float, seed: int, out: Path
) -> tuple[ChildReport, int | None]:
    """Run one child to the end; its last report and exit code (None: killed as stalled)."""
    command = [
        sys.executable,
        "-m",
        "bench.fuzz",
        "--child",
        name,
        "--runs",
        str(runs),
        "--seconds",
        str(seconds),
        "--seed",
        str(seed),
        "--out",
        str(out),
    ]
    log = (out / f"{name}.log").open("w")
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log)
    report = ChildReport(target=name, note="no report")
    assert child.stdout is not None
    fd = child.stdout.fileno()
    last_heard = time.monotonic()
    buffer = b""
    exit_code: int | None = None
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], 0.5)
            chunk = os.read(fd, 65536) if ready else b""
            if chunk:
                last_heard = time.monotonic()
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    report = ChildReport(**json.loads(line))
                    progress(
                        f"{name}: {report.inputs} inputs, {report.seconds:.0f} s, "
                        f"{report.crashes} crashes, {report.hangs} hangs, "
                        f"RSS {report.rss_end_mb:.1f} MB, corpus {report.corpus}"
                    )
            if ready and not chunk:
                exit_code = child.wait()
                break
            if time.monotonic() - last_heard > STALL_S:
                child.kill()
                child.wait()
                report.hangs += 1
                report.note = f"killed: silent for {STALL_S:.0f} s"
                break
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        log.close()
    if exit_code not in (0, None) or not report.done:
        # libFuzzer ended the child: its -timeout (a hang) or a crash outside the wrapper
        report.note = report.note or f"child exited with {exit_code} before finishing"
        if "timeout" in _tail(out / f"{name}.log").lower():
            report.hangs += 1
        else:
            report.crashes += 1
    return report, exit_code


def _tail(path: Path) -> str:
    text = path.read_text(errors="replace")
    return text[-2000:]


def plan(total: int, names: Sequence[str]) -> dict[str, int]:
    """Split ``total`` inputs between ``names`` by ``WEIGHTS``."""
    weight = sum(WEIGHTS.get(name, 1) for name in names)
    return {name: max(1, total * WEIGHTS.get(name, 1) // weight) for name in names}


def markdown(results: Sequence[Result], baseline: Result, out: Path) -> str:
    head = ["target", "inputs", "seconds", "inputs/s", "ratio", "crashes", "hangs"]
    head += ["slowest ms", "RSS start MB", "RSS warm MB", "RSS end MB", "flat", "corpus"]
    table = [
        [
            r.target,
            str(r.inputs),
            f"{r.seconds:.0f}",
            f"{result.rate:.0f}",
            opt(result.ratio, ".1f"),
            str(r.crashes),
            str(r.hangs),
            f"{r.slowest_s * 1000:.1f}",
            f"{r.rss_start_mb:.1f}",
            f"{r.rss_warm_mb:.1f}",
            f"{r.rss_end_mb:.1f}",
            "yes" if result.flat else "NO",
            str(r.corpus),
        ]
        for result in [baseline, *results]
        for r in [result.report]
    ]
    rows = [markdown_table(head, table)]
    total = sum(r.report.inputs for r in results)
    crashes = sum(r.report.crashes for r in results)
    hangs = sum(r.report.hangs for r in results)
    rows.append("")
    rows.append(f"Total: {total} inputs, {crashes} crashes, {hangs} hangs.")
    files = [f for r in results for f in r.report.crash_files]
    notes = [f"{r.report.target}: {r.report.note}" for r in results if r.report.note]
    if files:
        rows.append("Saved inputs: " + ", ".join(files))
    if notes:
        rows.append("Notes: " + "; ".join(notes))
    rows.append(f"Logs and artifacts: {out}")
    return "\n".join(rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fuzz", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--inputs", type=int, default=10_000_000, help="in all, split by weight")
    parser.add_argument("--target", action="append", help="a target (repeatable; default: all)")
    parser.add_argument("--seconds", type=float, default=3600.0, help="cap per target")
    parser.add_argument("--baseline-seconds", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="where crashes and logs go (default: a new dir)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repro", type=Path, help="run this saved input on --target")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.child:
        run_child(args.child, runs=args.runs, seconds=args.seconds, seed=args.seed, out=args.out)
        return 0
    from tests.fuzz.targets import TARGETS  # noqa: PLC0415 (the child imports it instrumented)

    names = args.target or list(TARGETS)
    if args.repro:
        if len(names) != 1:
            raise SystemExit("--repro needs exactly one --target")
        return repro(names[0], args.repro)
    unknown = set(names) - set(TARGETS)
    if unknown:
        raise SystemExit(f"unknown targets {sorted(unknown)}; known: {', '.join(TARGETS)}")
    out = args.out or Path(tempfile.mkdtemp(prefix="vdtu-fuzz-"))
    out.mkdir(parents=True, exist_ok=True)
    budget = plan(args.inputs, names)
    progress(f"fuzzing {args.inputs} inputs: {budget}; output in {out}")
    began = time.time()
    report, code = run_target(
        BASELINE, runs=10**12, seconds=args.baseline_seconds, seed=args.seed, out=out
    )
    baseline = Result(report, code)
    results: list[Result] = []
    for name in names:
        report, code = run_target(
            name, runs=budget[name], seconds=args.seconds, seed=args.seed, out=out
        )
        result = Result(report, code)
        result.ratio = baseline.rate / result.rate if result.rate else None
        results.append(result)
    elapsed = time.time() - began
    if args.json:
        print(
            json.dumps(
                {
                    "baseline": asdict(baseline.report),
                    "targets": [asdict(r.report) | {"ratio": r.ratio} for r in results],
                    "seconds": elapsed,
                    "out": str(out),
                },
                indent=1,
            )
        )
    else:
        print(markdown(results, baseline, out))
        print(f"\nWall time {elapsed / 60:.1f} min.")
    failed = any(r.report.crashes or r.report.hangs for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
