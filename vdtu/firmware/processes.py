"""The SimPy processes a firmware runs, ended together at power-off.

``spawn`` runs a generator as a process that ends quietly when interrupted;
``interrupt_all`` interrupts every one still alive, except the process calling it
(a command that asked for a reboot is the running one: it ends by itself).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy


class ProcessGroup:
    """A firmware's processes.

    Args:
        env: the SimPy environment.
    """

    __slots__ = ("_ended", "_processes", "env")

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self._processes: list[simpy.Process] = []
        """The live processes (a list: a firmware runs a few; an empty set costs 216 bytes)."""
        self._ended = self._forget
        """Each process's last callback, bound once for the group rather than per process."""

    def __len__(self) -> int:
        return len(self._processes)

    def spawn(self, generator: Generator[simpy.Event, Any, None]) -> simpy.Process:
        """Run ``generator`` as a process that ends quietly at ``interrupt_all``."""
        process = self.env.process(_guarded(generator))
        self._processes.append(process)
        process.callbacks.append(self._ended)  # called with the process itself
        return process

    def _forget(self, process: simpy.Event) -> None:
        if process in self._processes:
            self._processes.remove(process)

    def interrupt_all(self, cause: str = "power-off") -> None:
        """End every process (but the running one) and forget them."""
        for process in list(self._processes):
            if process.is_alive and process is not self.env.active_process:
                process.interrupt(cause)
        self._processes.clear()


def _guarded(generator: Generator[simpy.Event, Any, None]) -> Generator[simpy.Event, Any, None]:
    try:
        yield from generator
    except simpy.Interrupt:
        return
