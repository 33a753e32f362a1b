"""The local XGC platform's credential endpoint, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio

from vdtu.cloud.http_client import HttpError, post_json
from vdtu.cloud.platform import CONSOLE_USER, BrokerAddress, XgcPlatform
from vdtu.cloud.xgc_api import MQTT_INFO_PATH, MqttInfo, device_password

PID, SECRET, IMEI = "1000904556b23945fe90", "76EDCE04DE96", "867435053362828"


def platform() -> XgcPlatform:
    return XgcPlatform(projects={PID: SECRET}, broker=BrokerAddress(host="127.0.0.1", port=1883))


def test_mqtt_info_for_the_right_project() -> None:
    """The right project id and secret get the broker and the device's HMAC password."""

    async def scenario() -> tuple[int, object]:
        p = platform()
        await p.start()
        try:
            body = {"projectId": PID, "projectSecret": SECRET, "imei": IMEI}
            return await post_json(p.url + MQTT_INFO_PATH, body)
        finally:
            await p.stop()

    status, body = asyncio.run(scenario())
    assert status == 200
    info = MqttInfo.from_json(body)
    assert (info.host, info.port, info.client_id, info.username) == (
        "127.0.0.1",
        1883,
        f"xgc-{IMEI}",
        IMEI,
    )
    assert info.password == device_password(SECRET, IMEI)


def test_wrong_secret_and_bad_requests_are_refused() -> None:
    """A wrong secret gets 401; a non-JSON body 400; another path 404; GET 405."""

    async def scenario() -> list[int]:
        p = platform()
        await p.start()
        try:
            wrong = await post_json(
                p.url + MQTT_INFO_PATH, {"projectId": PID, "projectSecret": "x", "imei": IMEI}
            )
            missing = await post_json(p.url + MQTT_INFO_PATH, {"projectId": PID})
            other = await post_json(p.url + "/nope", {})
            return [wrong[0], missing[0], other[0], p.refused]
        finally:
            await p.stop()

    assert asyncio.run(scenario()) == [401, 400, 404, 1]


def test_unreachable_platform_is_an_http_error() -> None:
    """A closed port gives HttpError, not a hang."""

    async def scenario() -> str:
        p = platform()
        await p.start()
        url = p.url
        await p.stop()
        try:
            await post_json(url + MQTT_INFO_PATH, {}, timeout_s=2)
        except HttpError as exc:
            return str(exc)
        return "no error"

    assert "127.0.0.1" in asyncio.run(scenario())


def test_broker_authenticator() -> None:
    """Devices with their HMAC password and the console with its token pass; others do not."""
    p = platform()
    assert p.authenticate(IMEI, device_password(SECRET, IMEI), f"xgc-{IMEI}")
    assert not p.authenticate(IMEI, device_password("other", IMEI), f"xgc-{IMEI}")
    assert not p.authenticate(None, None, "anon")
    assert p.authenticate(CONSOLE_USER, p.console_token, "console")
    assert not p.authenticate(CONSOLE_USER, "guess", "console")
