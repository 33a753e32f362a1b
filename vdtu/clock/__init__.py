"""The one scheduler of vdtu: a SimPy environment, and the drivers that advance it.

``VirtualClock`` runs the environment as fast as the CPU allows (tests, scenarios).
``RealtimeClock`` advances the same environment to the wall clock from an asyncio
loop. Outside input (bytes from a PTY, a socket, a control command) enters sim
time only through ``Clock.inject``; models are never called from outside directly.
"""

from __future__ import annotations

from vdtu.clock._base import Clock
from vdtu.clock.realtime import RealtimeClock
from vdtu.clock.virtual import VirtualClock

__all__ = ["Clock", "RealtimeClock", "VirtualClock"]
