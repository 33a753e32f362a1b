"""The XGC cloud for real: the platform over HTTP and the broker over MQTT, on the asyncio loop.

``MqttXgcCloud`` implements the firmware's ``XgcCloud``. Credentials come from the
platform's HTTP endpoint (``post_json``, a short task per request); connections are
``MqttLink``s of the process's one ``MqttHub``, one link per connection attempt.
Every result and every message enters the simulation through ``Clock.inject``, so
the firmware sees them in sim time like any other outside input.

``close()`` on a connection aborts it (no DISCONNECT): the broker publishes the
will, as it would for a device that lost power or coverage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from vdtu.clock import Clock, FaultDomain
from vdtu.cloud.http_client import HttpError, post_json
from vdtu.cloud.xgc_api import MQTT_INFO_PATH, MqttInfo
from vdtu.firmware.xgc.cloud import (
    CloudHandler,
    InfoRefused,
    InfoResult,
    InfoUnreachable,
    Will,
)
from vdtu.net.mqtt import MqttHub, MqttLink
from vdtu.net.mqtt import Will as LinkWill

REFUSAL_REASONS = ("not authorized", "bad user name or password")
"""CONNACK reasons that mean the credentials are wrong (ask the platform again)."""


class MqttConnection:
    """One connection attempt of one device, over an ``MqttLink``."""

    def __init__(self, clock: Clock, link: MqttLink, handler: CloudHandler) -> None:
        self.clock = clock
        self.link = link
        self.handler = handler
        self.domain = domain = clock.env.domain
        """The unit that connects (a connection is made in sim time, by its firmware)."""
        link.on_connected = lambda: clock.inject(handler.cloud_connected, domain=domain)
        link.on_connect_failed = self._failed
        link.on_disconnected = lambda reason: clock.inject(
            handler.cloud_lost, reason, domain=domain
        )
        link.on_message = lambda topic, payload: clock.inject(
            handler.cloud_message, topic, payload, domain=domain
        )
        link.on_published = lambda mid: clock.inject(handler.cloud_published, mid, domain=domain)

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


class MqttXgcCloud:
    """The platform and broker a fleet's units reach, for real.

    Args:
        clock: the door into sim time.
        hub: the loop's MQTT hub.
        platform_url: the XGC platform's base URL (``http://127.0.0.1:PORT``).
        tls_ca: CA file for an ``mqtts`` broker (None: system CAs).
    """

    def __init__(
        self, clock: Clock, hub: MqttHub, *, platform_url: str, tls_ca: Path | None = None
    ) -> None:
        self.clock = clock
        self.hub = hub
        self.platform_url = platform_url
        self.tls_ca = tls_ca
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
    ) -> None:
        body = {"projectId": project_id, "projectSecret": project_secret, "imei": imei}
        self._spawn(self._fetch(body, done, self.clock.env.domain))

    async def _fetch(
        self, body: dict[str, str], done: Callable[[InfoResult], None], domain: FaultDomain | None
    ) -> None:
        result: InfoResult
        try:
            status, answer = await post_json(self.platform_url + MQTT_INFO_PATH, body)
        except HttpError as exc:
            result = InfoUnreachable(reason=str(exc))
        else:
            if status == 200:
                try:
                    result = MqttInfo.from_json(answer)
                except ValueError as exc:
                    result = InfoUnreachable(reason=f"bad answer from the platform: {exc}")
            elif status in (401, 403):
                error = answer.get("error") if isinstance(answer, dict) else None
                result = InfoRefused(reason=f"HTTP {status}: {error or 'refused'}")
            else:
                result = InfoUnreachable(reason=f"HTTP {status} from the platform")
        self.clock.inject(done, result, domain=domain)

    def connect(
        self,
        info: MqttInfo,
        *,
        will: Will,
        subscriptions: Sequence[str],
        keepalive_s: int,
        handler: CloudHandler,
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
        link.connect()
        return connection

    async def wait_idle(self) -> None:
        """Wait for credential requests in flight (for a clean shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
