"""The DTU state table walked pair by pair, and driven at random, against its documented rules.

The rules are those of ``vdtu/firmware/xgc/states.py``'s header (docs/spec/xgc.md#8):
every (state, input) pair either has a row or is refused by moving to ``ERROR`` and
raising ``LocalProtocolError`` naming both; no row leads into ``no-init`` or
``ERROR``; every reachable state has a way on, and only ``ERROR`` has none; a row
that changes the state notifies the new state, one that keeps it notifies nothing;
``PROJECT_INFO_SET`` is allowed in every state after init and keeps it.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from vdtu.errors import LocalProtocolError
from vdtu.firmware.xgc.states import (
    TRANSITIONS,
    DtuInput,
    DtuState,
    DtuStateMachine,
    notification,
)

PAIRS = list(itertools.product(DtuState, DtuInput))


def machine_in(state: DtuState) -> DtuStateMachine:
    machine = DtuStateMachine()
    machine.state = state
    return machine


def reachable() -> set[DtuState]:
    """The states the table leads to from power-on."""
    seen = {DtuState.NO_INIT}
    frontier = [DtuState.NO_INIT]
    while frontier:
        state = frontier.pop()
        for (source, _input), target in TRANSITIONS.items():
            if source is state and target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen


@pytest.mark.parametrize(("state", "event"), PAIRS, ids=[f"{s.value}+{i.value}" for s, i in PAIRS])
def test_every_pair_has_a_row_or_is_refused_naming_both(state: DtuState, event: DtuInput) -> None:
    """A row moves the machine to its target; a missing pair moves it to ERROR, then raises
    LocalProtocolError naming the state and the input."""
    machine = machine_in(state)
    target = TRANSITIONS.get((state, event))
    if target is None:
        with pytest.raises(LocalProtocolError) as raised:
            machine.process(event)
        assert machine.state is DtuState.ERROR
        assert repr(event.value) in str(raised.value)
        assert repr(state.value) in str(raised.value)
        return
    assert machine.process(event) is target
    assert machine.state is target


@pytest.mark.parametrize(("state", "event"), PAIRS, ids=[f"{s.value}+{i.value}" for s, i in PAIRS])
def test_a_row_notifies_exactly_when_the_state_changes(state: DtuState, event: DtuInput) -> None:
    """The host hears the new state's name after a change (docs/spec/xgc.md#6.4), nothing
    after a row that keeps the state."""
    target = TRANSITIONS.get((state, event))
    if target is None:
        return
    expected = None if target is state else target.value
    assert notification(state, target) == expected


def test_no_row_leads_into_no_init_or_error() -> None:
    """no-init is only the power-on state, so it is never notified; ERROR is only reached by
    a refused pair."""
    assert DtuState.NO_INIT not in TRANSITIONS.values()
    assert DtuState.ERROR not in TRANSITIONS.values()
    assert not [key for key in TRANSITIONS if key[0] is DtuState.ERROR]


def test_every_device_state_is_reachable_and_only_error_is_a_dead_end() -> None:
    """From power-on every state but ERROR can be reached, and each has a row to another
    state."""
    states = reachable()
    assert states == set(DtuState) - {DtuState.ERROR}
    for state in states:
        onward = {target for (source, _), target in TRANSITIONS.items() if source is state} - {
            state
        }
        assert onward, f"{state.value} is a dead end"


def test_project_info_can_be_set_in_every_state_after_init_and_keeps_it() -> None:
    """SET_PRJINFO restarts the cloud session from any state after init; the state stays until
    the session has a result."""
    after_init = set(DtuState) - {DtuState.NO_INIT, DtuState.ERROR}
    for state in after_init:
        assert TRANSITIONS[(state, DtuInput.PROJECT_INFO_SET)] is state
    assert (DtuState.NO_INIT, DtuInput.PROJECT_INFO_SET) not in TRANSITIONS


def test_the_usual_walk_of_the_header_is_in_the_table() -> None:
    """no-init -> init-ok -> get-mqtt-info-ok -> mqtt-connected <-> mqtt-disconnected, and the
    two other ways out of init-ok."""
    walk = [
        (DtuState.NO_INIT, DtuInput.INIT_DONE, DtuState.INIT_OK),
        (DtuState.INIT_OK, DtuInput.PROJECT_INFO_MISSING, DtuState.NO_PROJECT_INFO),
        (DtuState.INIT_OK, DtuInput.MQTT_INFO_OK, DtuState.GET_MQTT_INFO_OK),
        (DtuState.INIT_OK, DtuInput.MQTT_INFO_FAILED, DtuState.GET_MQTT_INFO_FAIL),
        (DtuState.GET_MQTT_INFO_OK, DtuInput.CONNECTED, DtuState.MQTT_CONNECTED),
        (DtuState.MQTT_CONNECTED, DtuInput.DISCONNECTED, DtuState.MQTT_DISCONNECTED),
        (DtuState.MQTT_DISCONNECTED, DtuInput.CONNECTED, DtuState.MQTT_CONNECTED),
    ]
    for state, event, target in walk:
        assert TRANSITIONS[(state, event)] is target


class DtuMachineWalk(RuleBasedStateMachine):
    """Random inputs from power-on, checked against the table as the model.

    Each step: a pair with a row moves the machine there (notifying a change); a pair
    without one leaves it in ERROR for good, where every later input is refused too.
    """

    def __init__(self) -> None:
        super().__init__()
        self.machine = DtuStateMachine()
        self.model = DtuState.NO_INIT
        self.notified: list[str] = []

    @rule(event=st.sampled_from(DtuInput))
    def feed(self, event: DtuInput) -> None:
        old = self.machine.state
        target = TRANSITIONS.get((self.model, event))
        if target is None:
            with pytest.raises(LocalProtocolError):
                self.machine.process(event)
            self.model = DtuState.ERROR
            return
        new = self.machine.process(event)
        told = notification(old, new)
        if told is not None:
            self.notified.append(told)
        self.model = target

    @invariant()
    def follows_the_table(self) -> None:
        assert self.machine.state is self.model

    @invariant()
    def never_tells_no_init_or_error(self) -> None:
        assert DtuState.NO_INIT.value not in self.notified
        assert DtuState.ERROR.value not in self.notified

    @invariant()
    def consecutive_notifications_differ(self) -> None:
        assert all(a != b for a, b in itertools.pairwise(self.notified))


TestDtuMachineWalk = DtuMachineWalk.TestCase
