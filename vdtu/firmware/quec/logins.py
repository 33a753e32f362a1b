"""How each MQTT-type channel logs in: the broker, the client id, the credentials, the topics.

* ``mqtt``: the config's url, port, clientID (the IMEI when empty, as v3 does),
  username and password.
* ``aliyun``: ``<ProductKey>.iot-as-mqtt.cn-shanghai.aliyuncs.com:1883`` with the
  firmware ``aLiYun`` module's signature (``iot_sign.aliyun_login``). One type, one
  secret (``tas``): the device first registers over HTTP (the v1 DTU's
  ``/auth/register/device``) and keeps the DeviceSecret it gets in its flash, so
  it registers only once.
* ``txyun``: ``<ProductId>.iotcloud.tencentdevices.com:1883`` with the
  ``TenCentYun`` module's signature; ``tas`` registers at
  ``ap-guangzhou.gateway.tencentdevices.com/register/dev`` and keeps the PSK.
* ``quecthing``: vdtu's MQTT stand-in for ``iot-south.quectel.com:1883`` (the
  Quectel cloud's wire protocol is not public), topics
  ``quecthing/<ProductKey>/<DeviceName>/down`` and ``.../up``.

The host names are the real ones; the network maps them to vdtu's local
counterparts (``vdtu.links.quec_net``). ``prepare_dial`` is a SimPy process body
because registration makes an HTTP request first.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import simpy

from vdtu.clock.rng import RandomSource
from vdtu.cloud.iot_sign import (
    aliyun_login,
    aliyun_register_form,
    parse_aliyun_register_answer,
    parse_txyun_register_answer,
    quecthing_login,
    quecthing_topics,
    txyun_login,
    txyun_register_body,
)
from vdtu.firmware.quec.channel_schema import (
    AliyunChannel,
    AuthType,
    MqttChannel,
    QuecthingChannel,
    TxyunChannel,
)
from vdtu.firmware.quec.net import HttpFailure, HttpRequest, HttpResult, MqttDial

ALIYUN_MQTT_HOST = "{product_key}.iot-as-mqtt.cn-shanghai.aliyuncs.com"
ALIYUN_REGISTER_URL = "http://iot-auth.cn-shanghai.aliyuncs.com/auth/register/device"
TXYUN_MQTT_HOST = "{product_key}.iotcloud.tencentdevices.com"
TXYUN_REGISTER_URL = "http://ap-guangzhou.gateway.tencentdevices.com/register/dev"
QUECTHING_HOST = "iot-south.quectel.com"
CLOUD_PORT = 1883
TXYUN_LOGIN_LIFETIME_S = 3600
"""A Tencent login is valid for an hour from the device's clock (``TenCentYun``)."""

