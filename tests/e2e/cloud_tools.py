"""Helpers for cloud end-to-end tests: the cloud console as a subprocess, watched line by line."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from typing import Any


def cloud(*args: str, timeout_s: float = 20) -> subprocess.CompletedProcess[str]:
    """Run ``vdtu cloud ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "vdtu.cli", "cloud", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


class Watcher:
    """``vdtu cloud watch --json`` running in the background; records read as they come."""

    def __init__(self, *args: str, timeout_s: float = 60) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vdtu.cli",
                "cloud",
                *args,
                "watch",
                "--json",
                "--timeout",
                str(timeout_s),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.records: list[dict[str, Any]] = []
        self._pending = b""
        self._selector = selectors.DefaultSelector()
        assert self.process.stdout is not None
        self._fd = self.process.stdout.fileno()
        self._selector.register(self._fd, selectors.EVENT_READ)

    def wait_for(
        self, channel: str, *, count: int = 1, timeout_s: float = 20
    ) -> list[dict[str, Any]]:
        """Read until ``count`` records of ``channel`` have arrived (in total); returns them."""
        deadline = time.monotonic() + timeout_s
        assert self.process.stdout is not None
        while True:
            matching = [r for r in self.records if r["channel"] == channel]
            if len(matching) >= count:
                return matching
            left = deadline - time.monotonic()
            if left <= 0 or self.process.poll() is not None:
                raise AssertionError(
                    f"{len(matching)} of {count} {channel} records within {timeout_s} s; "
                    f"got {self.records}; stderr: {self._stderr()}"
                )
            if self._selector.select(timeout=min(left, 0.5)):
                self._pending += os.read(self._fd, 65536)
                *lines, self._pending = self._pending.split(b"\n")
                self.records.extend(json.loads(line) for line in lines if line.strip())

    def _stderr(self) -> str:
        if self.process.poll() is None:
            return "(running)"
        assert self.process.stderr is not None
        return self.process.stderr.read().decode()

    def stop(self) -> None:
        """Stop the watcher."""
        if self.process.poll() is None:
            self.process.terminate()
        self.process.communicate(timeout=10)
