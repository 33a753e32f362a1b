"""Pure protocol modules load no I/O, scheduler or UI library (checked in a fresh process)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest


def _pure_modules() -> list[str]:
    """The modules import-linter's pure-code contract lists (pyproject.toml): one list."""
    with (Path(__file__).parents[2] / "pyproject.toml").open("rb") as handle:
        contracts = tomllib.load(handle)["tool"]["importlinter"]["contracts"]
    (pure,) = [c for c in contracts if c["name"].startswith("Pure protocol code")]
    return list(pure["source_modules"])


PURE = _pure_modules()
FORBIDDEN = ["simpy", "serial", "pexpect", "paho", "amqtt", "textual", "asyncio"]


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_no_io_library(module: str) -> None:
    """Importing the module pulls in none of the forbidden packages."""
    code = f"import sys, {module}; print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_headless_vdtu_never_imports_textual() -> None:
    """Building and running a unit does not load the UI toolkit."""
    code = (
        "import sys\n"
        "from vdtu.clock import VirtualClock\n"
        "from vdtu.identity import Identity\n"
        "from vdtu.unit import Unit, UnitConfig\n"
        "c = VirtualClock()\n"
        "u = Unit(c.env, UnitConfig(identity=Identity.for_unit(0, 0)), epoch_s=c.epoch_s)\n"
        "u.power_on(); c.run_for(20)\n"
        "import vdtu.cli\n"
        "print('textual' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