MqttTypeChannel = MqttChannel | AliyunChannel | TxyunChannel | QuecthingChannel


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginNeeds:
    """What logins take from the unit."""

    imei: str
    now_s: int
    """Unix time from the modem's network clock."""
    rng: RandomSource
    secrets: Mapping[str, str] = field(default_factory=dict)
    """Secrets saved by earlier dynamic registrations, by ``secret_key``."""
    save_secret: Callable[[str, str], None] = lambda _key, _secret: None
    """Keep a registered secret in the flash."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginFailed:
    reason: str


def secret_key(channel: AliyunChannel | TxyunChannel) -> str:
    """The flash key of a dynamically registered secret: ``aliyun:<pk>:<dn>``."""
    return f"{channel.protocol}:{channel.product_key}:{channel.device_name}"


def quecthing_device(channel: QuecthingChannel, imei: str) -> str:
    """The quecthing device key: the configured one, or the IMEI (the platform's default)."""
    return channel.device_name or imei


def channel_topics(
    channel: MqttTypeChannel, needs: LoginNeeds
) -> tuple[Mapping[str, str], Mapping[str, str]]:
    """(subscribe, publish): topic id -> topic (a channel's own read-only tables when it
    names its topics, not copies: a driver keeps them for as long as it runs)."""
    if isinstance(channel, QuecthingChannel):
        down, up = quecthing_topics(channel.product_key, quecthing_device(channel, needs.imei))
        return {"0": down}, {"0": up}
    return channel.subscribe, channel.publish


Request = Callable[[HttpRequest], simpy.Event]
"""Makes an HTTP request; the event's value is the ``HttpResult``."""


def prepare_dial(
    channel: MqttTypeChannel, needs: LoginNeeds, request: Request
) -> Generator[simpy.Event, Any, MqttDial | LoginFailed]:
    """Work out the connection for ``channel`` (registering first when it must).

    A login the signing functions cannot build (no secret at all, a product id
    Tencent would not issue) is a ``LoginFailed`` naming the reason.
    """
    try:
        return (yield from _prepare(channel, needs, request))
    except ValueError as exc:
        return LoginFailed(reason=f"{channel.protocol} login: {exc}")


def _prepare(
    channel: MqttTypeChannel, needs: LoginNeeds, request: Request
) -> Generator[simpy.Event, Any, MqttDial | LoginFailed]:
    subscribe, _publish = channel_topics(channel, needs)
    subscriptions = tuple((topic, channel.qos) for topic in subscribe.values())
    match channel:
        case MqttChannel():
            return MqttDial(
                host=channel.url,
                port=channel.port,
                client_id=channel.client_id or needs.imei,
                username=channel.username or None,
                password=channel.password or None,
                keepalive_s=channel.effective_keep_alive_s,
                clean_session=channel.clean_session,
                subscriptions=subscriptions,
            )
        case AliyunChannel():
            secret = yield from _device_secret(channel, needs, request)
            if isinstance(secret, LoginFailed):
                return secret
            login = aliyun_login(
                product_key=channel.product_key,
                device_name=channel.device_name,
                device_secret=secret,
                client_id=channel.client_id or needs.imei,
            )
            host = ALIYUN_MQTT_HOST.format(product_key=channel.product_key)
        case TxyunChannel():
            secret = yield from _device_secret(channel, needs, request)
            if isinstance(secret, LoginFailed):
                return secret
            login = txyun_login(
                product_id=channel.product_key,
                device_name=channel.device_name,
                psk_b64=secret,
                connid=_digits(needs.rng),
                expiry=needs.now_s + TXYUN_LOGIN_LIFETIME_S,
            )
            host = TXYUN_MQTT_HOST.format(product_key=channel.product_key)
        case QuecthingChannel():
            login = quecthing_login(
                product_key=channel.product_key,
                product_secret=channel.product_secret,
                device_name=quecthing_device(channel, needs.imei),
                device_secret=channel.device_secret,
            )
            host = QUECTHING_HOST
    return MqttDial(
        host=host,
        port=CLOUD_PORT,
        client_id=login.client_id,
        username=login.username,
        password=login.password,
        keepalive_s=channel.effective_keep_alive_s,
        clean_session=channel.clean_session if not isinstance(channel, QuecthingChannel) else True,
        subscriptions=subscriptions,
    )


def _digits(rng: RandomSource) -> int:
    """Five random integers 1..10 written one after the other, as the firmware's nonces are."""
    return int("".join(str(rng.randint(1, 10)) for _ in range(5)))


def _device_secret(
    channel: AliyunChannel | TxyunChannel, needs: LoginNeeds, request: Request
) -> Generator[simpy.Event, Any, str | LoginFailed]:
    if channel.auth_type is AuthType.MOS:
        return channel.device_secret
    key = secret_key(channel)
    saved = needs.secrets.get(key)
    if saved:
        return saved
    if isinstance(channel, AliyunChannel):
        form = aliyun_register_form(
            product_key=channel.product_key,
            device_name=channel.device_name,
            product_secret=channel.product_secret,
            random=needs.rng.randint(0, 99999),
        )
        outgoing = HttpRequest(
            method="POST",
            url=ALIYUN_REGISTER_URL,
            body=urlencode(form).encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    else:
        body = txyun_register_body(
            product_id=channel.product_key,
            device_name=channel.device_name,
            product_secret=channel.product_secret,
            nonce=_digits(needs.rng),
            timestamp=needs.now_s,
        )
        outgoing = HttpRequest(
            method="POST",
            url=TXYUN_REGISTER_URL,
            body=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
        )
    result: HttpResult = yield request(outgoing)
    if isinstance(result, HttpFailure):
        return LoginFailed(reason=f"{channel.protocol} registration failed: {result.reason}")
    try:
        if isinstance(channel, AliyunChannel):
            secret = parse_aliyun_register_answer(result.body)
        else:
            secret = parse_txyun_register_answer(result.body, channel.product_secret)
    except ValueError as exc:
        return LoginFailed(
            reason=f"{channel.protocol} registration refused (HTTP {result.status}): {exc}"
        )
    needs.save_secret(key, secret)
    return secret
