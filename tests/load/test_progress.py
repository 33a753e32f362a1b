"""The progress line: rates between snapshots, and what the line shows."""

from __future__ import annotations

from tests.load.test_report import report
from vdtu.load.progress import Progress, Rates, progress_line


def test_progress_gives_zero_rates_first_then_the_change_per_second() -> None:
    progress = Progress()
    assert progress.update(report(published=100, delivered=90), now=10.0) == Rates()
    rates = progress.update(
        report(published=300, delivered=290, connected=10, connect_failures=3), now=12.0
    )
    assert rates == Rates(
        published_per_s=100.0, delivered_per_s=100.0, connected_per_s=0.5, errors_per_s=1.0
    )
    assert progress.update(report(), now=12.0) == Rates()


def test_progress_line_shows_connections_rates_delivery_and_latency() -> None:
    subject = report()
    subject.latency.add(3.0)
    line = progress_line(subject, Rates(published_per_s=12.4, delivered_per_s=11.6))
    assert "\n" not in line
    assert line.startswith("conn 9/10 +0/s fail 1 | pub 100 12/s dlv 98 12/s")
    assert "pend 2 lost 0 dup 1 reord 3" in line
    assert "lat p50 3.0 p99 3.0 ms" in line
    assert "rtt p50 - ms" in line
    assert line.endswith("reconn 4 err 2")


def test_progress_line_without_rates_shows_no_per_second_figures() -> None:
    line = progress_line(report())
    assert "/s" not in line
    assert line.startswith("conn 9/10 fail 1 | pub 100 dlv 98 |")
