"""The DTU state (docs/spec/xgc.md#8) as a transition table.

States, in the order a unit normally walks them (docs/spec/xgc.md#8.2)::

    no-init -> init-ok -> no-project-info                  (no ProjectId/Secret saved)
                       \\-> get-mqtt-info-ok -> mqtt-connected <-> mqtt-disconnected
                       \\-> get-mqtt-info-fail

Rules (``tests/firmware/test_xgc_states_walk.py`` walks every (state, input) pair
against them):

* ``no-init`` is the state at power-on and is never notified: no row leads into
  it. A reboot is not an input; it builds a new machine in ``no-init``.
* Every change of state is notified to the host with the GET_DTU_STATE reply's
  frame (docs/spec/xgc.md#6.4); a row that keeps the state notifies nothing
  (``notification``).
* Saving project info (SET_PRJINFO) in any state after init restarts the cloud
  session, hence the ``PROJECT_INFO_SET`` rows; they keep the state until the
  session has a result.
* Every state a unit can reach has a way on; only ``ERROR`` has none. A missing
  (state, input) pair is a bug in the firmware: ``process`` moves to ``ERROR``
  and raises ``LocalProtocolError`` naming both, and every input is refused there.
"""

from __future__ import annotations

from enum import StrEnum

from vdtu.errors import LocalProtocolError


class DtuState(StrEnum):
    """The states, spelled as they go on the wire."""

    NO_INIT = "no-init"
    INIT_OK = "init-ok"
    NO_PROJECT_INFO = "no-project-info"
    GET_MQTT_INFO_OK = "get-mqtt-info-ok"
    GET_MQTT_INFO_FAIL = "get-mqtt-info-fail"
    MQTT_CONNECTED = "mqtt-connected"
    MQTT_DISCONNECTED = "mqtt-disconnected"
    ERROR = "error"
    """Not a device state: where the machine goes when the firmware broke a rule."""


class DtuInput(StrEnum):
    """What moves the state on."""

    INIT_DONE = "init-done"
    """Hardware, SIM and network are up."""
    PROJECT_INFO_MISSING = "project-info-missing"
    PROJECT_INFO_SET = "project-info-set"
    MQTT_INFO_OK = "mqtt-info-ok"
    MQTT_INFO_FAILED = "mqtt-info-failed"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


_S = DtuState
_I = DtuInput
_AFTER_INIT = (
    _S.INIT_OK,
    _S.NO_PROJECT_INFO,
    _S.GET_MQTT_INFO_OK,
    _S.GET_MQTT_INFO_FAIL,
    _S.MQTT_CONNECTED,
    _S.MQTT_DISCONNECTED,
)

TRANSITIONS: dict[tuple[DtuState, DtuInput], DtuState] = {
    (_S.NO_INIT, _I.INIT_DONE): _S.INIT_OK,
    (_S.INIT_OK, _I.PROJECT_INFO_MISSING): _S.NO_PROJECT_INFO,
    # Project info saved: the cloud session starts over; the state stays until it has a result.
    **{(state, _I.PROJECT_INFO_SET): state for state in _AFTER_INIT},
    **{
        (state, _I.MQTT_INFO_OK): _S.GET_MQTT_INFO_OK
        for state in (
            _S.INIT_OK,
            _S.NO_PROJECT_INFO,
            _S.GET_MQTT_INFO_FAIL,
            _S.MQTT_DISCONNECTED,
            _S.MQTT_CONNECTED,
            _S.GET_MQTT_INFO_OK,
        )
    },
    **{
        (state, _I.MQTT_INFO_FAILED): _S.GET_MQTT_INFO_FAIL
        for state in (
            _S.INIT_OK,
            _S.NO_PROJECT_INFO,
            _S.GET_MQTT_INFO_FAIL,
            _S.MQTT_DISCONNECTED,
            _S.MQTT_CONNECTED,
            _S.GET_MQTT_INFO_OK,
        )
    },
    (_S.GET_MQTT_INFO_OK, _I.CONNECTED): _S.MQTT_CONNECTED,
    (_S.MQTT_DISCONNECTED, _I.CONNECTED): _S.MQTT_CONNECTED,
    (_S.GET_MQTT_INFO_OK, _I.DISCONNECTED): _S.MQTT_DISCONNECTED,
    (_S.MQTT_CONNECTED, _I.DISCONNECTED): _S.MQTT_DISCONNECTED,
    (_S.MQTT_DISCONNECTED, _I.DISCONNECTED): _S.MQTT_DISCONNECTED,
}


class DtuStateMachine:
    """Holds the DTU state and applies inputs through ``TRANSITIONS``."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = DtuState.NO_INIT

    def process(self, event: DtuInput) -> DtuState:
        """Apply ``event``; returns the new state.

        Raises:
            LocalProtocolError: the pair is not in the table; the state is then ``ERROR``.
        """
        key = (self.state, event)
        if key not in TRANSITIONS:
            old = self.state
            self.state = DtuState.ERROR
            raise LocalProtocolError(f"input {event.value!r} is not allowed in state {old.value!r}")
        self.state = TRANSITIONS[key]
        return self.state


def notification(old: DtuState, new: DtuState) -> str | None:
    """The GET_DTU_STATE content the host is sent after a move from ``old`` to ``new``.

    Returns:
        The new state's name when the state changed, None when it stayed.
    """
    return None if new is old else new.value
