"""GET_IMEI round trip over a unit's PTY, against raw PTY echo measured in the same run.

Run ``python -m bench.pty_roundtrip [--units 1,100,1000] [--samples N] [--json]``.

For each unit count N, two server processes run side by side and are measured
through the same client code:

* the device under test, ``vdtu up --units N --json --no-pacing --no-state
  --ports uart --pty-dir <tmp>``;
* the baseline, this module's ``--echo-child N``: N ``os.openpty`` pairs whose
  masters echo every line back from an asyncio loop (``add_reader``), so it has
  the same process hop, the same loop machinery and the same line framing as
  vdtu, and nothing else.

Both print one JSON object per unit (``ports.uart`` is what to open) and stop on
SIGINT with exit status 0. A third reference, the echo in this very process (no
process hop), shows what the PTY alone costs; it is measured first, on its own.

What is measured, and why this way:

* **Start-up** (the echo child first, then vdtu, never both at once): from
  spawning to the last JSON line read (``listed``) and to every unit having
  answered its first GET_IMEI (``answering``). A unit's firmware drops bytes for
  its first second, so each unanswered unit is probed again every
  ``PROBE_INTERVAL_S``: ``answering`` is exact to that interval. Then the
  server's RSS (psutil), in MB and per unit.
* **Settling**: the modem registers 4-12 s after power-on and the firmware
  notifies the host of it; the client waits ``--settle`` seconds, then takes each
  server's CPU over ``IDLE_WINDOW_S`` (its background load) and drains the ports.
* **Round trip** (latency, not throughput): one request in flight at a time,
  round-robin over all units, ``time.perf_counter_ns`` from before the write of
  the 24-byte request to the read that completes the reply line. The two servers
  take turns in blocks of ``BLOCK`` round trips, so the load of a shared machine
  falls on both alike. The client waits on an epoll (so the 1023-fd limit of
  ``select`` does not apply; pyserial is not used for that reason and for its
  own overhead), sets 115200 baud on its side (the ports' speed, so vdtu sees no
  mismatch), and runs with the garbage collector off so its own pauses stay out
  of the figures. Lines other than the awaited reply (notifications) are counted,
  and each server's CPU time over this phase is divided by the requests it served.
* **Burst**: one GET_IMEI written to every unit at once, time until all answered
  (the servers taking turns burst by burst).

Ratios are vdtu over the echo child. The acceptance figure is the p99 ratio at
one unit (within 10x).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import psutil

from bench.common import (
    READ_SIZE,
    REPO_ROOT,
    STOP_TIMEOUT_S,
    Latency,
    cpu_seconds,
    gc_paused,
    machine,
    machine_line,
    markdown_table,
    open_host_port,
    parse_counts,
    progress,
    rss_bytes,
    set_host_line,
    vdtu_up_argv,
    write_all,
)
from vdtu.firmware.xgc.codec import FrameReceived, parse_frame

REQUEST = b"$XGC#GET_IMEI#0#0&#5A#\r\n"
"""The 24 bytes of every request: GET_IMEI as docs/spec/xgc.md#5.1 shows it (0x5A is its check
code, docs/spec/xgc.md#3.1)."""
PROBE_INTERVAL_S = 0.05
"""During start-up, an unanswered unit is asked again this often."""
START_TIMEOUT_S = 300.0
REPLY_TIMEOUT_S = 5.0
IDLE_WINDOW_S = 2.0
"""How long the server's background CPU is measured after settling."""
WARMUP = 100
"""Untimed round trips before the timed ones."""
BLOCK = 100
"""Round trips a server gets before the other one's turn."""
ACCEPTABLE_P99_RATIO = 10.0
MAX_UNITS = 1500
"""Both servers run side by side: 2 x 1500 of the machine's 4095 PTYs, leaving room for others."""


