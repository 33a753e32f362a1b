"""The console sides: what ``vdtu cloud`` does for each kind of unit, without a broker."""

from __future__ import annotations

import pytest

from vdtu.cloud.broker_url import parse_broker_url
from vdtu.console import OWN_COMMANDS, SEND_FLAGS, Target
from vdtu.errors import ConfigError
from vdtu.links.console_side import MessageHandler
from vdtu.links.sides import SIDES

XGC, QUEC = SIDES["xgc"].console, SIDES["quec"].console
XGC_IMEI, QUEC_IMEI = "867435059800763", "867435059800771"


class Cloud:
    """A console connection that only knows its project."""

    def __init__(self, project: str | None) -> None:
        self._project = project

    def listen(self, handler: MessageHandler) -> None:
        raise AssertionError("not used")

    async def subscribe(self, topic: str) -> None:
        raise AssertionError("not used")

    async def publish(self, topic: str, payload: bytes) -> None:
        raise AssertionError("not used")

    def project(self) -> str:
        if self._project is None:
            raise ConfigError("which project?")
        return self._project


def test_the_sides_subcommands_and_send_flags_in_the_registrys_order() -> None:
    assert list(OWN_COMMANDS) == ["config", "ota", "cmd"]
    assert [side for side, _command in OWN_COMMANDS.values()] == [XGC, XGC, QUEC]
    assert list(SEND_FLAGS) == ["--quec"]
    assert SEND_FLAGS["--quec"][0] is QUEC


def test_send_topics_and_watch_filters() -> None:
    assert XGC.downlink_topic(Cloud("p1"), XGC_IMEI) == f"xgc/p1/{XGC_IMEI}/down"
    with pytest.raises(ConfigError, match="which project"):
        XGC.downlink_topic(Cloud(None), XGC_IMEI)
    assert QUEC.downlink_topic(Cloud(None), QUEC_IMEI) == f"quec/{QUEC_IMEI}/down"
    assert [XGC.watch_filter(None), XGC.watch_filter(XGC_IMEI)] == [
        "xgc/+/+/#",
        f"xgc/+/{XGC_IMEI}/#",
    ]
    assert [QUEC.watch_filter(None), QUEC.watch_filter(QUEC_IMEI)] == [
        "quec/+/up",
        f"quec/{QUEC_IMEI}/up",
    ]


def test_watch_shows_what_units_say_and_not_what_the_cloud_sends_them() -> None:
    state = XGC.watched(f"xgc/p1/{XGC_IMEI}/config/status", b'{"status":"ok"}')
    assert state is not None
    assert state.record() == {
        "project": "p1",
        "imei": XGC_IMEI,
        "channel": "config/status",
        "payload": {"status": "ok"},
    }
    for channel in ("down", "config", "ota"):
        assert XGC.watched(f"xgc/p1/{XGC_IMEI}/{channel}", b"{}") is None
    assert XGC.watched(f"quec/{QUEC_IMEI}/up", b"{}") is None
    reply = QUEC.watched(f"quec/{QUEC_IMEI}/up", b"not json")
    assert reply is not None
    assert reply.record() == {
        "project": None,
        "imei": QUEC_IMEI,
        "channel": "quec-up",
        "payload": "not json",
    }
    assert QUEC.watched(f"quec/{QUEC_IMEI}/down", b"{}") is None
    assert QUEC.watched(f"xgc/p1/{XGC_IMEI}/up", b"{}") is None


def test_send_goes_to_the_flags_kind_else_the_units_else_the_default() -> None:
    broker = parse_broker_url("mqtt://127.0.0.1:9")
    known = Target(broker=broker, project="p1", units={XGC_IMEI: "xgc", QUEC_IMEI: "quec"})
    assert known.side_of(QUEC_IMEI, None) is QUEC
    assert known.side_of(XGC_IMEI, None) is XGC
    unknown = Target(broker=broker, project=None)
    assert unknown.side_of(QUEC_IMEI, None) is XGC
    assert unknown.side_of(QUEC_IMEI, "--quec") is QUEC


def test_watch_and_send_reach_every_kind_of_unit() -> None:
    broker = parse_broker_url("mqtt://127.0.0.1:9")
    target = Target(broker=broker, project="p1", units={XGC_IMEI: "xgc", QUEC_IMEI: "quec"})
    for imei in (XGC_IMEI, QUEC_IMEI):
        assert target.check_unit("watch", imei) is None
        assert target.check_unit("send", imei) is None
    assert target.check_unit("send", QUEC_IMEI, flag="--quec") is None
