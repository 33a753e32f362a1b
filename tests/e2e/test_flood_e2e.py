"""End to end: a host that floods every port cannot bloat or stall ``vdtu up``.

Each port gets what a misbehaving host sends (``running.FLOODS``). The PTY endpoint
reads no faster than the wire (the host's writes block, as on a real UART), so the
process's memory stays flat and the unit still answers. ``bench/flood.py`` runs the
same for 60 s against an idle baseline.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.running import Host, flood, link, rss_kb, vdtu_up, wait_until_listening

pytestmark = pytest.mark.pty

FLOOD_S = 6.0
RSS_GROWTH_LIMIT_KB = 40_000
"""The documented bound (docs/limits.md): a flood on every port adds under 40 MB."""


def test_a_flood_on_every_port_leaves_memory_flat_and_the_unit_answering(tmp_path: Path) -> None:
    args = ("--pty-dir", str(tmp_path / "pty"), "--no-state", "--seed", "3", "--unprovisioned")
    with vdtu_up(*args) as fleet:
        host = Host(str(link(fleet, "uart")))
        wait_until_listening(host)
        host.close()
        before = rss_kb(fleet.process.pid)
        written, peak = flood(fleet, FLOOD_S)
        assert fleet.process.poll() is None
        host = Host(str(link(fleet, "uart")))
        reply = host.ask("GET_IMEI", timeout_s=10)
        assert reply.code_ok
        assert reply.frame.content == fleet.units[0]["imei"]
        # The wire took its share at its speed; the kernel's buffers made the writer wait.
        assert written["uart"] > 11_520 * FLOOD_S * 0.5
        assert written["rs485"] < 960 * FLOOD_S + 64_000
        assert peak - before < RSS_GROWTH_LIMIT_KB, (before, peak, written)
        host.close()
        status, err = fleet.stop()
        assert status == 0, err
