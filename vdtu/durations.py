"""Durations and rates as people write them: ``90s``, ``4m30s``, ``20/s`` (standard library only).

Shared by the scenarios (``vdtu.scenario.schema``) and the load test's ramp stages
(``vdtu.load.options``), so both read ``5m`` alike. A duration is a number of seconds or
numbers each followed by ``ms``, ``s``, ``m``, ``h`` or ``d`` (added up); a rate is a
number per second or ``N/s``, ``N/m``, ``N/h``. Each parser raises ``ValueError`` with
the allowed forms in its message.
"""

from __future__ import annotations

import re

_DURATION = re.compile(r"\s*(?:\d+(?:\.\d+)?\s*(?:ms|s|m|h|d)\s*)+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*")
MAX_DURATION_S = 30 * 86400.0
"""The longest duration either reads: 30 days."""


def parse_duration(value: object) -> float:
    """``90``, ``"90s"``, ``"5m"``, ``"1.5h"``, ``"250ms"``, ``"2d"``, ``"4m30s"`` as seconds."""
    if isinstance(value, bool):
        raise ValueError(f"a duration is a number of seconds or text like 5m, not {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and _DURATION.fullmatch(value):
        seconds = sum(float(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(value))
    else:
        raise ValueError(
            f"a duration is a number of seconds or text like 250ms, 90s, 5m, 4m30s, 2h, 1d; "
            f"not {value!r}"
        )
    if not 0 <= seconds <= MAX_DURATION_S:
        raise ValueError(f"a duration must be 0..30d, not {value!r}")
    return seconds


def parse_rate(value: object) -> float:
    """``"50/s"``, ``"600/m"``, ``"10/h"`` (or a number per second) as events per second."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        rate = float(value)
    elif isinstance(value, str) and (match := _RATE.fullmatch(value)):
        rate = float(match[1]) / _UNITS[match[2]]
    else:
        raise ValueError(f"a rate is text like 50/s, 600/m or 10/h, not {value!r}")
    if not rate > 0:
        raise ValueError(f"a rate must be > 0, not {value!r}")
    return rate