# -- results --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Startup:
    """How long a server took to come up, and what it weighs then."""

    listed_s: float
    """Spawn to the last JSON line read."""
    answering_s: float
    """Spawn to every unit having answered its first GET_IMEI."""
    rss_mb: float
    rss_per_unit_kb: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerRun:
    """Everything measured on one server process."""

    startup: Startup
    idle_cpu_percent: float
    """The server's CPU (percent of one core) while nobody talks to it, after settling."""
    round_trip: Latency
    burst: Latency
    """Time until every unit answered one GET_IMEI sent to all of them at once."""
    unsolicited_lines: int
    """Lines other than the awaited reply read while measuring."""
    cpu_per_request_us: float
    """The server's CPU time over the round-trip phase, per request it answered."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UnitsResult:
    """The comparison at one unit count."""

    units: int
    vdtu: ServerRun
    echo: ServerRun
    in_process_echo: Latency
    ratio_p50: float
    ratio_p99: float
    burst_ratio_p50: float


# -- the host's side of the ports -----------------------------------------------------------------


class Port:
    """The host's end of one unit's port: sends GET_IMEI, recognises the answer.

    Args:
        fd: the open, non-blocking slave.
        reply_prefix: how the awaited reply line starts.
        name: for error messages.
    """

    def __init__(self, fd: int, *, reply_prefix: bytes, name: str) -> None:
        self.fd = fd
        self.reply_prefix = reply_prefix
        self.name = name
        self.replies = 0
        self.first_reply = b""
        self.unsolicited = 0
        self.recent_unsolicited: deque[bytes] = deque(maxlen=3)
        self.answered_ns = 0
        """perf_counter_ns of the first reply (0: none yet)."""
        self.probed_ns = 0
        """perf_counter_ns of the last start-up probe."""
        self._buffer = bytearray()

    def send(self) -> None:
        """Write the GET_IMEI request."""
        write_all(self.fd, REQUEST)

    def feed(self) -> None:
        """Read what the fd holds and sort its complete lines into replies and the rest."""
        try:
            data = os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return
        buffer = self._buffer
        buffer += data
        while (end := buffer.find(b"\n")) >= 0:
            line = bytes(buffer[: end + 1])
            del buffer[: end + 1]
            if line.startswith(self.reply_prefix):
                if not self.replies:
                    self.first_reply = line
                    self.answered_ns = time.perf_counter_ns()
                self.replies += 1
            else:
                self.unsolicited += 1
                self.recent_unsolicited.append(line)


def echo_lines(fd: int, buffer: bytearray) -> None:
    """Echo every complete line readable on ``fd`` (a PTY master) back to it."""
    try:
        data = os.read(fd, READ_SIZE)
    except BlockingIOError:
        return
    buffer += data
    end = buffer.rfind(b"\n")
    if end >= 0:
        write_all(fd, bytes(buffer[: end + 1]))
        del buffer[: end + 1]


class Host:
    """Every port of one server on one epoll; optionally in-process echo masters too."""

    def __init__(self) -> None:
        self.epoll = select.epoll()
        self.ports: list[Port] = []
        self._by_fd: dict[int, Port] = {}
        self._echo_masters: dict[int, bytearray] = {}

    def add_port(self, port: Port) -> None:
        """Watch a port."""
        self.ports.append(port)
        self._by_fd[port.fd] = port
        self.epoll.register(port.fd, select.EPOLLIN)

    def add_echo_master(self, fd: int) -> None:
        """Echo lines on a PTY master from this process (the in-process reference)."""
        self._echo_masters[fd] = bytearray()
        self.epoll.register(fd, select.EPOLLIN)

    def handle(self, fd: int) -> None:
        """Input on ``fd``: a port's lines are sorted, an echo master's lines echoed."""
        port = self._by_fd.get(fd)
        if port is not None:
            port.feed()
        else:
            echo_lines(fd, self._echo_masters[fd])

    def pump(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for input and handle it; returns how many fds had some."""
        events = self.epoll.poll(timeout_s)
        for fd, _mask in events:
            self.handle(fd)
        return len(events)

    def drain(self, duration_s: float) -> None:
        """Handle whatever arrives for ``duration_s``."""
        end = time.monotonic() + duration_s
        while (left := end - time.monotonic()) > 0:
            self.pump(left)

    def round_trip(self, port: Port) -> int:
        """One GET_IMEI on ``port``; the nanoseconds from write to the completed reply."""
        before = port.replies
        start = time.perf_counter_ns()
        port.send()
        while port.replies == before:
            if not self.pump(REPLY_TIMEOUT_S):
                raise TimeoutError(
                    f"{port.name}: no reply in {REPLY_TIMEOUT_S} s; "
                    f"the last other lines: {list(port.recent_unsolicited)}"
                )
        return time.perf_counter_ns() - start

    def burst(self) -> int:
        """GET_IMEI to every port at once; nanoseconds until every one has answered."""
        awaited = {port: port.replies for port in self.ports}
        start = time.perf_counter_ns()
        for port in self.ports:
            port.send()
        while awaited:
            if not self.pump(REPLY_TIMEOUT_S):
                names = ", ".join(port.name for port in list(awaited)[:5])
                raise TimeoutError(f"burst: no reply in {REPLY_TIMEOUT_S} s from {names}")
            awaited = {port: n for port, n in awaited.items() if port.replies == n}
        return time.perf_counter_ns() - start

    def unsolicited(self) -> int:
        """Lines other than replies read so far, over every port."""
        return sum(port.unsolicited for port in self.ports)

    def close(self) -> None:
        """Close every port and the epoll (echo masters belong to their creator)."""
        for port in self.ports:
            os.close(port.fd)
        self.ports.clear()
        self._by_fd.clear()
        self.epoll.close()


