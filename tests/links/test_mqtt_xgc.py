"""The XGC cloud's credential requests: over HTTP, or handed to the local platform directly
(``direct_login``, what ``vdtu fleet`` uses), with the same results either way."""

from __future__ import annotations

import asyncio

import pytest

from tests.cloud.test_platform import IMEI, PID, SECRET, platform
from vdtu.clock.realtime import RealtimeClock
from vdtu.cloud.xgc_api import MqttInfo
from vdtu.errors import ConfigError
from vdtu.firmware.xgc.cloud import InfoRefused, InfoResult, InfoUnreachable
from vdtu.links.mqtt_xgc import MqttXgcCloud
from vdtu.net.mqtt import MqttHub

pytestmark = pytest.mark.realtime

REFUSED, SLOW = "867435053362836", "867435053362844"
SLOW_S = 0.3
CASES = {
    "good": (PID, SECRET, IMEI),
    "wrong secret": (PID, "0BAD", IMEI),
    "unknown project": ("1000ffffffffffffffff", SECRET, IMEI),
    "refused unit": (PID, SECRET, REFUSED),
    "slow unit": (PID, SECRET, SLOW),
}


async def _ask(direct: bool) -> tuple[dict[str, tuple[InfoResult, float]], int]:
    """Each case's result and when it arrived (s after asking), and how many tasks the
    requests started."""
    loop = asyncio.get_running_loop()
    clock = RealtimeClock(loop)
    clock.start()
    hub = MqttHub(loop)
    server = platform()
    server.set_conditions(REFUSED, refuse=True)
    server.set_conditions(SLOW, delay_s=SLOW_S)
    await server.start()
    got: dict[str, tuple[InfoResult, float]] = {}
    try:
        cloud = MqttXgcCloud(
            clock, hub, platform_url=server.url, platform=server, direct_login=direct
        )
        before = len(asyncio.all_tasks())
        asked = loop.time()
        for name, (project_id, secret, imei) in CASES.items():

            def done(result: InfoResult, name: str = name) -> None:
                got[name] = (result, loop.time() - asked)

            cloud.fetch_mqtt_info(
                imei=imei, project_id=project_id, project_secret=secret, done=done
            )
        started = len(asyncio.all_tasks()) - before
        for _ in range(200):
            if len(got) == len(CASES):
                break
            await asyncio.sleep(0.01)
    finally:
        await server.stop()
        hub.close()
        clock.stop()
    return got, started


def test_a_direct_request_gets_what_the_http_endpoint_answers_with_its_conditions() -> None:
    over_http, http_tasks = asyncio.run(_ask(direct=False))
    direct, direct_tasks = asyncio.run(_ask(direct=True))
    assert {name: result for name, (result, _at) in direct.items()} == {
        name: result for name, (result, _at) in over_http.items()
    }
    assert isinstance(direct["good"][0], MqttInfo)
    assert isinstance(direct["wrong secret"][0], InfoRefused)
    assert isinstance(direct["unknown project"][0], InfoRefused)
    assert direct["refused unit"][0] == InfoUnreachable(reason="HTTP 503 from the platform")
    assert direct["slow unit"][1] >= SLOW_S
    assert direct["good"][1] < SLOW_S
    # HTTP: a task per request; direct: only the units under conditions take one
    assert (http_tasks, direct_tasks) == (len(CASES), 2)


def test_a_direct_login_needs_the_local_platform() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        hub = MqttHub(loop)
        try:
            with pytest.raises(ConfigError, match="direct_login needs vdtu's own XGC platform"):
                MqttXgcCloud(
                    RealtimeClock(loop), hub, platform_url="http://127.0.0.1:1", direct_login=True
                )
        finally:
            hub.close()

    asyncio.run(scenario())
