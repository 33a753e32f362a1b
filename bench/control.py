"""The control API: from an API call to its effect on a unit's PTY, and one fault applied to a
whole headless fleet at once (issue 12, item 5).

Two parts, each against a baseline measured in the same run:

- **pty**: ``vdtu up --units 1 --json --no-state --ports uart --pty-dir TMP`` in its own
  process; this process holds the unit's uart as the host (raw fd, 115200) and one keep-alive
  HTTP connection to the API named in ``TMP/up.json``. Three kinds of sample take turns in
  blocks: an ``input`` poke (``in1`` alternately 1 and 0; the effect is the unit's
  ``$XGC_ACK#GPIO_INT#<IMEI>#0#in1:L&#..#`` line on the PTY), a ``host-write`` poke (a
  numbered line written toward the host; the effect is that line on the PTY), and the
  baseline: the host's own GET_IMEI round trip on the same PTY. A poke is timed from just
  before its HTTP request is written to the moment its effect's last byte is read (and,
  separately, to the moment the HTTP response is readable). The RSS of ``vdtu up`` is read
  before the first API call and after the last.
- **fleet**: a private mosquitto (``vdtu.cloud.mosquitto.Mosquitto``, anonymous) and ``vdtu
  fleet --units N --ramp R --duration D --interval 10 --broker URL --control-dir TMP
  --metrics-port P --no-progress`` in its own process, once per run: the baseline (no fault
  call) and one run per fault. Once ``GET /v1/fleet`` says every unit is connected, the
  benchmark waits ``--settle`` s, scrapes ``/metrics`` every second through a ``--window``
  s window before the call and a window after it, makes the call (``POST /v1/faults``,
  ``select=all``) in the fault runs and times it, then stops the fleet with SIGINT and reads
  its JSON report. The figures per window are the uplinks delivered, their mean latency
  (the Prometheus summary's ``_sum``/``_count`` deltas; its quantiles are over the whole run
  so far, so no window percentile can be had from them), the worst one-second mean, the
  fleet's CPU and reconnects, and the RSS of the fleet's processes.

Run from the repository root: ``python bench/control.py [--quick]`` (or ``-m bench.control``).
Progress goes to standard error, the report (Markdown tables) to standard output.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # ``python bench/control.py``: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil

from bench.common import (
    READ_SIZE,
    REPO_ROOT,
    Latency,
    gc_paused,
    machine_line,
    markdown_table,
    open_host_port,
    progress,
    rss_bytes,
    write_all,
)

GET_IMEI = b"$XGC#GET_IMEI#0#0&#5A#\r\n"
"""The host's GET_IMEI frame (check code 5A)."""
FD_RESERVE = 64
"""Open files ``vdtu fleet`` keeps for itself besides its units' (vdtu.load.command)."""


# -- HTTP ---------------------------------------------------------------------------------------


class Api:
    """One keep-alive HTTP connection to a control API."""

    def __init__(self, url: str, token: str, *, timeout: float = 120.0) -> None:
        host, _, port = url.removeprefix("http://").partition(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    @classmethod
    def of(cls, discovery: Path) -> Api:
        control = json.loads(discovery.read_text())["control"]
        return cls(control["url"], control["token"])

    def send(self, method: str, path: str, body: dict[str, Any] | None = None) -> None:
        data = None if body is None else json.dumps(body).encode()
        self.conn.request(method, path, body=data, headers=self.headers)

    def answer(self) -> Any:
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"control API: {response.status} {data[:300]!r}")
        return json.loads(data)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        self.send(method, path, body)
        return self.answer()

    def text(self, path: str) -> str:
        self.conn.request("GET", path, headers=self.headers)
        response = self.conn.getresponse()
        return response.read().decode()

    def close(self) -> None:
        self.conn.close()


# -- part 1: API call -> PTY --------------------------------------------------------------------