def measure_round_trips(hosts: Sequence[Host], samples: int) -> list[Latency]:
    """Round trips on every host, one in flight, round-robin over each host's ports.

    The hosts take turns in blocks of ``BLOCK`` round trips (in alternating order),
    so a slow spell of the machine lands on all of them alike.
    """
    durations: list[list[int]] = [[] for _ in hosts]
    with gc_paused():
        for host in hosts:
            for index in range(WARMUP):
                host.round_trip(host.ports[index % len(host.ports)])
        for block, first in enumerate(range(0, samples, BLOCK)):
            turns = list(zip(hosts, durations, strict=True))
            for host, timed in turns if block % 2 == 0 else reversed(turns):
                ports = host.ports
                last = min(first + BLOCK, samples)
                timed += [
                    host.round_trip(ports[index % len(ports)]) for index in range(first, last)
                ]
    return [Latency.of(timed) for timed in durations]


def measure_bursts(hosts: Sequence[Host], bursts: int) -> list[Latency]:
    """Bursts (GET_IMEI to every port at once, until all answered), the hosts taking turns."""
    durations: list[list[int]] = [[] for _ in hosts]
    with gc_paused():
        for burst in range(bursts):
            turns = list(zip(hosts, durations, strict=True))
            for host, timed in turns if burst % 2 == 0 else reversed(turns):
                timed.append(host.burst())
    return [Latency.of(timed) for timed in durations]


# -- server processes -----------------------------------------------------------------------------


