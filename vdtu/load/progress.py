"""The live progress line of a load run: one short line for a terminal, every few seconds.

``Progress`` keeps the previous ``FleetReport`` and the monotonic time it was taken,
and turns each new one into ``Rates`` (published, delivered, connected and errors per
second since then; all zero for the first snapshot). ``progress_line`` formats a
report, with the rates when given, as ``conn .. | pub .. dlv .. | pend .. lost ..
dup .. reord .. | lat p50 .. p99 .. ms | rtt p50 .. ms | reconn .. err ..``.
"""

from __future__ import annotations

from dataclasses import dataclass

from vdtu.load.report import FleetReport


@dataclass(frozen=True, slots=True, kw_only=True)
class Rates:
    """How fast the figures moved between two reports, per second."""

    published_per_s: float = 0.0
    delivered_per_s: float = 0.0
    connected_per_s: float = 0.0
    """Change in connected units (negative while units drop)."""
    errors_per_s: float = 0.0
    """New connect failures and error counts."""


class Progress:
    """Rates between successive snapshots: give it each report with the time it was taken."""

    def __init__(self) -> None:
        self._last: tuple[float, FleetReport] | None = None

    def update(self, report: FleetReport, now: float) -> Rates:
        """Take a snapshot.

        Args:
            report: the figures now.
            now: monotonic seconds.

        Returns:
            Rates since the previous snapshot; all zero for the first one, or when
            no time has passed.
        """
        last, self._last = self._last, (now, report)
        if last is None or now <= last[0]:
            return Rates()
        elapsed = now - last[0]
        before = last[1]
        return Rates(
            published_per_s=(report.published - before.published) / elapsed,
            delivered_per_s=(report.delivered - before.delivered) / elapsed,
            connected_per_s=(report.connected - before.connected) / elapsed,
            errors_per_s=(_failures(report) - _failures(before)) / elapsed,
        )


def progress_line(report: FleetReport, rates: Rates | None = None) -> str:
    """One short line for a terminal: connections, traffic, delivery, latency, errors.

    Args:
        report: the figures now.
        rates: from ``Progress.update``; without them no per-second figures are shown.
    """
    connected = f"conn {report.connected}/{report.units}"
    published = f"pub {report.published}"
    delivered = f"dlv {report.delivered}"
    if rates is not None:
        connected += f" {rates.connected_per_s:+.0f}/s"
        published += f" {rates.published_per_s:.0f}/s"
        delivered += f" {rates.delivered_per_s:.0f}/s"
    latency, rtt = report.latency_ms, report.command_rtt_ms
    parts = [
        f"{connected} fail {report.connect_failures}",
        f"{published} {delivered}",
        f"pend {report.pending} lost {report.lost} dup {report.duplicated} "
        f"reord {report.reordered}",
        f"lat p50 {_ms(latency.p50)} p99 {_ms(latency.p99)} ms",
        f"rtt p50 {_ms(rtt.p50)} ms",
        f"reconn {report.reconnects} err {report.error_count}",
    ]
    return " | ".join(parts)


def _failures(report: FleetReport) -> int:
    return report.connect_failures + report.error_count


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"