class Lines:
    """Complete lines read from the host's end of a PTY."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.unsolicited = 0

    def pending(self) -> Iterator[bytes]:
        while b"\n" in self.buffer:
            line, _, self.buffer = self.buffer.partition(b"\n")
            yield line + b"\n"

    def fill(self) -> None:
        with suppress(BlockingIOError):
            self.buffer += os.read(self.fd, READ_SIZE)

    def drain(self, seconds: float) -> int:
        """Read and drop whatever arrives for ``seconds``; returns the lines."""
        end = time.monotonic() + seconds
        count = 0
        while (left := end - time.monotonic()) > 0:
            if select.select([self.fd], [], [], left)[0]:
                self.fill()
                count += sum(1 for _ in self.pending())
        return count


def wait_effect(
    lines: Lines, marker: bytes, sock: int | None, *, timeout: float = 5.0
) -> tuple[int, int | None]:
    """Read until a line holding ``marker`` is complete (and ``sock`` is readable, if given);
    returns the ns clock at both moments."""
    effect: int | None = None
    answered: int | None = None
    poller = select.poll()
    poller.register(lines.fd, select.POLLIN)
    if sock is not None:
        poller.register(sock, select.POLLIN)
    deadline = time.monotonic() + timeout
    while effect is None or (sock is not None and answered is None):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {marker!r} on the PTY within {timeout} s")
        for fd, _events in poller.poll(100):
            now = time.perf_counter_ns()
            if fd == sock:
                answered = now
                poller.unregister(sock)
                continue
            lines.fill()
            for line in lines.pending():
                if effect is None and marker in line:
                    effect = now
                else:
                    lines.unsolicited += 1
    return effect, answered


@dataclass(slots=True)
class PtySamples:
    """The timings of part 1, in ns."""

    effect: dict[str, list[int]] = field(default_factory=dict)
    answer: dict[str, list[int]] = field(default_factory=dict)


def poke_once(api: Api, lines: Lines, kind: str, k: int, imei: str) -> tuple[int, int]:
    """One poke of ``kind``; returns (to effect, to HTTP answer) in ns."""
    if kind == "input":
        level = k % 2
        params: dict[str, Any] = {"index": 1, "level": level}
        marker = f"GPIO_INT#{imei}#0#in1:{level}&".encode()
    else:
        text = f"BENCH{k:06d}\r\n"
        params = {"port": "uart", "hex": text.encode().hex()}
        marker = text[:-2].encode()
    body = {"select": "0", "action": kind, "params": params}
    start = time.perf_counter_ns()
    api.send("POST", "/v1/pokes", body)
    sock = api.conn.sock.fileno() if api.conn.sock is not None else None
    effect, answered = wait_effect(lines, marker, sock)
    reply = api.answer()
    if reply.get("done") != [0]:
        raise RuntimeError(f"poke {kind} not done: {reply}")
    assert answered is not None
    return effect - start, answered - start


def imei_once(lines: Lines) -> int:
    start = time.perf_counter_ns()
    write_all(lines.fd, GET_IMEI)
    effect, _ = wait_effect(lines, b"GET_IMEI#", None)
    return effect - start


def wait_answering(lines: Lines, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(RuntimeError):
            write_all(lines.fd, GET_IMEI)
            wait_effect(lines, b"GET_IMEI#", None, timeout=0.3)
            return
    raise RuntimeError(f"the unit did not answer GET_IMEI within {timeout} s")


KINDS = ("input", "host-write", "get-imei")
"""Part 1's kinds of sample; ``get-imei`` is the baseline."""


def sample_pty(api: Api, lines: Lines, imei: str, samples: int, block: int) -> PtySamples:
    """``samples`` of each kind, the kinds taking turns in blocks of ``block``."""
    timings = PtySamples()
    for kind in KINDS:
        timings.effect[kind] = []
        timings.answer[kind] = []
    with gc_paused():
        k = 0
        while len(timings.effect["get-imei"]) < samples:
            for kind in KINDS:
                for _ in range(min(block, samples - len(timings.effect[kind]))):
                    k += 1
                    if kind == "get-imei":
                        timings.effect[kind].append(imei_once(lines))
                        continue
                    effect, answer = poke_once(api, lines, kind, k, imei)
                    timings.effect[kind].append(effect)
                    timings.answer[kind].append(answer)
    return timings


