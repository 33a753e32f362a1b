"""Everything an XGC fleet's cloud needs in one process: broker, platform, MQTT hub, device link.

``XgcCloudStack.start`` brings up, on the running loop: the embedded amqtt broker
(unless the user named a broker URL), the local XGC platform with its project,
and the ``MqttXgcCloud`` the units use. ``discovery()`` is what ``vdtu up`` writes
for the cloud console (``vdtu cloud ...``) to find the broker and log in.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vdtu.clock import Clock
from vdtu.cloud.broker import EmbeddedBroker
from vdtu.cloud.broker_acl import FleetAccess, QuecTopics
from vdtu.cloud.broker_auth import Authenticator
from vdtu.cloud.broker_url import BrokerUrl
from vdtu.cloud.platform import CONSOLE_USER, BrokerAddress, XgcPlatform
from vdtu.errors import ConfigError
from vdtu.firmware.quec.config import PUBLISH_TOPIC, SUBSCRIBE_TOPIC
from vdtu.links.mqtt_xgc import MqttXgcCloud
from vdtu.net.mqtt import MqttHub


def default_project(seed: int) -> tuple[str, str]:
    """The project ``vdtu up`` creates for fleet ``seed``: (ProjectId, ProjectSecret), stable."""
    rng = random.Random(f"project:{seed}")
    project_id = "1000" + "".join(rng.choice("0123456789abcdef") for _ in range(16))
    secret = "".join(rng.choice("0123456789ABCDEF") for _ in range(40))
    return project_id, secret


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudSettings:
    """Which broker and project a fleet uses."""

    broker: BrokerUrl | None = None
    """None: start the embedded broker on 127.0.0.1."""
    project_id: str
    project_secret: str
    direct_login: bool = False
    """Units ask the local platform for their login in this process, not over HTTP."""


class XgcCloudStack:
    """Broker, platform and device link of one process."""

    def __init__(self, clock: Clock, hub: MqttHub, settings: CloudSettings) -> None:
        self.clock = clock
        self.hub = hub
        self.settings = settings
        self.broker: EmbeddedBroker | None = None
        self.platform = XgcPlatform(
            projects={settings.project_id: settings.project_secret},
            broker=BrokerAddress(host="127.0.0.1", port=1),
        )
        self.cloud: MqttXgcCloud | None = None
        self.broker_url: BrokerUrl | None = None

    async def start(
        self, *, logins: Callable[[Authenticator], Authenticator] | None = None
    ) -> MqttXgcCloud:
        """Start what is needed; returns the cloud the units use.

        Args:
            logins: wraps the embedded broker's check of the platform's logins with
                more (the IoT clouds' signed logins of QuecPython units).
        """
        external = self.settings.broker
        if external is None:
            check = self.platform.authenticate
            self.broker = EmbeddedBroker(
                authenticator=logins(check) if logins else check, access=self.access()
            )
            await self.broker.start()
            self.broker_url = self.broker.url
            self.platform.broker = BrokerAddress(host="127.0.0.1", port=self.broker.port)
        else:
            self.broker_url = external
            self.platform.broker = BrokerAddress(
                host=external.host, port=external.port, tls=external.tls
            )
            if external.username is not None:
                self.platform.device_login = (external.username, external.password)
        await self.platform.start()
        tls_ca = external.ca_file if external is not None else None
        self.cloud = MqttXgcCloud(
            self.clock,
            self.hub,
            platform_url=self.platform.url,
            tls_ca=tls_ca,
            platform=self.platform,
            direct_login=self.settings.direct_login,
        )
        return self.cloud

    def access(self) -> FleetAccess:
        """The embedded broker's access rule: the console may do everything, a unit only
        its own topics (``vdtu.cloud.broker_acl``)."""
        return FleetAccess(
            projects=self.platform.projects,
            admins=(CONSOLE_USER,),
            quec=QuecTopics(uplink=PUBLISH_TOPIC, downlink=SUBSCRIBE_TOPIC),
        )

    def discovery(self) -> dict[str, Any]:
        """How a console reaches this broker (written to ``up.json``; contains a secret)."""
        assert self.broker_url is not None, "start() first"
        url = self.broker_url
        username: str | None = url.username
        password: str | None = url.password
        if self.broker is not None:
            username, password = CONSOLE_USER, self.platform.console_token
        return {
            "broker": {
                "scheme": url.scheme.value,
                "host": url.host,
                "port": url.port,
                "ca_file": str(url.ca_file) if url.ca_file else None,
            },
            "username": username,
            "password": password,
            "project": self.settings.project_id,
            "platform": self.platform.url,
        }

    @property
    def broker_paused(self) -> bool:
        """Whether the embedded broker is stopped by ``pause_broker``."""
        return self.broker is not None and not self.broker.running and self.broker_url is not None

    async def pause_broker(self) -> None:
        """Stop the embedded broker until ``resume_broker`` (the ``broker-stop`` fault).

        Raises:
            ConfigError: the fleet uses the user's broker, which vdtu does not control.
        """
        if self.broker is None:
            raise ConfigError(
                "broker-stop needs the embedded broker; this fleet uses the broker given "
                "with --broker (stop that one yourself)"
            )
        await self.broker.stop()

    async def resume_broker(self) -> None:
        """Start the paused embedded broker again on its port (nothing if not paused).

        Raises:
            ConfigError: the port was taken meanwhile.
        """
        if self.broker_paused:
            assert self.broker is not None
            await self.broker.restart()

    async def stop(self) -> None:
        """Stop the platform and the embedded broker (the units are stopped first)."""
        if self.cloud is not None:
            await self.cloud.wait_idle()
        await self.platform.stop()
        if self.broker is not None:
            await self.broker.stop()
