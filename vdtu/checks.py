"""Parameter checks shared by the hardware models' fault methods (standard library only).

Every fault a model can be put in (``vdtu.modem.faults``, the battery, GPIO, the Modbus
slaves, the serial lines) validates its parameters with these, so a bad value is refused
the same way everywhere: a ``ValueError`` whose message names the parameter, the bad value
and what is allowed (``ms must be a number in 1..60000, not 0``). Booleans are refused
wherever a number is expected (``True`` is an ``int`` to Python, never a count to a user).

This module sits below every model layer (it imports nothing of vdtu), so ``vdtu.io``,
``vdtu.uart`` and ``vdtu.modem``, which may not import each other, share one copy.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import TypeVar

T = TypeVar("T")


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


def check_duration(name: str, value: float) -> float:
    """``value`` as a float if it is a finite number of seconds > 0."""
    if not _is_number(value) or not value > 0:
        raise ValueError(f"{name} must be a number of seconds > 0, not {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds > 0, not {value!r}")
    return float(value)


def check_number(name: str, value: float, low: float, high: float) -> float:
    """``value`` as a float if it is a finite number in ``low..high`` (both included)."""
    if not _is_number(value) or not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} must be a number in {low:g}..{high:g}, not {value!r}")
    return float(value)


def check_positive(name: str, value: float, high: float) -> float:
    """``value`` as a float if it is a finite number > 0 and <= ``high``."""
    if not _is_number(value) or not math.isfinite(value) or not 0 < value <= high:
        raise ValueError(f"{name} must be a number > 0 and <= {high:g}, not {value!r}")
    return float(value)


def check_probability(name: str, value: float) -> float:
    """``value`` as a float if it is a probability, 0.0..1.0."""
    return check_number(name, value, 0.0, 1.0)


def check_int(name: str, value: int, low: int, high: int) -> int:
    """``value`` if it is an integer in ``low..high`` (both included)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}, not {value!r}")
    return value


def check_choice(name: str, value: T, allowed: Collection[T]) -> T:
    """``value`` if it is one of ``allowed`` (a bool never stands for 0 or 1)."""
    if isinstance(value, bool) or value not in allowed:
        shown = ", ".join(str(choice) for choice in allowed)
        raise ValueError(f"{name} must be one of {shown}, not {value!r}")
    return value
