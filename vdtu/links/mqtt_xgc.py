"""The XGC cloud for real: the platform over HTTP and the broker over MQTT, on the asyncio loop.

``MqttXgcCloud`` implements the firmware's ``XgcCloud``. Credentials come from the
platform's HTTP endpoint (``post_json``, a short task per request), or, with
``direct_login``, from the local platform's same endpoint called in this process
(``XgcPlatform.answer_request``: the same request, the same answer, its delay and its
conditions, without a TCP connection, h11, a task per request and the JSON either way;
what a load test of the broker needs, where the platform is vdtu's own and nobody watches
its HTTP). A direct request of a unit with no link or platform conditions is answered from
the loop's next turn, with no task; connections are
``MqttLink``s of the process's one ``MqttHub``, one link per connection attempt.
Every result and every message enters the simulation through ``Clock.inject``, so
the firmware sees them in sim time like any other outside input.

``close()`` on a connection aborts it (no DISCONNECT): the broker publishes the
will, as it would for a device that lost power or coverage.

A unit's link conditions reach its connection's ``MqttLink`` (``impair``, ``reset``:
``vdtu.net.mqtt``). Its credential request is an HTTP exchange of its own: under a
blackhole or a connect timeout it gets no answer and fails at ``HTTP_TIMEOUT_S``; under
latency it is answered one shaped round trip later. The platform's conditions are the
local ``XgcPlatform``'s, per IMEI (``set_platform_conditions``); a direct request crosses
the unit's impaired link the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from vdtu.clock import Clock, FaultDomain
from vdtu.cloud.http_client import HttpError, post_json
from vdtu.cloud.platform import XgcPlatform
from vdtu.cloud.xgc_api import MQTT_INFO_PATH, MqttInfo
from vdtu.errors import ConfigError
from vdtu.firmware.xgc.cloud import (
    CloudHandler,
    InfoRefused,
    InfoResult,
    InfoUnreachable,
    Will,
)
from vdtu.net.conditions import Impairment, Pacer, PlatformConditions
from vdtu.net.mqtt import LinkState, MqttHub, MqttLink
from vdtu.net.mqtt import Will as LinkWill

HTTP_TIMEOUT_S = 10.0
"""How long a credential request waits for its answer (``post_json``'s default)."""

REFUSAL_REASONS = ("not authorized", "bad user name or password")
"""CONNACK reasons that mean the credentials are wrong (ask the platform again)."""


class MqttConnection:
    """One connection attempt of one device, over an ``MqttLink``.

    The link's callbacks are this object's bound methods (about 50 bytes each; a lambda
    with its closure is about 200): a fleet holds one connection per unit.
    """

    __slots__ = ("clock", "domain", "handler", "link")

    def __init__(self, clock: Clock, link: MqttLink, handler: CloudHandler) -> None:
        self.clock = clock
        self.link = link
        self.handler = handler
        self.domain = clock.env.domain
        """The unit that connects (a connection is made in sim time, by its firmware)."""
        link.on_connected = self._connected
        link.on_connect_failed = self._failed
        link.on_disconnected = self._lost
        link.on_message = self._message
        link.on_published = self._published

    def _connected(self) -> None:
        self.clock.inject(self.handler.cloud_connected, domain=self.domain)

    def _lost(self, reason: str) -> None:
        self.clock.inject(self.handler.cloud_lost, reason, domain=self.domain)

    def _message(self, topic: str, payload: bytes) -> None:
        self.clock.inject(self.handler.cloud_message, topic, payload, domain=self.domain)

    def _published(self, mid: int) -> None:
        self.clock.inject(self.handler.cloud_published, mid, domain=self.domain)

    def _failed(self, reason: str) -> None:
        refused = any(text in reason.lower() for text in REFUSAL_REASONS)
        self.clock.inject(
            lambda: self.handler.cloud_connect_failed(reason, refused=refused), domain=self.domain
        )

    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool = False) -> int | None:
        mid = self.link.publish(topic, payload, qos, retain)
        return mid if qos > 0 else None

    def close(self) -> None:
        self.link.abort()
        self.link.close()

    def impair(self, impairment: Impairment | None) -> None:
        if self.link.state is not LinkState.CLOSED:
            self.link.impair(impairment)

    def reset(self) -> None:
        if self.link.state is not LinkState.CLOSED:
            self.link.reset()