class ServerProcess:
    """A process that prints one JSON object per unit and stops on SIGINT with status 0.

    Args:
        name: for messages.
        argv: the command.
        units: how many JSON lines (units) it prints.
        reply_prefix: the start of the awaited reply line, from a unit's JSON object.
        validate: checks a unit's first reply; returns a complaint or ``""``.
        stderr_path: where its standard error goes.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        units: int,
        reply_prefix: Callable[[Mapping[str, Any]], bytes],
        validate: Callable[[Mapping[str, Any], bytes], str],
        stderr_path: Path,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.units = units
        self.reply_prefix = reply_prefix
        self.validate = validate
        self.stderr_path = stderr_path
        self.process: subprocess.Popen[bytes] | None = None
        self.described: list[Mapping[str, Any]] = []

    def start(self, host: Host) -> Startup:
        """Spawn, open every port as it is listed, probe until every unit answers."""
        spawned_ns = time.perf_counter_ns()
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                self.argv,
                stdout=subprocess.PIPE,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                cwd=REPO_ROOT,
            )
        stdout = self._stdout().fileno()
        os.set_blocking(stdout, False)
        host.epoll.register(stdout, select.EPOLLIN)
        pending = bytearray()
        listed_ns = 0
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while not listed_ns or any(not port.replies for port in host.ports):
                if time.monotonic() > deadline:
                    raise TimeoutError(self._failure(f"not up after {START_TIMEOUT_S} s"))
                if self._running().poll() is not None:
                    raise RuntimeError(self._failure("exited during start-up"))
                events = host.epoll.poll(PROBE_INTERVAL_S / 2)
                if any(fd == stdout for fd, _mask in events):
                    listed_ns = self._read_listing(host, stdout, pending) or listed_ns
                for fd, _mask in events:
                    if fd != stdout:
                        host.handle(fd)
                self._probe(host)
        finally:
            host.epoll.unregister(stdout)
        for port, described in zip(host.ports, self.described, strict=True):
            complaint = self.validate(described, port.first_reply)
            if complaint:
                raise RuntimeError(f"{port.name}: {complaint}")
        answered_ns = max(port.answered_ns for port in host.ports)
        rss = rss_bytes(psutil.Process(self._running().pid))
        return Startup(
            listed_s=(listed_ns - spawned_ns) / 1e9,
            answering_s=(answered_ns - spawned_ns) / 1e9,
            rss_mb=rss / 2**20,
            rss_per_unit_kb=rss / 1024 / self.units,
        )

    def _read_listing(self, host: Host, stdout: int, pending: bytearray) -> int:
        """Read JSON lines, open their ports; perf_counter_ns when the last one came, else 0."""
        data = os.read(stdout, 65536)
        if not data:
            raise RuntimeError(self._failure("exited before listing every unit"))
        pending += data
        while (end := pending.find(b"\n")) >= 0:
            described = json.loads(pending[:end])
            del pending[: end + 1]
            self.described.append(described)
            port = Port(
                open_host_port(described["ports"]["uart"]),
                reply_prefix=self.reply_prefix(described),
                name=f"unit {described['unit']}",
            )
            host.add_port(port)
        if len(self.described) > self.units:
            raise RuntimeError(
                self._failure(f"listed {len(self.described)} units, not {self.units}")
            )
        return time.perf_counter_ns() if len(self.described) == self.units else 0

    @staticmethod
    def _probe(host: Host) -> None:
        now = time.perf_counter_ns()
        for port in host.ports:
            if not port.replies and now - port.probed_ns >= PROBE_INTERVAL_S * 1e9:
                port.probed_ns = now
                port.send()

    def _failure(self, what: str) -> str:
        tail = self.stderr_path.read_text(errors="replace").splitlines()[-5:]
        return f"{self.name}: {what}; its stderr ends with {tail}"

    def _running(self) -> subprocess.Popen[bytes]:
        if self.process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.process

    def _stdout(self) -> IO[bytes]:
        stdout = self._running().stdout
        if stdout is None:
            raise RuntimeError(f"{self.name} has no stdout pipe")
        return stdout

    def cpu_seconds(self) -> float:
        """User and system CPU time the process has used so far."""
        return cpu_seconds(psutil.Process(self._running().pid))

    def stop(self) -> None:
        """SIGINT, then insist on exit status 0 (a kill only if it hangs)."""
        if self.process is None:
            return
        stdout = self._stdout()
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            status = process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise RuntimeError(f"{self.name} ignored SIGINT for {STOP_TIMEOUT_S} s") from None
        finally:
            stdout.close()
        if status != 0:
            raise RuntimeError(self._failure(f"exited with status {status} after SIGINT"))


def vdtu_server(units: int, workdir: Path) -> ServerProcess:
    """``vdtu up`` with N units, pacing off, UART only, flash in memory."""

    def reply_prefix(described: Mapping[str, Any]) -> bytes:
        return f"$XGC_ACK#GET_IMEI#{described['imei']}#".encode()

    def validate(described: Mapping[str, Any], reply: bytes) -> str:
        parsed = parse_frame(reply.rstrip(b"\n"))
        imei = described["imei"]
        if isinstance(parsed, FrameReceived) and parsed.code_ok and parsed.frame.content == imei:
            return ""
        return f"GET_IMEI answered {reply!r}, expected the IMEI {described['imei']}"

    return ServerProcess(
        "vdtu",
        vdtu_up_argv(units, workdir / "pty"),
        units=units,
        reply_prefix=reply_prefix,
        validate=validate,
        stderr_path=workdir / "vdtu.stderr",
    )


def echo_server(units: int, workdir: Path) -> ServerProcess:
    """This module's echo child with N PTYs."""

    def validate(_described: Mapping[str, Any], reply: bytes) -> str:
        return "" if reply == REQUEST else f"echo answered {reply!r}, not {REQUEST!r}"

    return ServerProcess(
        "echo child",
        [sys.executable, "-m", "bench.pty_roundtrip", "--echo-child", str(units)],
        units=units,
        reply_prefix=lambda _described: REQUEST,
        validate=validate,
        stderr_path=workdir / "echo.stderr",
    )


