"""The platform's per-unit conditions on the real HTTP endpoint (platform-refuse, -slow)."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.cloud.test_platform import IMEI, PID, SECRET, platform
from vdtu.cloud.http_client import post_json
from vdtu.cloud.xgc_api import MQTT_INFO_PATH

BODY = {"projectId": PID, "projectSecret": SECRET, "imei": IMEI}
OTHER = {**BODY, "imei": "867435053362836"}


def test_a_refused_unit_gets_503_and_the_others_their_credentials() -> None:
    async def scenario() -> tuple[tuple[int, object], int]:
        server = platform()
        server.set_conditions(IMEI, refuse=True)
        await server.start()
        try:
            refused = await post_json(server.url + MQTT_INFO_PATH, BODY)
            other, _ = await post_json(server.url + MQTT_INFO_PATH, OTHER)
        finally:
            await server.stop()
        return refused, other

    (status, answer), other = asyncio.run(scenario())
    assert status == 503
    assert answer == {"error": "the service is unavailable; try again later", "field": "body"}
    assert other == 200


@pytest.mark.realtime
def test_a_slow_unit_is_answered_delay_late_and_cleared_at_once() -> None:
    async def scenario() -> tuple[float, float]:
        server = platform()
        server.set_conditions(IMEI, delay_s=0.4)
        await server.start()
        try:
            started = time.monotonic()
            status, _ = await post_json(server.url + MQTT_INFO_PATH, BODY)
            slow = time.monotonic() - started
            assert status == 200
            server.set_conditions(IMEI)
            started = time.monotonic()
            await post_json(server.url + MQTT_INFO_PATH, BODY)
            fast = time.monotonic() - started
        finally:
            await server.stop()
        return slow, fast

    slow, fast = asyncio.run(scenario())
    assert slow >= 0.4
    assert fast < 0.3
