"""Shared fixtures: the XGC bench, and the CI rule that no test may skip for want of a tool."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.xgc_harness import XgcBench


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