def run_pty(samples: int, block: int, settle: float, pacing: bool) -> dict[str, Any]:
    """Part 1; see the module docstring."""
    with tempfile.TemporaryDirectory(prefix="vdtu-bench-control-") as tmp:
        pty_dir = Path(tmp)
        argv = [sys.executable, "-m", "vdtu.cli", "up", "--units", "1", "--json", "--no-state"]
        argv += ["--ports", "uart", "--pty-dir", str(pty_dir)]
        argv += [] if pacing else ["--no-pacing"]
        progress("pty: " + " ".join(argv[2:]))
        log = (pty_dir / "stderr.log").open("w+")
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, cwd=REPO_ROOT)
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line:
                log.seek(0)
                raise RuntimeError(f"vdtu up exited: {log.read()[-2000:]}")
            unit = json.loads(line)
            fd = open_host_port(unit["ports"]["uart"])
            lines = Lines(fd)
            wait_answering(lines)
            drained = lines.drain(settle)
            progress(f"pty: answering; {drained} lines while settling {settle} s")
            api = Api.of(pty_dir / "up.json")
            server = psutil.Process(process.pid)
            rss_before = rss_bytes(server)
            cpu_before = server.cpu_times()
            timings = sample_pty(api, lines, unit["imei"], samples, block)
            rss_after = rss_bytes(server)
            cpu_after = server.cpu_times()
            api.close()
            os.close(fd)
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
    cpu_s = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    return {
        "pacing": pacing,
        "samples": samples,
        "effect": {k: _lat(v) for k, v in timings.effect.items()},
        "answer": {k: _lat(v) for k, v in timings.answer.items() if v},
        "unsolicited": lines.unsolicited,
        "rss_before_mb": rss_before / 2**20,
        "rss_after_mb": rss_after / 2**20,
        "server_cpu_us_per_sample": cpu_s * 1e6 / (3 * samples),
    }


def _lat(durations_ns: Sequence[int]) -> dict[str, float]:
    latency = Latency.of(durations_ns)
    return {"p50_us": latency.p50_us, "p99_us": latency.p99_us, "max_us": latency.max_us}


def pty_report(result: dict[str, Any]) -> str:
    effect, answer = result["effect"], result["answer"]
    base = effect["get-imei"]
    rows = []
    names = {
        "input": "`input` poke -> GPIO_INT on the PTY",
        "host-write": "`host-write` poke -> the line on the PTY",
        "get-imei": "baseline: GET_IMEI round trip on the PTY",
    }
    for kind in ("input", "host-write", "get-imei"):
        figures = effect[kind]
        http = answer.get(kind)
        rows.append(
            [
                names[kind],
                f"{figures['p50_us'] / 1000:.3f}",
                f"{figures['p99_us'] / 1000:.3f}",
                f"{figures['max_us'] / 1000:.3f}",
                f"{figures['p50_us'] / base['p50_us']:.2f}",
                f"{figures['p99_us'] / base['p99_us']:.2f}",
                "-" if http is None else f"{http['p50_us'] / 1000:.3f}",
                "-" if http is None else f"{http['p99_us'] / 1000:.3f}",
            ]
        )
    head = ["sample", "p50 ms", "p99 ms", "max ms", "ratio p50", "ratio p99"]
    head += ["HTTP answer p50 ms", "HTTP answer p99 ms"]
    pacing = "wire pacing on" if result["pacing"] else "--no-pacing"
    return "\n".join(
        [
            f"### API call -> PTY, 1 unit, {result['samples']} samples of each kind, {pacing}",
            "",
            markdown_table(head, rows),
            "",
            f"vdtu up RSS before the first API call {result['rss_before_mb']:.1f} MB, after "
            f"{3 * result['samples']} samples {result['rss_after_mb']:.1f} MB; server CPU "
            f"{result['server_cpu_us_per_sample']:.0f} µs per sample (all kinds); "
            f"unsolicited lines {result['unsolicited']}",
        ]
    )


# -- part 2: one fault on a whole fleet ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault as the benchmark applies it: ``kind [name=value ...] [for=SECONDS]``."""

    kind: str
    params: dict[str, Any]
    for_s: float | None

    @classmethod
    def parse(cls, text: str) -> Fault:
        kind, *pairs = text.split()
        params: dict[str, Any] = {}
        for_s = None
        for pair in pairs:
            name, _, value = pair.partition("=")
            number: Any = float(value) if "." in value else int(value)
            if name == "for":
                for_s = float(number)
            else:
                params[name] = number
        return cls(kind, params, for_s)

    def __str__(self) -> str:
        words = [self.kind, *(f"{k}={v}" for k, v in self.params.items())]
        return " ".join(words + ([f"--for {self.for_s:g}"] if self.for_s else []))


