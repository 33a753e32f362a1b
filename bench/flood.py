"""A 60 s flood on every port of a unit, against the same unit left idle, in the same run.

Run ``python -m bench.flood [--seconds 60] [--json]``.

Two ``vdtu up --no-state --unprovisioned`` processes run one after the other: the
baseline is left idle for the whole time, the other gets what a misbehaving host
writes on each port (``tests.e2e.running.FLOODS``: GET_IMEI frames as fast as the
PTY takes them on uart, a line that never ends on rs232, noise on the RS-485 bus).
For each the RSS is sampled every loop turn (about 2 ms); printed are the RSS at the
start, the peak and the end, the growth ratio over the baseline, the bytes each port
took (against what its wire carries in that time), and the time until the flooded
unit answers GET_IMEI once the flood stops. The ratio is the flooded peak RSS over
the idle one. The acceptance bound is the growth under flood: under 40 MB
(docs/limits.md).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import markdown_table, progress
from tests.e2e.running import Host, flood, link, rss_kb, vdtu_up, wait_until_listening

WIRE_BYTES_PER_S = {"uart": 11_520, "rs232": 11_520, "rs485": 960}
"""What each port's wire carries at its default baud rate (10 bits a byte)."""


def run(seconds: float, *, flooded: bool) -> dict[str, Any]:
    """One ``vdtu up``, flooded or idle for ``seconds``; its figures."""
    with tempfile.TemporaryDirectory() as base:
        args = ("--pty-dir", str(Path(base) / "pty"), "--no-state", "--unprovisioned")
        with vdtu_up(*args) as fleet:
            host = Host(str(link(fleet, "uart")))
            wait_until_listening(host)
            host.close()
            pid = fleet.process.pid
            start = rss_kb(pid)
            if flooded:
                written, peak = flood(fleet, seconds)
            else:
                written, peak = {}, start
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    peak = max(peak, rss_kb(pid))
                    time.sleep(0.002)
            end = rss_kb(pid)
            host = Host(str(link(fleet, "uart")))
            asked = time.perf_counter()
            reply = host.ask("GET_IMEI", timeout_s=30)
            answer_s = time.perf_counter() - asked
            host.close()
            status, err = fleet.stop()
            if status != 0 or not reply.code_ok:
                raise SystemExit(f"vdtu up failed (exit {status}): {err}")
    return {
        "rss_start_kb": start,
        "rss_peak_kb": peak,
        "rss_end_kb": end,
        "growth_kb": peak - start,
        "written": written,
        "answer_s": answer_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    progress(f"idle baseline, {options.seconds:g} s")
    idle = run(options.seconds, flooded=False)
    progress(f"flood on every port, {options.seconds:g} s")
    flooded = run(options.seconds, flooded=True)
    ratio = flooded["rss_peak_kb"] / idle["rss_peak_kb"]
    if options.json:
        print(json.dumps({"idle": idle, "flooded": flooded, "growth_ratio": ratio}))
        return
    head = ["run", "RSS start MB", "RSS peak MB", "RSS end MB", "growth MB", "GET_IMEI after ms"]
    rows = [
        [
            name,
            f"{figures['rss_start_kb'] / 1024:.1f}",
            f"{figures['rss_peak_kb'] / 1024:.1f}",
            f"{figures['rss_end_kb'] / 1024:.1f}",
            f"{figures['growth_kb'] / 1024:.2f}",
            f"{figures['answer_s'] * 1000:.0f}",
        ]
        for name, figures in (("idle (baseline)", idle), ("flooded", flooded))
    ]
    print(markdown_table(head, rows))
    print(f"\npeak RSS flooded / idle: {ratio:.2f}x\n")
    head = ["port", "bytes taken", "per second B/s", "wire carries B/s"]
    rows = [
        [port, str(count), f"{count / options.seconds:.0f}", str(WIRE_BYTES_PER_S[port])]
        for port, count in flooded["written"].items()
    ]
    print(markdown_table(head, rows))


if __name__ == "__main__":
    main()
