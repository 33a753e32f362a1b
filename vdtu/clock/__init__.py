"""The one scheduler of vdtu: a SimPy environment, the drivers that advance it, and the
models' random sources.

``VirtualClock`` runs the environment as fast as the CPU allows (tests, scenarios).
``RealtimeClock`` advances the same environment to the wall clock from an asyncio
loop. Outside input (bytes from a PTY, a socket, a control command) enters sim time only
through ``Clock.inject``; models are never called from outside directly. What makes a
run repeatable besides the schedule is each model's own seeded ``SplitMix64``
(``rng.py``). Each unit is a failure domain (``domain.py``): an exception in its code
resets the unit, not the run.
"""

from __future__ import annotations

from vdtu.clock._base import Clock
from vdtu.clock.domain import DomainEnvironment, FaultDomain
from vdtu.clock.realtime import RealtimeClock
from vdtu.clock.rng import RandomSource, SplitMix64
from vdtu.clock.virtual import VirtualClock

__all__ = [
    "Clock",
    "DomainEnvironment",
    "FaultDomain",
    "RandomSource",
    "RealtimeClock",
    "SplitMix64",
    "VirtualClock",
]