def open_pty_pair() -> tuple[int, int]:
    """``os.openpty`` with the slave raw at 115200 and the master non-blocking."""
    master, slave = os.openpty()
    set_host_line(slave)
    os.set_blocking(master, False)
    return master, slave


def run_in_process_echo(units: int, samples: int) -> Latency:
    """The same round trips with the echo on this process's epoll (no process hop)."""
    pairs: list[tuple[int, int]] = []
    host = Host()
    try:
        for unit in range(units):
            master, slave = open_pty_pair()
            pairs.append((master, slave))
            host.add_echo_master(master)
            host.add_port(
                Port(open_host_port(os.ttyname(slave)), reply_prefix=REQUEST, name=f"pty {unit}")
            )
        [round_trip] = measure_round_trips([host], samples)
    finally:
        host.close()
        for master, slave in pairs:
            os.close(master)
            os.close(slave)
    return round_trip


# -- the echo child -------------------------------------------------------------------------------


async def serve_echo(units: int) -> int:
    """N PTYs whose masters echo every line, listed as JSON; until SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    pairs: list[tuple[int, int]] = []
    try:
        for _ in range(units):
            master, slave = open_pty_pair()
            pairs.append((master, slave))
            loop.add_reader(master, echo_lines, master, bytearray())
        for unit, (_master, slave) in enumerate(pairs):
            print(json.dumps({"unit": unit, "ports": {"uart": os.ttyname(slave)}}))
        sys.stdout.flush()
        await stop.wait()
    finally:
        for master, slave in pairs:
            loop.remove_reader(master)
            os.close(master)
            os.close(slave)
    return 0


# -- the run --------------------------------------------------------------------------------------


def compare(units: int, *, samples: int, bursts: int, settle_s: float) -> UnitsResult:
    """In-process echo, then the echo child and vdtu side by side, at one unit count."""
    progress(f"{units} units: in-process echo")
    in_process = run_in_process_echo(units, samples)
    with tempfile.TemporaryDirectory(prefix="vdtu-bench-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        servers = [echo_server(units, workdir), vdtu_server(units, workdir)]
        hosts = [Host() for _ in servers]
        for server, host in zip(servers, hosts, strict=True):
            stack.callback(server.stop)
            stack.callback(host.close)
        startups = []
        for server, host in zip(servers, hosts, strict=True):
            progress(f"{units} units: starting {server.name}")
            startups.append(server.start(host))
        progress(f"{units} units: settling for {settle_s:g} s, then measuring")
        time.sleep(settle_s)
        idle = idle_cpu_percent(servers, IDLE_WINDOW_S)
        for host in hosts:
            host.drain(0.1)
        seen = [host.unsolicited() for host in hosts]
        cpu_before = [server.cpu_seconds() for server in servers]
        round_trips = measure_round_trips(hosts, samples)
        cpu_per_request = [
            (server.cpu_seconds() - used) / (WARMUP + samples) * 1e6
            for server, used in zip(servers, cpu_before, strict=True)
        ]
        burst_times = measure_bursts(hosts, bursts)
        unsolicited = [host.unsolicited() - n for host, n in zip(hosts, seen, strict=True)]
    echo, vdtu = (
        ServerRun(
            startup=startups[i],
            idle_cpu_percent=idle[i],
            round_trip=round_trips[i],
            burst=burst_times[i],
            unsolicited_lines=unsolicited[i],
            cpu_per_request_us=cpu_per_request[i],
        )
        for i in range(len(servers))
    )
    return UnitsResult(
        units=units,
        vdtu=vdtu,
        echo=echo,
        in_process_echo=in_process,
        ratio_p50=vdtu.round_trip.p50_us / echo.round_trip.p50_us,
        ratio_p99=vdtu.round_trip.p99_us / echo.round_trip.p99_us,
        burst_ratio_p50=vdtu.burst.p50_us / echo.burst.p50_us,
    )


def idle_cpu_percent(servers: Sequence[ServerProcess], window_s: float) -> list[float]:
    """Each server's CPU (percent of one core) over ``window_s`` in which nobody talks to it."""
    before = [server.cpu_seconds() for server in servers]
    time.sleep(window_s)
    return [
        100 * (server.cpu_seconds() - used) / window_s
        for server, used in zip(servers, before, strict=True)
    ]