@dataclass(slots=True)
class Scrape:
    """One ``/metrics`` scrape."""

    at: float
    values: dict[str, float]
    rss_mb: float


def parse_metrics(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        with suppress(ValueError):
            values[name.removeprefix("vdtu_fleet_")] = float(value)
    return values


def tree_rss_mb(process: psutil.Process) -> float:
    total = 0
    for each in [process, *process.children(recursive=True)]:
        with suppress(psutil.Error):
            total += rss_bytes(each)
    return total / 2**20


def window(scrapes: Sequence[Scrape]) -> dict[str, Any]:
    """Figures between the first and the last scrape of ``scrapes``."""
    first, last = scrapes[0], scrapes[-1]

    def delta(name: str) -> float:
        return last.values.get(name, 0.0) - first.values.get(name, 0.0)

    count = delta("latency_seconds_count")
    means = []
    for a, b in itertools.pairwise(scrapes):
        n = b.values["latency_seconds_count"] - a.values["latency_seconds_count"]
        if n > 0:
            s = b.values["latency_seconds_sum"] - a.values["latency_seconds_sum"]
            means.append(s / n * 1000)
    seconds = last.at - first.at
    return {
        "seconds": seconds,
        "delivered": int(count),
        "mean_ms": delta("latency_seconds_sum") / count * 1000 if count else None,
        "worst_1s_mean_ms": max(means, default=None),
        "cpu_pct": delta("cpu_seconds_total") / seconds * 100 if seconds else None,
        "reconnects": int(delta("reconnects_total")),
        "connected_min": int(min(s.values.get("connected", 0) for s in scrapes)),
        "rss_mb": last.rss_mb,
    }


@contextmanager
def fleet_process(argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as err:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, cwd=REPO_ROOT)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()


def wait_connected(discovery: Path, units: int, process: psutil.Process, timeout: float) -> Api:
    start = time.monotonic()
    while not discovery.exists():
        if time.monotonic() - start > 60 or not process.is_running():
            raise RuntimeError(f"no {discovery} after 60 s")
        time.sleep(0.2)
    api = Api.of(discovery)
    last = -1
    while True:
        summary = api.call("GET", "/v1/fleet")
        if summary["connected"] >= units:
            return api
        if summary["connected"] != last and time.monotonic() - start > 5:
            progress(f"fleet: {summary['connected']}/{units} connected")
            last = summary["connected"]
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"only {summary['connected']}/{units} connected after {timeout} s")
        time.sleep(2.0)


def scrape_window(scrape: Callable[[], Scrape], seconds: float) -> list[Scrape]:
    """A scrape every second for ``seconds``."""
    scrapes = [scrape()]
    while scrapes[-1].at - scrapes[0].at < seconds:
        time.sleep(max(0.0, scrapes[0].at + len(scrapes) - time.monotonic()))
        scrapes.append(scrape())
    return scrapes


