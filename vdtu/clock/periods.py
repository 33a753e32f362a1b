"""Counting periods on read: what a model that does not tick uses instead of a timer.

A model that changes every ``period_s`` (a counter, a random walk, a measurement) does
not need a SimPy timer per period: when it is read at ``now`` it computes how many
periods have ended since its start and takes them (or computes their result) then.
``periods_before`` is that count, with one convention for every model: a period that
ends exactly at ``now`` is not counted yet, as a timer due at ``now`` would not yet have
fired for someone who stopped the run at ``now`` (``run(until=now)`` stops before the
events due then).
"""

from __future__ import annotations

import math


def periods_before(start_s: float, now_s: float, period_s: float) -> int:
    """How many of the instants ``start_s + k * period_s`` (k = 1, 2, ...) lie strictly
    before ``now_s`` (0 until the first).

    The instants are compared as computed (``start_s + k * period_s``), not through
    ``now_s - start_s``, so a read at an instant's exact time does not count it.

    Args:
        start_s: when the model started counting (sim time).
        now_s: the time of the read (sim time).
        period_s: the period, > 0.
    """
    elapsed_s = now_s - start_s
    if elapsed_s <= period_s:
        return 0 if start_s + period_s >= now_s else 1
    count = max(0, math.ceil(elapsed_s / period_s) - 1)
    while start_s + (count + 1) * period_s < now_s:
        count += 1
    while count > 0 and start_s + count * period_s >= now_s:
        count -= 1
    return count
