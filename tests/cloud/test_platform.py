"""The local XGC platform's credential endpoint, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json

import pytest

from vdtu.cloud.http_client import HttpError, post_json, request
from vdtu.cloud.platform import CONSOLE_USER, MAX_BODY, BrokerAddress, XgcPlatform
from vdtu.cloud.xgc_api import MQTT_INFO_PATH, MqttInfo, device_password

pytestmark = pytest.mark.realtime

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


def ask_raw(bodies: list[bytes]) -> list[tuple[int, dict[str, object]]]:
    """POST each raw body to the credential endpoint; the status and the decoded JSON answer."""

    async def scenario() -> list[tuple[int, bytes]]:
        p = platform()
        await p.start()
        try:
            return [
                await request("POST", p.url + MQTT_INFO_PATH, body, timeout_s=5) for body in bodies
            ]
        finally:
            await p.stop()

    return [(status, json.loads(answer)) for status, answer in asyncio.run(scenario())]


def good_body(**fields: object) -> bytes:
    return json.dumps({"projectId": PID, "projectSecret": SECRET, "imei": IMEI} | fields).encode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"projectId":"' + PID.encode() + b'","imei":' + b"8" * 5000 + b"}", "body"),
        (good_body()[:-1] + b',"x":' + b"1" * 5000 + b"}", "body"),
        (b"[" * 1000 + b"]" * 1000, "body"),
        (b'{"a":' * 1000 + b"1" + b"}" * 1000, "body"),
        (good_body(imei="\udfff"), "imei"),
        (good_body(projectId="\ud800"), "projectId"),
        (good_body(projectSecret="\udfff"), "projectSecret"),
        (good_body(imei="8" * 15_000), "imei"),
        (good_body(imei="86743505336282"), "imei"),
        (good_body(imei="86743505336282x"), "imei"),
        (good_body(imei=867435053362828), "imei"),
        (good_body(projectId="p" * 1000), "projectId"),
        (good_body(projectSecret=None), "projectSecret"),
        (b"\xff\xfe", "body"),
        (b"not json", "body"),
        (b'"a string"', "body"),
    ],
    ids=[
        "5000-digit imei",
        "5000-digit extra field",
        "arrays 1000 deep",
        "objects 1000 deep",
        "surrogate imei",
        "surrogate project id",
        "surrogate secret",
        "15000-digit imei",
        "14-digit imei",
        "imei with a letter",
        "imei as a number",
        "1000-character project id",
        "null secret",
        "not UTF-8",
        "not JSON",
        "not an object",
    ],
)
def test_a_bad_request_gets_a_400_naming_the_field(body: bytes, field: str) -> None:
    """Every malformed body or field is answered 400 with a JSON error naming it; no credentials."""
    ((status, answer),) = ask_raw([body])
    assert status == 400
    assert answer["field"] == field
    assert isinstance(answer["error"], str)
    assert field in answer["error"] or field == "body"
    assert "password" not in answer


def test_a_body_over_the_limit_gets_413() -> None:
    """A body larger than the platform's limit is refused with 413 and a JSON error."""
    ((status, answer),) = ask_raw([good_body(pad="x" * (MAX_BODY + 1))])
    assert status == 413
    assert "error" in answer


def test_the_platform_keeps_answering_after_bad_requests() -> None:
    """A good request after a series of hostile ones still gets its credentials."""
    hostile = [b"[" * 1000 + b"]" * 1000, good_body(imei="\udfff"), b'{"a":' + b"1" * 5000 + b"}"]
    answers = ask_raw([*hostile, good_body()])
    assert [status for status, _ in answers] == [400, 400, 400, 200]
    assert answers[-1][1]["password"] == device_password(SECRET, IMEI)


def test_the_answer_without_http_is_the_endpoints_answer() -> None:
    """``answer_mqtt_info`` (a caller in this process, ``vdtu fleet``) answers a body exactly
    as ``POST /xgc/v1/mqtt-info`` does: credentials, a wrong secret, hostile bodies, and a
    refused or slow unit's conditions."""
    other = "867435053362836"
    bodies = [
        good_body(),
        good_body(projectSecret="x"),
        b"[" * 1000 + b"]" * 1000,
        good_body(imei="86743505336282x"),
        good_body(imei=other),
    ]

    async def scenario() -> list[tuple[tuple[int, bytes], tuple[int, bytes, float]]]:
        p = platform()
        p.set_conditions(other, refuse=True, delay_s=0.05)
        await p.start()
        try:
            found = []
            for body in bodies:
                over_http = await request("POST", p.url + MQTT_INFO_PATH, body, timeout_s=5)
                reply = p.answer_mqtt_info(body)
                found.append((over_http, (reply.status, reply.body, reply.delay_s)))
            return found
        finally:
            await p.stop()

    answers = asyncio.run(scenario())
    for (status, body), (direct_status, direct_body, _delay_s) in answers:
        assert (direct_status, json.loads(direct_body)) == (status, json.loads(body))
    assert [status for (status, _body), _direct in answers] == [200, 401, 400, 400, 503]
    assert [direct[2] for _http, direct in answers] == [0.0, 0.0, 0.0, 0.0, 0.05]


def test_the_answer_to_a_requests_object_is_the_answer_to_its_json() -> None:
    """``answer_request`` (the direct login of ``vdtu fleet``: the request's object, no JSON)
    answers what ``answer_mqtt_info`` answers the object's JSON with, its counters and
    conditions included: credentials, a wrong project, bad fields, a refused and a slow
    unit; JSON over the request's limits is a 400 either way (naming the body, or the
    field that no request within the limits could hold)."""
    refused, slow = "867435053362836", "867435053362844"
    requests: list[object] = [
        {"projectId": PID, "projectSecret": SECRET, "imei": IMEI},
        {"projectId": PID, "projectSecret": "x", "imei": IMEI},
        {"projectId": "p" * 65, "projectSecret": SECRET, "imei": IMEI},
        {"projectId": PID, "projectSecret": SECRET, "imei": "86743505336282x"},
        {"projectId": PID, "projectSecret": SECRET, "imei": 867435053362836},
        {"projectId": PID, "projectSecret": SECRET},
        [PID, SECRET, IMEI],
        {"projectId": PID, "projectSecret": SECRET, "imei": refused},
        {"projectId": PID, "projectSecret": SECRET, "imei": slow},
    ]
    over_json, direct = platform(), platform()
    for p in (over_json, direct):
        p.set_conditions(refused, refuse=True, delay_s=0.05)
        p.set_conditions(slow, delay_s=0.2)
    for data in requests:
        reply = over_json.answer_mqtt_info(json.dumps(data).encode())
        answer = direct.answer_request(data)
        assert (answer.status, answer.value, answer.delay_s) == (
            reply.status,
            json.loads(reply.body),
            reply.delay_s,
        )
        assert answer.reply() == reply
    assert direct.refused == over_json.refused == 1
    overlong = {"projectId": PID, "projectSecret": "s" * MAX_BODY, "imei": IMEI}
    assert over_json.answer_mqtt_info(json.dumps(overlong).encode()).status == 400
    assert direct.answer_request(overlong).status == 400
