"""The shared parts of ``vdtu.firmware.personality`` that stand in for slower equivalents:
``reaches`` (a personality's network check) and ``UnitState.of`` (shared states)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import pytest

from vdtu.firmware.personality import Phase, UnitState, reaches
from vdtu.firmware.quec.net import QuecNet
from vdtu.firmware.xgc.cloud import XgcCloud
from vdtu.links.mqtt_xgc import MqttXgcCloud
from vdtu.links.sim_quec import SimQuecNet
from vdtu.links.sim_xgc import SimXgcPlatform


@runtime_checkable
class Dial(Protocol):
    def dial(self, number: str) -> None: ...


class ByClass:
    def dial(self, number: str) -> None:
        del number


class Missing:
    pass


class Unset:
    dial = None


class ByInstance:
    def __init__(self) -> None:
        self.dial = print


class Registered:
    pass


Dial.register(Registered)


@pytest.mark.parametrize(
    "network", [ByClass(), Missing(), Unset(), ByInstance(), Registered(), None, 3, "dial"]
)
def test_reaches_is_isinstance(network: object) -> None:
    assert reaches(network, Dial) is isinstance(network, Dial)


def test_the_networks_of_the_personalities_pass_and_others_do_not() -> None:
    xgc = MqttXgcCloud.__new__(MqttXgcCloud)
    assert reaches(xgc, XgcCloud)
    assert reaches(SimXgcPlatform.__new__(SimXgcPlatform), XgcCloud)
    assert reaches(SimQuecNet.__new__(SimQuecNet), QuecNet)
    assert not reaches(xgc, QuecNet)
    assert not reaches(object(), XgcCloud)


def test_a_unit_state_is_shared_and_equal_to_a_new_one() -> None:
    state = UnitState.of(Phase.CONNECTED, "mqtt-connected")
    assert state == UnitState(Phase.CONNECTED, "mqtt-connected")
    assert UnitState.of(Phase.CONNECTED, "mqtt-connected") is state
    assert UnitState.of(Phase.CONNECTING, "mqtt-connected") != state