def marginal_rss(results: Sequence[UnitsResult]) -> dict[str, dict[int, float]]:
    """KB of RSS each unit adds, per server: against the run with the fewest units."""
    smallest = min(results, key=lambda r: r.units)
    marginal: dict[str, dict[int, float]] = {"vdtu": {}, "echo": {}}
    for r in results:
        if r.units == smallest.units:
            continue
        for name, run, base in (("vdtu", r.vdtu, smallest.vdtu), ("echo", r.echo, smallest.echo)):
            grown_mb = run.startup.rss_mb - base.startup.rss_mb
            marginal[name][r.units] = grown_mb * 1024 / (r.units - smallest.units)
    return marginal


def print_table(results: Sequence[UnitsResult], settings: Mapping[str, Any]) -> None:
    """The human-readable report (Markdown tables)."""
    print(
        f"{machine_line()}; {settings['samples']} round trips and {settings['bursts']} bursts "
        f"per server, settle {settings['settle_s']} s\n"
    )
    print("GET_IMEI round trip, one request in flight, round-robin over the units (µs):\n")
    head = ["units", "vdtu p50", "vdtu p99", "echo p50", "echo p99", "ratio p50", "ratio p99"]
    head += ["in-process echo p50", "in-process echo p99"]
    rows = [
        [
            str(r.units),
            *(f"{x:.1f}" for x in (r.vdtu.round_trip.p50_us, r.vdtu.round_trip.p99_us)),
            *(f"{x:.1f}" for x in (r.echo.round_trip.p50_us, r.echo.round_trip.p99_us)),
            f"{r.ratio_p50:.2f}",
            f"{r.ratio_p99:.2f}",
            *(f"{x:.1f}" for x in (r.in_process_echo.p50_us, r.in_process_echo.p99_us)),
        ]
        for r in results
    ]
    print(markdown_table(head, rows))
    print("\nBurst: one GET_IMEI to every unit at once, until all have answered (ms):\n")
    head = ["units", "vdtu p50", "vdtu max", "echo p50", "echo max", "ratio p50"]
    rows = [
        [
            str(r.units),
            *(f"{x / 1000:.2f}" for x in (r.vdtu.burst.p50_us, r.vdtu.burst.max_us)),
            *(f"{x / 1000:.2f}" for x in (r.echo.burst.p50_us, r.echo.burst.max_us)),
            f"{r.burst_ratio_p50:.2f}",
        ]
        for r in results
    ]
    print(markdown_table(head, rows))
    print(
        "\nStart-up from spawn: listed = last JSON line read, answering = every unit has "
        "answered a GET_IMEI;\nRSS after start-up, per unit, and added per unit over the "
        "smallest run; idle CPU after settling,\n% of one core; the server's CPU time per "
        "round trip; unsolicited = other lines read while measuring:\n"
    )
    marginal = marginal_rss(results)
    smallest = min(r.units for r in results)
    head = ["units", "server", "listed s", "answering s", "RSS MB", "RSS KB/unit"]
    head += [f"KB/unit over {smallest}", "idle CPU %", "CPU µs/request", "unsolicited"]
    rows = [
        [
            str(r.units),
            name,
            f"{run.startup.listed_s:.3f}",
            f"{run.startup.answering_s:.3f}",
            f"{run.startup.rss_mb:.1f}",
            f"{run.startup.rss_per_unit_kb:.1f}",
            f"{marginal[name][r.units]:.1f}" if r.units in marginal[name] else "-",
            f"{run.idle_cpu_percent:.1f}",
            f"{run.cpu_per_request_us:.0f}",
            str(run.unsolicited_lines),
        ]
        for r in results
        for name, run in (("vdtu", r.vdtu), ("echo", r.echo))
    ]
    print(markdown_table(head, rows))
    for r in results:
        if r.units == 1:
            met = "met" if r.ratio_p99 <= ACCEPTABLE_P99_RATIO else "NOT met"
            print(
                f"\nacceptance: 1-unit p99 ratio {r.ratio_p99:.2f} "
                f"(limit {ACCEPTABLE_P99_RATIO:g}x): {met}"
            )


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.pty_roundtrip",
        description="GET_IMEI round trip over vdtu's PTYs against raw PTY echo.",
    )
    parser.add_argument(
        "--units", default="1,100,1000", help="unit counts, comma-separated (default 1,100,1000)"
    )
    parser.add_argument(
        "--samples", type=int, default=2000, help="timed round trips per server (default 2000)"
    )
    parser.add_argument(
        "--bursts", type=int, default=20, help="timed bursts per server (default 20)"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=12.0,
        help="seconds to wait after start-up (modem registration) before measuring (default 12)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--echo-child", type=int, metavar="N", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with ``--echo-child``, be the baseline server)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.echo_child is not None:
        return asyncio.run(serve_echo(args.echo_child))
    try:
        counts = parse_counts(
            args.units,
            option="--units",
            top=MAX_UNITS,
            why=" (both servers run side by side and the machine has 4095 PTYs)",
        )
    except ValueError as exc:
        parser.error(str(exc))
    if args.samples < 1 or args.bursts < 1 or args.settle < 0:
        parser.error(
            f"--samples and --bursts must be >= 1 and --settle >= 0, "
            f"not {args.samples}, {args.bursts} and {args.settle}"
        )
    settings = {"samples": args.samples, "bursts": args.bursts, "settle_s": args.settle}
    results = [
        compare(n, samples=args.samples, bursts=args.bursts, settle_s=args.settle) for n in counts
    ]
    if args.json:
        report = {
            "machine": machine(),
            "settings": settings,
            "results": [asdict(r) for r in results],
            "marginal_rss_kb_per_unit": marginal_rss(results),
        }
        print(json.dumps(report, indent=2))
    else:
        print_table(results, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
