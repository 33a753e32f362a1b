"""The local IoT cloud stand-in: its registry, the broker login check, its registration."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from urllib.parse import urlencode

import pytest

from tests.cloud.test_brokers import Peer
from vdtu.cloud.broker import EmbeddedBroker
from vdtu.cloud.iot_cloud import (
    MAX_REFUSALS,
    TXYUN_TIMESTAMP_WINDOW_S,
    IotCloud,
    Product,
    Vendor,
)
from vdtu.cloud.iot_sign import (
    MqttLogin,
    aliyun_login,
    aliyun_register_form,
    parse_aliyun_register_answer,
    parse_txyun_register_answer,
    quecthing_device_secret,
    quecthing_login,
    txyun_login,
    txyun_register_body,
)
from vdtu.errors import ConfigError

NOW = 1_700_000_000
FORM = "application/x-www-form-urlencoded"
JSON = "application/json; charset=utf-8"


def cloud() -> IotCloud:
    return IotCloud.for_seed(7)


def fallback_refuses(username: str | None, password: str | None, client_id: str) -> bool:
    return False


def check(iot: IotCloud, login: MqttLogin, now: int = NOW) -> bool:
    """The authenticator's verdict on a login, with a fallback that refuses."""
    return iot.authenticator(fallback_refuses, clock=lambda: now)(
        login.username, login.password, login.client_id
    )


def aliyun_of(iot: IotCloud, device_name: str = "dtu0001", secret: str | None = None) -> MqttLogin:
    pk = iot.product(Vendor.ALIYUN).product_key
    ds = secret or iot.device_secret(Vendor.ALIYUN, pk, device_name)
    return aliyun_login(product_key=pk, device_name=device_name, device_secret=ds, client_id="c1")


def txyun_of(iot: IotCloud, device_name: str = "dtu0001", expiry: int = NOW + 3600) -> MqttLogin:
    pid = iot.product(Vendor.TXYUN).product_key
    psk = iot.device_secret(Vendor.TXYUN, pid, device_name)
    return txyun_login(
        product_id=pid, device_name=device_name, psk_b64=psk, connid=1, expiry=expiry
    )


# -- registry -------------------------------------------------------------------------------


def test_for_seed_gives_one_stable_demo_product_per_vendor() -> None:
    """Same seed, same products; another seed, other ones; the keys look like real ones."""
    first, again, other = IotCloud.for_seed(7), IotCloud.for_seed(7), IotCloud.for_seed(8)
    assert [p.vendor for p in first.products()] == [Vendor.ALIYUN, Vendor.TXYUN, Vendor.QUECTHING]
    assert first.products() == again.products()
    assert first.products() != other.products()
    assert re.fullmatch(r"a1[A-Za-z0-9]{9}", first.product(Vendor.ALIYUN).product_key)
    assert re.fullmatch(r"[A-Z0-9]{10}", first.product(Vendor.TXYUN).product_key)
    assert re.fullmatch(r"p1[a-z0-9]{4}", first.product(Vendor.QUECTHING).product_key)
    assert "product_secret" not in repr(first.product(Vendor.ALIYUN))


def test_device_secrets_are_derived_from_the_product_secret() -> None:
    """Aliyun: 32 hex of HMAC(PS, "aliyun:<dn>"); Tencent: base64 of 16 bytes; quecthing: its DS."""
    iot = IotCloud()
    iot.add_product(Vendor.ALIYUN, "a1Demo", "aliSecret")
    iot.add_product(Vendor.TXYUN, "ABCDEFGHIJ", "0123456789abcdefXYZ")
    iot.add_product(Vendor.QUECTHING, "p1demo", "quecSecret")
    mac = hmac.new(b"aliSecret", b"aliyun:dtu1", hashlib.sha256).hexdigest()
    assert iot.device_secret(Vendor.ALIYUN, "a1Demo", "dtu1") == mac[:32]
    raw = hmac.new(b"0123456789abcdefXYZ", b"txyun:dtu1", hashlib.sha256).digest()[:16]
    assert iot.device_secret(Vendor.TXYUN, "ABCDEFGHIJ", "dtu1") == base64.b64encode(raw).decode()
    assert iot.device_secret(Vendor.QUECTHING, "p1demo", "dtu1") == quecthing_device_secret(
        product_secret="quecSecret", device_name="dtu1"
    )
    assert iot.device_secret(Vendor.ALIYUN, "a1Demo", "dtu2") != mac[:32]