def run_fleet_once(
    options: argparse.Namespace, broker: str, fault: Fault | None, tmp: Path, name: str
) -> dict[str, Any]:
    """One ``vdtu fleet`` run: the baseline (``fault`` None) or one fault call."""
    ctl = tmp / f"{name}-ctl"
    metrics_port = options.metrics_port
    duration = options.connect_timeout + options.settle + 2 * options.window + 60
    argv = [sys.executable, "-m", "vdtu.cli", "fleet", "--units", str(options.units)]
    argv += ["--ramp", str(options.ramp), "--duration", str(duration), "--interval", "10"]
    argv += ["--broker", broker, "--control-dir", str(ctl), "--no-progress"]
    argv += ["--metrics-port", str(metrics_port), "--procs", str(options.procs)]
    shown = [a if a != broker else "mqtt://127.0.0.1:PORT" for a in argv[3:]]
    progress(f"fleet {name}: vdtu " + " ".join(shown))
    started = time.monotonic()
    with fleet_process(argv, tmp / f"{name}.log") as popen:
        process = psutil.Process(popen.pid)
        api = wait_connected(ctl / "up.json", options.units, process, options.connect_timeout)
        connected_s = time.monotonic() - started
        progress(f"fleet {name}: all {options.units} connected after {connected_s:.1f} s")
        port = metrics_port if options.procs == 1 else metrics_port + 1
        metrics = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

        def scrape() -> Scrape:
            metrics.request("GET", "/metrics")
            values = parse_metrics(metrics.getresponse().read().decode())
            return Scrape(time.monotonic(), values, tree_rss_mb(process))

        time.sleep(options.settle)
        before = scrape_window(scrape, options.window)
        call: dict[str, Any] = {"rss_before_mb": tree_rss_mb(process)}
        if fault is not None:
            body: dict[str, Any] = {"select": "all", "kind": fault.kind, "params": fault.params}
            if fault.for_s is not None:
                body["for_s"] = fault.for_s
            t0 = time.perf_counter()
            answer = api.call("POST", "/v1/faults", body)
            call["wall_s"] = time.perf_counter() - t0
            call["applied"] = len(answer.get("applied", []))
            call["refused"] = len(answer.get("refused", {}))
            progress(
                f"fleet {name}: {fault} on all: {call['wall_s'] * 1000:.0f} ms, {answer_n(answer)}"
            )
        call["rss_after_mb"] = tree_rss_mb(process)
        after = scrape_window(scrape, options.window)
        if fault is not None:
            t0 = time.perf_counter()
            listed = api.call("GET", "/v1/units?select=all")
            call["list_s"] = time.perf_counter() - t0
            call["listed"] = len(listed["units"])
            call["rss_listed_mb"] = tree_rss_mb(process)
        api.close()
        metrics.close()
        popen.send_signal(signal.SIGINT)
        out, _ = popen.communicate(timeout=300)
    report = json.loads(out) if out.strip() else {}
    return {
        "name": name,
        "fault": None if fault is None else str(fault),
        "connected_s": connected_s,
        "before": window(before),
        "after": window(after),
        "call": call,
        "report": {k: report.get(k) for k in ("delivered", "lost", "latency_ms", "rss_mb")},
    }


def answer_n(answer: dict[str, Any]) -> str:
    return f"applied {len(answer.get('applied', []))}, refused {len(answer.get('refused', {}))}"