class MqttXgcCloud:
    """The platform and broker a fleet's units reach, for real.

    Args:
        clock: the door into sim time.
        hub: the loop's MQTT hub.
        platform_url: the XGC platform's base URL (``http://127.0.0.1:PORT``).
        tls_ca: CA file for an ``mqtts`` broker (None: system CAs).
        platform: the local platform behind ``platform_url``, whose per-unit conditions
            ``set_platform_conditions`` sets (None: it cannot be given any).
        direct_login: ask ``platform`` in this process instead of over HTTP (see the
            module comment).

    Raises:
        ConfigError: ``direct_login`` without a ``platform``.
    """

    def __init__(
        self,
        clock: Clock,
        hub: MqttHub,
        *,
        platform_url: str,
        tls_ca: Path | None = None,
        platform: XgcPlatform | None = None,
        direct_login: bool = False,
    ) -> None:
        if direct_login and platform is None:
            raise ConfigError("direct_login needs vdtu's own XGC platform in this process")
        self.clock = clock
        self.hub = hub
        self.platform_url = platform_url
        self.tls_ca = tls_ca
        self.platform = platform
        self.direct_login = direct_login
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = self.hub.loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def fetch_mqtt_info(
        self,
        *,
        imei: str,
        project_id: str,
        project_secret: str,
        done: Callable[[InfoResult], None],
        impairment: Impairment | None = None,
    ) -> None:
        body = {"projectId": project_id, "projectSecret": project_secret, "imei": imei}
        domain = self.clock.env.domain
        platform = self.platform
        if (
            platform is None
            or not self.direct_login
            or impairment is not None
            or imei in platform.conditions
        ):
            self._spawn(self._fetch(body, done, domain, impairment))
            return
        # answered at once: no task, the result enters sim time from the loop's next turn
        answer = platform.answer_request(body)
        result = self._result(answer.status, answer.value)
        self.hub.loop.call_soon(partial(self.clock.inject, done, result, domain=domain))

    def set_platform_conditions(self, imei: str, conditions: PlatformConditions | None) -> None:
        """What the local platform does with unit ``imei``'s credential requests.

        Raises:
            ConfigError: this cloud has no local platform to tell.
        """
        if self.platform is None:
            raise ConfigError("the platform's conditions need vdtu's own XGC platform")
        if conditions is None:
            self.platform.set_conditions(imei)
        else:
            self.platform.set_conditions(imei, refuse=conditions.refuse, delay_s=conditions.delay_s)

    async def _fetch(
        self,
        body: dict[str, str],
        done: Callable[[InfoResult], None],
        domain: FaultDomain | None,
        impairment: Impairment | None,
    ) -> None:
        result: InfoResult
        url = self.platform_url + MQTT_INFO_PATH
        try:
            if impairment is not None:
                await _cross_link(impairment, len(str(body)))
            status, answer = await self._exchange(url, body)
            if impairment is not None:
                await _cross_link(impairment, len(str(answer)))
        except TimeoutError:
            result = InfoUnreachable(reason=f"no answer from {url} within {HTTP_TIMEOUT_S:g} s")
        except HttpError as exc:
            result = InfoUnreachable(reason=str(exc))
        else:
            result = self._result(status, answer)
        self.clock.inject(done, result, domain=domain)

    async def _exchange(self, url: str, body: dict[str, str]) -> tuple[int, Any]:
        """The platform's status and decoded answer, over HTTP or directly."""
        if self.platform is None or not self.direct_login:
            return await post_json(url, body, timeout_s=HTTP_TIMEOUT_S)
        answer = self.platform.answer_request(body)
        if answer.delay_s:
            await asyncio.sleep(min(answer.delay_s, HTTP_TIMEOUT_S))
            if answer.delay_s >= HTTP_TIMEOUT_S:
                raise TimeoutError
        return answer.status, answer.value

    @staticmethod
    def _result(status: int, answer: Any) -> InfoResult:
        """What the firmware learns from the platform's answer."""
        if status == 200:
            try:
                return MqttInfo.from_json(answer)
            except ValueError as exc:
                return InfoUnreachable(reason=f"bad answer from the platform: {exc}")
        if status in (401, 403):
            error = answer.get("error") if isinstance(answer, dict) else None
            return InfoRefused(reason=f"HTTP {status}: {error or 'refused'}")
        return InfoUnreachable(reason=f"HTTP {status} from the platform")

    def connect(
        self,
        info: MqttInfo,
        *,
        will: Will,
        subscriptions: Sequence[str],
        keepalive_s: int,
        handler: CloudHandler,
        impairment: Impairment | None = None,
    ) -> MqttConnection:
        link = MqttLink(
            self.hub,
            client_id=info.client_id,
            host=info.host,
            port=info.port,
            username=info.username,
            password=info.password,
            keepalive=keepalive_s,
            will=LinkWill(topic=will.topic, payload=will.payload, qos=1, retain=will.retain),
            tls_ca=self.tls_ca if info.tls else None,
        )
        for topic in subscriptions:
            link.subscribe(topic, qos=1)
        connection = MqttConnection(self.clock, link, handler)
        if impairment is not None:
            link.impair(impairment)
        link.connect()
        return connection

    async def wait_idle(self) -> None:
        """Wait for credential requests in flight (for a clean shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


async def _cross_link(impairment: Impairment, size: int) -> None:
    """Carry ``size`` bytes of an HTTP exchange across the unit's impaired link: a
    blackhole or a connect timeout holds them until the request's timeout, latency and
    a cap delay them (a fresh pacer: each request is a connection of its own)."""
    conditions = impairment.conditions
    if conditions.blocks_connect:
        await asyncio.sleep(HTTP_TIMEOUT_S)
        raise TimeoutError
    loop = asyncio.get_running_loop()
    now = loop.time()
    await asyncio.sleep(Pacer().arrival_at(now, size, conditions, impairment.rng) - now)