def test_added_device_keeps_its_given_secret() -> None:
    """A device copied from a real console logs in with its own secret, not the derived one."""
    iot = IotCloud()
    iot.add_product(Vendor.ALIYUN, "a1QNbCDxIWM", "ps")
    iot.add_device(Vendor.ALIYUN, "a1QNbCDxIWM", "light01", "0bceb8010ade0df2e6989982e63f7601")
    assert iot.device_secret(Vendor.ALIYUN, "a1QNbCDxIWM", "light01") == (
        "0bceb8010ade0df2e6989982e63f7601"
    )
    login = aliyun_login(
        product_key="a1QNbCDxIWM",
        device_name="light01",
        device_secret="0bceb8010ade0df2e6989982e63f7601",
        client_id="test_mos",
    )
    assert check(iot, login)


@pytest.mark.parametrize(
    ("vendor", "key", "secret", "match"),
    [
        (Vendor.ALIYUN, "", "s", "needs a product key and a product secret"),
        (Vendor.ALIYUN, "a1", "", "needs a product key and a product secret"),
        (Vendor.ALIYUN, "a&1", "s", "must not contain '&|'"),
        (Vendor.QUECTHING, "p:1", "s", "must not contain ':;'"),
        (Vendor.TXYUN, "abcdefghij", "0123456789abcdef", "10 of \\[A-Z0-9\\], not 'abcdefghij'"),
        (Vendor.TXYUN, "ABCDEFGHIJ", "short", "at least 16 bytes"),
    ],
)
def test_add_product_refuses_keys_that_break_the_vendor_format(
    vendor: Vendor, key: str, secret: str, match: str
) -> None:
    """Each vendor's product key rule is checked and named."""
    with pytest.raises(ConfigError, match=match):
        IotCloud().add_product(vendor, key, secret)


def test_add_device_and_device_secret_refuse_unknown_products_and_bad_psks() -> None:
    """An unknown product lists the known ones; a Tencent PSK must be base64."""
    iot = cloud()
    known = iot.product(Vendor.TXYUN).product_key
    with pytest.raises(ConfigError, match=f"unknown txyun product 'NOPE'; known: \\['{known}'\\]"):
        iot.device_secret(Vendor.TXYUN, "NOPE", "d")
    with pytest.raises(ConfigError, match="must be base64"):
        iot.add_device(Vendor.TXYUN, known, "d", "not*base64")
    with pytest.raises(ConfigError, match="needs a name and a secret"):
        iot.add_device(Vendor.TXYUN, known, "", "AAAA")
    with pytest.raises(ConfigError, match="no aliyun product"):
        IotCloud().product(Vendor.ALIYUN)


def test_find_secrets_answer_none_for_unknown_products() -> None:
    """The ``SecretSource`` side says None instead of raising."""
    iot = cloud()
    assert iot.find_product_secret(Vendor.ALIYUN, "nope") is None
    assert iot.find_device_secret(Vendor.ALIYUN, "nope", "d") is None
    product: Product = iot.product(Vendor.ALIYUN)
    assert iot.find_product_secret(Vendor.ALIYUN, product.product_key) == product.product_secret


# -- the broker's check -----------------------------------------------------------------------


def test_valid_logins_of_every_vendor_are_accepted() -> None:
    """Each vendor's login with the cloud's secret passes; nothing is recorded."""
    iot = cloud()
    qt = iot.product(Vendor.QUECTHING)
    quec_ds = iot.device_secret(Vendor.QUECTHING, qt.product_key, "867435053362828")
    quec = quecthing_login(
        product_key=qt.product_key,
        product_secret="",
        device_name="867435053362828",
        device_secret=quec_ds,
    )
    assert check(iot, aliyun_of(iot))
    assert check(iot, txyun_of(iot))
    assert check(iot, quec)
    assert iot.refusals == []


def test_wrong_device_secret_is_refused_and_recorded() -> None:
    """A DeviceSecret the cloud did not issue is refused like the real cloud would."""
    iot = cloud()
    assert not check(iot, aliyun_of(iot, secret="0" * 32))
    assert iot.refusals == [
        "aliyun login 'c1|securemode=3,signmethod=hmacsha256|': "
        "the password is not signed with the DeviceSecret of 'dtu0001'"
    ]


def test_another_devices_secret_is_refused() -> None:
    """A secret is bound to its device name: dtu0002's secret does not log in dtu0001."""
    iot = cloud()
    pk = iot.product(Vendor.ALIYUN).product_key
    theirs = iot.device_secret(Vendor.ALIYUN, pk, "dtu0002")
    assert not check(iot, aliyun_of(iot, "dtu0001", secret=theirs))