def raise_open_files(units: int, procs: int) -> None:
    """Raise this process's soft open-file limit to the hard one (the children inherit it)
    and say when one process cannot hold the fleet."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    need = -(-units // procs) + FD_RESERVE
    if need > hard:
        raise SystemExit(
            f"--units {units} needs about {need} open files per process, more than the "
            f"limit of {hard}; give --procs"
        )


def run_fleet(options: argparse.Namespace) -> list[dict[str, Any]]:
    """Part 2; see the module docstring."""
    from vdtu.cloud.mosquitto import Mosquitto  # noqa: PLC0415 (the fleet part only)

    raise_open_files(options.units, options.procs)
    faults = [Fault.parse(text) for text in options.faults]
    results = []
    with tempfile.TemporaryDirectory(prefix="vdtu-bench-control-") as tmp:
        for index, fault in enumerate([None, *faults]):
            name = "baseline" if fault is None else f"fault{index}"
            with Mosquitto(max_queued_messages=0) as mosquitto:
                broker = f"mqtt://127.0.0.1:{mosquitto.port}"
                results.append(run_fleet_once(options, broker, fault, Path(tmp), name))
    return results


def fleet_report(options: argparse.Namespace, results: Sequence[dict[str, Any]]) -> str:
    base = results[0]

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    rows = []
    for result in results:
        for label in ("before", "after"):
            w = result[label]
            base_mean = base[label]["mean_ms"]
            ratio = "-"
            if w["mean_ms"] is not None and base_mean:
                ratio = f"{w['mean_ms'] / base_mean:.2f}"
            rows.append(
                [
                    result["fault"] or "baseline (no call)",
                    label,
                    str(w["delivered"]),
                    ms(w["mean_ms"]),
                    ratio,
                    ms(w["worst_1s_mean_ms"]),
                    ms(w["cpu_pct"]),
                    str(w["reconnects"]),
                    str(w["connected_min"]),
                    f"{w['rss_mb']:.1f}",
                ]
            )
    head = ["run", "window", "uplinks", "mean ms", "mean / baseline", "worst 1 s mean ms"]
    head += ["CPU %", "reconnects", "connected min", "RSS MB"]
    calls = []
    for result in results:
        call, report = result["call"], result["report"]
        lat = report.get("latency_ms") or {}
        calls.append(
            [
                result["fault"] or "baseline (no call)",
                f"{result['connected_s']:.1f}",
                "-" if "wall_s" not in call else f"{call['wall_s'] * 1000:.0f}",
                "-" if "applied" not in call else f"{call['applied']}/{call['refused']}",
                f"{call['rss_before_mb']:.1f} -> {call['rss_after_mb']:.1f}",
                "-" if "list_s" not in call else f"{call['list_s'] * 1000:.0f}",
                "-" if "rss_listed_mb" not in call else f"{call['rss_listed_mb']:.1f}",
                str(report.get("delivered")),
                str(report.get("lost")),
                f"{ms(lat.get('p50'))} / {ms(lat.get('p99'))} / {ms(lat.get('max'))}",
            ]
        )
    head2 = ["run", "all connected s", "fault call ms", "applied/refused", "RSS around call MB"]
    head2 += ["GET /v1/units all ms", "RSS after list MB", "delivered", "lost"]
    head2 += ["whole run p50 / p99 / max ms"]
    return "\n".join(
        [
            f"### One fault on {options.units} headless units (--procs {options.procs}, "
            f"--ramp {options.ramp}), windows of {options.window:g} s",
            "",
            markdown_table(head, rows),
            "",
            markdown_table(head2, calls),
        ]
    )


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.control", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 samples, 1000 units")
    parser.add_argument("--samples", type=int, default=300, help="timed samples of each kind")
    parser.add_argument("--block", type=int, default=50, help="samples of one kind in a row")
    parser.add_argument("--pty-settle", type=float, default=3.0, help="seconds before timing")
    parser.add_argument("--no-pacing", action="store_true", help="vdtu up --no-pacing")
    parser.add_argument("--units", type=int, default=10000, help="fleet units")
    parser.add_argument("--procs", type=int, default=1, help="vdtu fleet --procs")
    parser.add_argument("--ramp", type=int, default=200, help="units powered on per second")
    parser.add_argument(
        "--fault",
        dest="faults",
        action="append",
        help="'KIND [NAME=VALUE ...] [for=S]', repeatable "
        "(default: signal csq=10 for=30, roaming for=30, pdp-drop retry=5)",
    )
    parser.add_argument("--window", type=float, default=45.0, help="seconds before/after")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds after connected")
    parser.add_argument("--connect-timeout", type=float, default=300.0)
    parser.add_argument("--metrics-port", type=int, default=9410)
    parser.add_argument("--skip-pty", action="store_true")
    parser.add_argument("--skip-fleet", action="store_true")
    parser.add_argument("--json", action="store_true", help="the results as JSON")
    options = parser.parse_args(argv)
    if options.faults is None:
        options.faults = ["signal csq=10 for=30", "roaming for=30", "pdp-drop retry=5"]
    if options.quick:
        options.samples = min(options.samples, 100)
        options.units = min(options.units, 1000)
        options.window = min(options.window, 20.0)
        options.faults = options.faults[:1]
        options.settle = min(options.settle, 5.0)
    return options


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_args(argv)
    results: dict[str, Any] = {"machine": machine_line()}
    parts = [machine_line(), ""]
    if not options.skip_pty:
        pty = run_pty(options.samples, options.block, options.pty_settle, not options.no_pacing)
        results["pty"] = pty
        parts += [pty_report(pty), ""]
    if not options.skip_fleet:
        fleet = run_fleet(options)
        results["fleet"] = fleet
        parts += [fleet_report(options, fleet), ""]
    if options.json:
        print(json.dumps(results, indent=1))
    else:
        print("\n".join(parts))


if __name__ == "__main__":
    main()
