"""Shared fixtures: the XGC bench, the CI rule that no test may skip for want of a tool, and
each test's own runtime and state directories (so that no test reaches the user's, and tests
running side by side under pytest-xdist never share a default PTY or state directory)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from tests.xgc_harness import XgcBench


@pytest.fixture(autouse=True)
def _own_default_dirs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``XDG_RUNTIME_DIR`` and ``XDG_STATE_HOME`` of a fresh short directory, for the test and
    the processes it starts: vdtu's default PTY, control and state directories live there."""
    with tempfile.TemporaryDirectory(prefix="vdtu-t", ignore_cleanup_errors=True) as root:
        monkeypatch.setenv("XDG_RUNTIME_DIR", root)
        monkeypatch.setenv("XDG_STATE_HOME", os.path.join(root, "state"))
        yield


@pytest.fixture
def bench() -> XgcBench:
    """A fresh XGC unit with the example identity of docs/spec/xgc.md#5.1, not yet powered on."""
    return XgcBench()


def require_tool(name: str) -> str:
    """The path of an external tool; skip without it, but fail in CI (VDTU_REQUIRE_ALL=1)."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if path is None:
        message = f"{name} is not installed (apt-get install {name})"
        if os.environ.get("VDTU_REQUIRE_ALL") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path