def test_wrong_product_is_refused() -> None:
    """A product key the cloud does not have is refused, naming it."""
    iot = cloud()
    login = aliyun_login(product_key="a1Nope", device_name="d", device_secret="s", client_id="c")
    assert not check(iot, login)
    assert iot.refusals[-1].endswith("unknown aliyun product 'a1Nope'")


def test_expired_tencent_login_is_refused() -> None:
    """A Tencent login whose expiry is before the cloud's clock is refused."""
    iot = cloud()
    assert not check(iot, txyun_of(iot, expiry=NOW - 10))
    assert iot.refusals[-1].endswith(f"login expired at {NOW - 10} (now {NOW})")
    assert check(iot, txyun_of(iot, expiry=NOW - 10), now=NOW - 20)


def test_malformed_cloud_login_is_refused_without_reaching_the_fallback() -> None:
    """A CONNECT shaped like a cloud login but broken is refused here, with the reason."""
    calls: list[str] = []

    def fallback(username: str | None, password: str | None, client_id: str) -> bool:
        calls.append(client_id)
        return True

    iot = cloud()
    decide = iot.authenticator(fallback, clock=lambda: NOW)
    assert not decide("dn&pk", None, "c|securemode=3,signmethod=hmacsha256|")
    assert calls == []
    assert "needs a user name and a password" in iot.refusals[-1]


def test_other_clients_go_to_the_fallback() -> None:
    """XGC devices, the console and anonymous clients are the fallback's to decide."""
    seen: list[tuple[str | None, str | None, str]] = []

    def fallback(username: str | None, password: str | None, client_id: str) -> bool:
        seen.append((username, password, client_id))
        return username == "console"

    decide = cloud().authenticator(fallback, clock=lambda: NOW)
    assert decide("console", "token", "console-1")
    assert not decide(None, None, "anon")
    assert seen == [("console", "token", "console-1"), (None, None, "anon")]


def test_refusals_keep_only_the_latest() -> None:
    """Past ``MAX_REFUSALS`` the oldest reasons are dropped."""
    iot = cloud()
    decide = iot.authenticator(fallback_refuses, clock=lambda: NOW)
    for n in range(MAX_REFUSALS + 5):
        decide(f"dn&pk{n}", "00", "c|securemode=3,signmethod=hmacsha256|")
    assert len(iot.refusals) == MAX_REFUSALS
    assert "pk5'" in iot.refusals[0]


@pytest.mark.realtime
def test_embedded_broker_refuses_a_wrong_device_secret() -> None:
    """Over real MQTT on 127.0.0.1: the right Aliyun login gets in, a wrong secret does not."""
    iot = cloud()
    good, bad = aliyun_of(iot), aliyun_of(iot, secret="f" * 32)

    async def scenario() -> tuple[bool, bool]:
        decide = iot.authenticator(fallback_refuses, clock=lambda: NOW)
        async with EmbeddedBroker(authenticator=decide) as broker:
            accepted = Peer(broker.url, good.client_id, login=(good.username, good.password))
            refused = Peer(
                broker.url,
                "x|securemode=3,signmethod=hmacsha256|",
                login=(bad.username, bad.password),
            )
            results = (
                (await accepted.connected()).is_failure,
                (await refused.connected()).is_failure,
            )
            await accepted.close()
            await refused.close()
            return results

    assert asyncio.run(scenario()) == (False, True)


# -- Aliyun registration --------------------------------------------------------------------


def aliyun_form(iot: IotCloud, device_name: str = "dtu0001", **changes: str) -> bytes:
    product = iot.product(Vendor.ALIYUN)
    form = aliyun_register_form(
        product_key=product.product_key,
        device_name=device_name,
        product_secret=product.product_secret,
        random=31337,
    )
    return urlencode(form | changes).encode()


def test_aliyun_registration_then_login_round_trip() -> None:
    """One type one secret: register over HTTP, take the DeviceSecret, log in as mos."""
    iot = cloud()
    status, answer = iot.aliyun_register(aliyun_form(iot), FORM)
    assert status == 200
    secret = parse_aliyun_register_answer(json.dumps(answer).encode())
    pk = iot.product(Vendor.ALIYUN).product_key
    assert answer["data"] == {"productKey": pk, "deviceName": "dtu0001", "deviceSecret": secret}
    login = aliyun_login(product_key=pk, device_name="dtu0001", device_secret=secret, client_id="")
    assert check(iot, login)
    again = iot.aliyun_register(aliyun_form(iot), FORM)[1]
    assert again["data"]["deviceSecret"] == secret


