"""The fuzz targets of ``tests/fuzz/targets.py`` on a small, fixed, deterministic budget.

Each target gets its seeds, then random bytes, mutated seeds and (where the target has a
structure) Hypothesis-built structured inputs; ``derandomize=True`` makes every run draw
the same inputs. The long run is ``python -m bench.fuzz`` (atheris, millions of inputs).
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import targets
from tests.fuzz.targets import (
    ACTION_NAMES,
    LIVENESS_EVERY,
    TARGETS,
    InvariantBroken,
    reset_unit,
    seeds,
)
from vdtu.firmware.quec.commands import CommandCode
from vdtu.firmware.xgc.actions import ACTIONS

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=700,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NAMES = sorted(TARGETS)


@pytest.fixture(autouse=True)
def _fresh_unit() -> None:
    """Each test starts from a fresh unit, so its inputs do not depend on the test order."""
    reset_unit()


def mutated(name: str) -> st.SearchStrategy[bytes]:
    """A seed of ``name`` with a few bytes overwritten and a few inserted."""

    def mutate(args: tuple[bytes, list[tuple[int, int]], int, bytes]) -> bytes:
        seed, writes, at, inserted = args
        data = bytearray(seed)
        for position, value in writes:
            if data:
                data[position % len(data)] = value
        where = at % (len(data) + 1)
        return bytes(data[:where] + inserted + data[where:])

    return st.tuples(
        st.sampled_from(seeds(name)),
        st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=4),
        st.integers(0, 1 << 16),
        st.binary(max_size=8),
    ).map(mutate)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
PAIRS = st.lists(
    st.tuples(
        st.sampled_from(["PID", "PSECRET", "addr", "reg", "value", "out1", "in2", "interval", "a"])
        | st.text(max_size=8),
        st.text(max_size=12) | st.integers().map(str) | st.sampled_from(["true", "01", "ff"]),
    ),
    max_size=5,
).map(lambda pairs: ";".join(f"{k}:{v}" for k, v in pairs))


def _action_input(args: tuple[int, int, str]) -> bytes:
    index, form, content = args
    return bytes([index, form]) + content.encode("utf-8", errors="surrogatepass")


def _quec_envelope(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode("utf-8", errors="surrogatepass")


STRUCTURED: dict[str, st.SearchStrategy[bytes]] = {
    "xgc_unit_actions": st.tuples(
        st.integers(0, len(ACTION_NAMES) - 1), st.integers(0, 255), PAIRS | st.text()
    ).map(_action_input),
    "xgc_downlink": JSON.map(lambda v: json.dumps(v).encode("utf-8", errors="surrogatepass")),
    "quec_commands": st.fixed_dictionaries(
        {
            "msg_id": JSON,
            "cmd_code": st.sampled_from([int(c) for c in CommandCode]) | st.integers(),
            "password": st.text(max_size=8),
            "data": JSON,
        },
        optional={"topic_id": JSON, "modbus": JSON},
    ).map(_quec_envelope),
}


@pytest.mark.parametrize("name", NAMES)
def test_every_seed_passes(name: str) -> None:
    """The seeds are valid inputs: no target crashes on them."""
    target = TARGETS[name]
    assert seeds(name)
    for seed in seeds(name):
        target(seed)


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=st.binary(max_size=600))
def test_random_bytes(name: str, data: bytes) -> None:
    """Random bytes: no exception the contract does not allow, no broken invariant."""
    TARGETS[name](data)


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=st.data())
def test_mutated_seeds(name: str, data: st.DataObject) -> None:
    """Seeds with bytes overwritten and inserted."""
    TARGETS[name](data.draw(mutated(name)))


@pytest.mark.parametrize("name", sorted(STRUCTURED))
@FUZZ
@given(data=st.data())
def test_structured_inputs(name: str, data: st.DataObject) -> None:
    """Hypothesis-built structures: action frames with key:value content, JSON downlinks and
    command envelopes for every command code."""
    TARGETS[name](data.draw(STRUCTURED[name]))


def test_a_fault_in_a_handler_is_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    """The unit-level target reports a handler's exception (which the unit's watchdog
    swallows) as a broken invariant."""

    def boom(*_args: object) -> NoReturn:
        raise KeyError("planted")

    monkeypatch.setitem(ACTIONS, "GET_IMEI", boom)
    with pytest.raises(InvariantBroken, match=r"faulted.*planted"):
        TARGETS["xgc_unit_actions"](bytes([ACTION_NAMES.index("GET_IMEI"), 0x10]))


def test_an_exception_out_of_a_decoder_is_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception other than the documented refusal escapes the downlink target."""

    def boom(_payload: bytes) -> str:
        raise KeyError("planted")

    monkeypatch.setattr(targets, "downlink_value", boom)
    with pytest.raises(KeyError, match="planted"):
        TARGETS["xgc_downlink"](b"{}")


def test_a_unit_that_stops_answering_is_a_crash() -> None:
    """The periodic liveness check reports a unit that no longer answers GET_IMEI."""
    get_dtu_state = bytes([ACTION_NAMES.index("GET_DTU_STATE"), 0x10])
    for _ in range(LIVENESS_EVERY - 1):
        TARGETS["xgc_unit_actions"](get_dtu_state)
    rig = targets._XGC_RIG
    assert rig.current is not None
    rig.current.unit.power_off()  # dark, and no watchdog to bring it back
    with pytest.raises(InvariantBroken, match="no GET_IMEI reply"):
        TARGETS["xgc_unit_actions"](get_dtu_state)
