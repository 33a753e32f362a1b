"""The clock interface shared by the virtual and the real-time driver.

Sim time is in seconds from power-on of the fleet. ``epoch_s`` maps sim time to
Unix time (what a cellular network would tell a modem), so models never read the
wall clock themselves.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar

from vdtu.clock.domain import DomainEnvironment, FaultDomain

T = TypeVar("T")


class Clock(ABC):
    """A SimPy environment plus the one door through which outside input enters it."""

    def __init__(self, env: DomainEnvironment, *, epoch_s: float) -> None:
        self.env = env
        """The SimPy environment every model of this process schedules on."""
        self.epoch_s = epoch_s
        """Unix time (seconds) at sim time 0."""
        self.injected = 0
        """How many outside inputs have entered sim time."""

    @property
    def now(self) -> float:
        """Current sim time in seconds."""
        return float(self.env.now)

    def unix_time(self) -> float:
        """Unix time now, as the simulated network sees it."""
        return self.epoch_s + self.now

    def inject(
        self, callback: Callable[..., Any], *args: Any, domain: FaultDomain | None = None
    ) -> None:
        """Hand an outside input to the simulation as an event at the current time.

        The callback runs inside sim time (from ``env.step``), never from the
        caller's context directly, so the order of outside inputs is the order
        of events in the run. ``domain`` is the unit the input is for: a fault
        in what it sets off resets that unit only (see ``domain.py``).
        """
        self._catch_up()
        self.env.call_soon(domain, callback, *args)
        self.injected += 1
        self._after_inject()

    def call(self, callback: Callable[..., T], *args: Any, domain: FaultDomain | None = None) -> T:
        """Run an outside command now, in sim time caught up to now, and return its result.

        For a caller that must know the outcome (the control API answering a request):
        the callback runs inside ``domain`` and its exception propagates to the caller,
        who decides whether it is the user's error or the unit's fault. What it
        schedules is processed as injected input is.
        """
        self._catch_up()
        self.injected += 1
        try:
            with self.env.entered(domain):
                return callback(*args)
        finally:
            self._after_inject()

    @abstractmethod
    def _catch_up(self) -> None:
        """Bring sim time up to 'now' as this driver defines it."""

    @abstractmethod
    def _after_inject(self) -> None:
        """Make sure the injected event gets processed."""