def test_aliyun_tampered_registration_is_refused() -> None:
    """A sign made for another device name (or with another secret) gets code 6288."""
    iot = cloud()
    status, answer = iot.aliyun_register(aliyun_form(iot, deviceName="dtu9999"), FORM)
    assert (status, answer["code"]) == (200, 6288)
    assert "sign check failed" in answer["message"]
    assert iot.refusals[-1].startswith("aliyun register: sign check failed")
    with pytest.raises(ValueError, match="code 6288"):
        parse_aliyun_register_answer(json.dumps(answer).encode())


@pytest.mark.parametrize(
    ("body", "content_type", "code", "match"),
    [
        (None, "application/json", 460, "Content-Type must be application/x-www-form-urlencoded"),
        (b"productKey", FORM, 460, "does not parse"),
        (b"\xff", FORM, 460, "does not parse"),
        (b"productKey=a1x&deviceName=dtu0001", FORM, 460, "missing or empty fields"),
        ({"deviceName": "a b"}, FORM, 460, "deviceName must be 4..32"),
        ({"signMethod": "hmacsha512"}, FORM, 460, "signMethod must be one of"),
        ({"productKey": "a1Unknown"}, FORM, 6250, "product not found: 'a1Unknown'"),
    ],
)
def test_aliyun_bad_registration_requests_get_an_error_code(
    body: bytes | dict[str, str] | None, content_type: str, code: int, match: str
) -> None:
    """Bad content type, form, field or product: an Aliyun-style error answer naming it."""
    iot = cloud()
    if body is None:
        raw = aliyun_form(iot)
    elif isinstance(body, dict):
        raw = aliyun_form(iot, **body)
    else:
        raw = body
    status, answer = iot.aliyun_register(raw, content_type)
    assert (status, answer["code"]) == (200, code)
    assert match in answer["message"]


# -- Tencent registration -------------------------------------------------------------------


def txyun_request(
    iot: IotCloud, device_name: str = "dtu0001", timestamp: int = NOW
) -> dict[str, str | int]:
    product = iot.product(Vendor.TXYUN)
    return txyun_register_body(
        product_id=product.product_key,
        device_name=device_name,
        product_secret=product.product_secret,
        nonce=9876,
        timestamp=timestamp,
    )


def test_txyun_registration_then_login_round_trip() -> None:
    """Register over HTTP, decrypt the PSK, log in with it."""
    iot = cloud()
    product = iot.product(Vendor.TXYUN)
    status, answer = iot.txyun_register(json.dumps(txyun_request(iot)).encode(), JSON, NOW)
    assert (status, answer["code"]) == (200, 0)
    psk = parse_txyun_register_answer(json.dumps(answer).encode(), product.product_secret)
    assert psk == iot.device_secret(Vendor.TXYUN, product.product_key, "dtu0001")
    login = txyun_login(
        product_id=product.product_key,
        device_name="dtu0001",
        psk_b64=psk,
        connid=7,
        expiry=NOW + 3600,
    )
    assert check(iot, login)


def test_txyun_timestamp_window_is_enforced() -> None:
    """A timestamp at the window's edge passes; one second beyond gets code 1003."""
    iot = cloud()
    edge = json.dumps(txyun_request(iot, timestamp=NOW - TXYUN_TIMESTAMP_WINDOW_S)).encode()
    assert iot.txyun_register(edge, JSON, NOW)[1]["code"] == 0
    stale = json.dumps(txyun_request(iot, timestamp=NOW + TXYUN_TIMESTAMP_WINDOW_S + 1)).encode()
    status, answer = iot.txyun_register(stale, JSON, NOW)
    assert (status, answer["code"]) == (200, 1003)
    assert f"over {TXYUN_TIMESTAMP_WINDOW_S} s from {NOW}" in answer["message"]


def test_txyun_tampered_registration_is_refused() -> None:
    """Another device name under the same signature gets code 1004, and is recorded."""
    iot = cloud()
    request = txyun_request(iot) | {"deviceName": "dtu9999"}
    status, answer = iot.txyun_register(json.dumps(request).encode(), JSON, NOW)
    assert (status, answer["code"]) == (200, 1004)
    assert "'dtu9999'" in answer["message"]
    assert iot.refusals[-1].startswith("txyun register: signature check failed")


