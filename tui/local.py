"""The fleet ``vdtu tui`` starts when it is not attaching: a ``vdtu up`` child process.

A child rather than a fleet in the dashboard's own process, so that the dashboard is the
same pure API client either way (one code path, tested once), the units' sim loop and the
screen's rendering do not share one event loop (a busy frame never delays a unit's wire
timing, a busy fleet never delays a keystroke), and a crash in either leaves the other
able to say so. The child gets a fresh temporary ``--pty-dir`` (its PTY links are there,
``dtu<N>/<port>``, for the user's host code) and ``--no-state``; its log goes to a file in
that directory. ``start`` waits for the child's ``up.json`` to name its control API;
``stop`` sends SIGINT (``vdtu up`` removes its links and up.json) and waits.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from tui.client import ApiError
from vdtu.api_address import DISCOVERY_FILE

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


class LocalFleet:
    """A ``vdtu up`` this dashboard started, and owns."""

    def __init__(self, *, units: int, profile: str, extra: tuple[str, ...] = ()) -> None:
        self.units = units
        self.profile = profile
        self.extra = extra
        self.pty_dir = Path(tempfile.mkdtemp(prefix="vdtu-tui-"))
        self.log_path = self.pty_dir / "vdtu-up.log"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The child's command line."""
        return [
            sys.executable, "-m", "vdtu.cli", "up", "--units", str(self.units),
            "--profile", self.profile, "--pty-dir", str(self.pty_dir), "--no-state", *self.extra,
        ]  # fmt: skip

    def spawn(self) -> None:
        """Start the child (``ready`` waits for its API)."""
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log
            )

    async def ready(self) -> tuple[str, str]:
        """The child's API URL and token, once its up.json names them.

        Raises:
            ApiError: the child ended first (with the end of its log) or took too long.
        """
        assert self.process is not None, "spawn() first"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        discovery = self.pty_dir / DISCOVERY_FILE
        while loop.time() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-5:]
                raise ApiError(
                    f"vdtu up exited with {self.process.returncode}: " + " / ".join(tail)
                )
            control = _control(discovery)
            if control is not None:
                return control
            await asyncio.sleep(0.1)
        self.stop()
        raise ApiError(f"vdtu up did not serve its control API within {START_TIMEOUT_S:g} s")

    def stop(self) -> None:
        """Stop the child (SIGINT, then SIGKILL after a while) and remove its directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.pty_dir, ignore_errors=True)


def _control(discovery: Path) -> tuple[str, str] | None:
    try:
        document = json.loads(discovery.read_text())
    except (OSError, ValueError):
        return None
    control = document.get("control") if isinstance(document, dict) else None
    if isinstance(control, dict) and "url" in control and "token" in control:
        return str(control["url"]), str(control["token"])
    return None