@pytest.mark.parametrize(
    ("changes", "raw", "content_type", "code", "match"),
    [
        ({}, None, "text/plain", 1001, "Content-Type must be application/json"),
        ({}, b"{nope", JSON, 1001, "not JSON"),
        ({}, b"[1]", JSON, 1001, "expected a JSON object"),
        ({"nonce": True}, None, JSON, 1001, "nonce and timestamp integers"),
        ({"timestamp": "1700000000"}, None, JSON, 1001, "nonce and timestamp integers"),
        ({"deviceName": "a;b"}, None, JSON, 1001, "deviceName must be 1..48"),
        ({"productId": "ZZZZZZZZZZ"}, None, JSON, 1002, "product not found: 'ZZZZZZZZZZ'"),
    ],
)
def test_txyun_bad_registration_requests_get_an_error_code(
    changes: dict[str, object], raw: bytes | None, content_type: str, code: int, match: str
) -> None:
    """Bad content type, JSON, field types, name or product: a coded answer naming it."""
    iot = cloud()
    body = raw if raw is not None else json.dumps(txyun_request(iot) | changes).encode()
    status, answer = iot.txyun_register(body, content_type, NOW)
    assert (status, answer["code"]) == (200, code)
    assert match in answer["message"]


# -- quecthing ------------------------------------------------------------------------------


def test_quecthing_product_secret_login_then_device_secret_login() -> None:
    """One type one secret: log in with the PS, then with the DS the platform hands out."""
    iot = cloud()
    product = iot.product(Vendor.QUECTHING)
    first = quecthing_login(
        product_key=product.product_key,
        product_secret=product.product_secret,
        device_name="867435053362828",
        device_secret="",
    )
    assert check(iot, first)
    ds = quecthing_device_secret(
        product_secret=product.product_secret, device_name="867435053362828"
    )
    later = quecthing_login(
        product_key=product.product_key,
        product_secret="",
        device_name="867435053362828",
        device_secret=ds,
    )
    assert check(iot, later)
    wrong_ps = quecthing_login(
        product_key=product.product_key,
        product_secret="guess",
        device_name="867435053362828",
        device_secret="",
    )
    assert not check(iot, wrong_ps)
    assert iot.refusals[-1].endswith(
        f"not signed with the ProductSecret of {product.product_key!r}"
    )


# --- issue 9: every registration input is bounded and total ---------------------------------

DEEP = b"[" * 1000 + b"]" * 1000


def _registering_cloud() -> IotCloud:
    iot = IotCloud()
    iot.add_product(Vendor.ALIYUN, "a1Demo", "aliSecret")
    iot.add_product(Vendor.TXYUN, "ABCDEFGHIJ", "0123456789abcdefXYZ")
    return iot


@pytest.mark.parametrize(
    "body",
    [
        DEEP,
        b'{"deviceName": "d", "nonce": ' + b"9" * 5000 + b', "productId": "ABCDEFGHIJ", '
        b'"timestamp": 1, "signature": "s"}',
        b"[NaN]",
    ],
)
def test_a_tencent_registration_body_over_the_limits_is_refused_with_code_1001(
    body: bytes,
) -> None:
    """Deep nesting and huge numbers are Tencent's bad-request answer, not a crash."""
    status, answer = _registering_cloud().txyun_register(body, "application/json", now=1)
    assert (status, answer["code"]) == (200, 1001)
    assert "the body is not JSON within the limits" in answer["message"]
    assert len(answer["message"]) < 200


def test_registration_refusals_quote_at_most_a_short_cut_of_a_huge_field() -> None:
    """A 10 000-character product key or device name is named, not echoed whole."""
    iot = _registering_cloud()
    huge = "x" * 10_000
    form = urlencode(
        {
            "productKey": huge,
            "deviceName": "dtu0",
            "random": "1",
            "sign": "s",
            "signMethod": "hmacsha256",
        }
    ).encode()
    status, answer = iot.aliyun_register(form, "application/x-www-form-urlencoded")
    assert (status, answer["code"]) == (200, 6250)
    assert len(answer["message"]) < 200
    body = json.dumps(
        {"deviceName": "d", "nonce": 1, "productId": huge[:1000], "timestamp": 1, "signature": "s"}
    ).encode()
    status, answer = iot.txyun_register(body, "application/json", now=1)
    assert (status, answer["code"]) == (200, 1002)
    assert len(answer["message"]) < 200
    assert all(len(refusal) < 300 for refusal in iot.refusals)


@pytest.mark.parametrize(
    "parse",
    [
        parse_aliyun_register_answer,
        lambda body: parse_txyun_register_answer(body, "0123456789abcdef"),
    ],
)
def test_the_firmware_reads_a_hostile_registration_answer_as_a_value_error(
    parse: Callable[[bytes], str],
) -> None:
    """A registration answer nested 1000 deep or with a 5000-digit code is a ValueError
    (the channel's login fails, the unit runs on), never a RecursionError."""
    for body in (DEEP, b'{"code": ' + b"9" * 5000 + b"}"):
        with pytest.raises(ValueError, match="limits"):
            parse(body)
