"""The local counterparts QuecPython units reach, and the name map that sends them there.

``QuecCloudStack.start`` brings up, on the running loop:

* one HTTP server for the clouds' side services: Aliyun's dynamic registration
  (``/auth/register/device``), Tencent's (``/register/dev``) and the firmware
  update server (``/v1/fota/...``);
* the data servers of the tcp, udp and http channel types (``data_servers``);
* the ``RealQuecNet`` the units use, whose ``resolve`` plays DNS: the Aliyun,
  Tencent and Quectel cloud broker names go to the fleet's broker, their
  registration and update names to the HTTP server; the local names
  ``broker.vdtu`` (the fleet's broker), ``tcp.vdtu``, ``udp.vdtu`` and
  ``http.vdtu`` (the data servers) let a ``dtu_config.json`` written before the
  fleet starts reach them without knowing their ports; every other name is
  dialled as it is. The default config names the broker ``broker.vdtu``, so it
  outlives the run that wrote it; ``migrate_default_channel`` moves a default an
  older vdtu wrote (``127.0.0.1`` and that run's port) to the local name.

The broker checks the Aliyun, Tencent and quecthing logins with ``IotCloud`` (see
``login_check``), so a unit with a wrong DeviceSecret is refused as the real cloud
would refuse it.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from vdtu.clock import Clock
from vdtu.cloud.broker_auth import Authenticator
from vdtu.cloud.broker_url import BrokerUrl
from vdtu.cloud.data_servers import HttpDataServer, TcpDataServer, UdpDataServer
from vdtu.cloud.fota_server import FotaService
from vdtu.cloud.http_server import Handler, HttpServer, Reply, Request
from vdtu.cloud.iot_cloud import ALIYUN_REGISTER_PATH, TXYUN_REGISTER_PATH, IotCloud
from vdtu.cloud.quec_fota import FOTA_HOST, FOTA_PORT
from vdtu.firmware.quec.config import DtuConfig
from vdtu.firmware.quec.logins import (
    ALIYUN_MQTT_HOST,
    ALIYUN_REGISTER_URL,
    QUECTHING_HOST,
    TXYUN_MQTT_HOST,
    TXYUN_REGISTER_URL,
)
from vdtu.links.quec_net import RealQuecNet
from vdtu.net.mqtt import MqttHub


def _host_of(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0]


BROKER_NAME = "broker.vdtu"
TCP_NAME = "tcp.vdtu"
UDP_NAME = "udp.vdtu"
HTTP_NAME = "http.vdtu"
BROKER_NAME_PORT = 1883
"""The port a config gives with ``broker.vdtu`` (MQTT's own; ``resolve`` puts the fleet's)."""
OLD_DEFAULT_HOST = "127.0.0.1"
"""Where an older vdtu's default channel pointed: the broker of that run, on a random port."""
_SERVICE_HOSTS = frozenset({_host_of(ALIYUN_REGISTER_URL), _host_of(TXYUN_REGISTER_URL), FOTA_HOST})
_ALIYUN_SUFFIX = ALIYUN_MQTT_HOST.removeprefix("{product_key}")
_TXYUN_SUFFIX = TXYUN_MQTT_HOST.removeprefix("{product_key}")


def migrate_default_channel(stored: DtuConfig, default: DtuConfig) -> DtuConfig | None:
    """``stored`` with ``default``'s channel ``"1"``, when ``stored``'s is an older vdtu's default.

    Older vdtu versions wrote the default channel with the broker's address of that run
    (``127.0.0.1`` and a random port), which nothing answers once vdtu restarts. A stored
    channel ``"1"`` that is ``default``'s channel ``"1"`` in every field but a
    ``127.0.0.1`` ``url`` and its ``port`` is such a default (the IMEI is in its client
    id, topics and login); everything else in ``stored`` (other settings, other channels,
    their order) is kept.

    Returns:
        The migrated config, or None when channel ``"1"`` is the user's (another host,
        topic, login, QoS ...) or already ``default``'s.
    """
    channel, wanted = stored.conf.get("1"), default.conf.get("1")
    if channel is None or wanted is None or channel == wanted:
        return None
    found, target = channel.to_json(), wanted.to_json()
    if found.get("protocol") != "mqtt" or found.get("url") != OLD_DEFAULT_HOST:
        return None
    if {**found, "url": target.get("url"), "port": target.get("port")} != target:
        return None
    conf = {key: wanted if key == "1" else value for key, value in stored.conf.items()}
    return replace(stored, conf=conf)


class QuecCloudStack:
    """The IoT clouds' services, the data servers and the network of QuecPython units.

    Args:
        clock: the door into sim time.
        hub: the loop's MQTT hub.
        seed: the fleet seed (the IoT cloud's demo products derive from it).
        broker: where the cloud brokers' names lead (set before ``start``).
    """

    def __init__(self, clock: Clock, hub: MqttHub, *, seed: int, broker: BrokerUrl | None) -> None:
        self.clock = clock
        self.hub = hub
        self.broker = broker
        self.iot = IotCloud.for_seed(seed)
        self.fota = FotaService(f"http://{FOTA_HOST}:{FOTA_PORT}")
        routes: dict[tuple[str, str], Handler] = {
            ("POST", ALIYUN_REGISTER_PATH): self._aliyun_register,
            ("POST", TXYUN_REGISTER_PATH): self._txyun_register,
            **self.fota.routes(),
        }
        self.services = HttpServer(routes)
        self.tcp = TcpDataServer()
        self.udp = UdpDataServer()
        self.web = HttpDataServer()
        self.net: RealQuecNet | None = None

    def login_check(self, fallback: Authenticator) -> Authenticator:
        """The broker's authenticator: IoT-cloud logins checked here, the rest by ``fallback``."""
        return self.iot.authenticator(fallback, clock=time.time)

    async def start(self, *, tls_ca: Path | None = None) -> RealQuecNet:
        """Start the servers; returns the network the units use."""
        await self.services.start()
        await self.tcp.start()
        await self.udp.start()
        await self.web.start()
        self.net = RealQuecNet(self.clock, self.hub, resolve=self.resolve, tls_ca=tls_ca)
        return self.net

    def resolve(self, host: str, port: int) -> tuple[str, int]:
        """Where a unit's destination really is (the fleet's DNS)."""
        if host in _SERVICE_HOSTS:
            return "127.0.0.1", self.services.port
        ports = {TCP_NAME: self.tcp.port, UDP_NAME: self.udp.port, HTTP_NAME: self.web.port}
        if host in ports:
            return "127.0.0.1", ports[host]
        broker = self.broker
        if broker is not None and (
            host in (BROKER_NAME, QUECTHING_HOST) or host.endswith((_ALIYUN_SUFFIX, _TXYUN_SUFFIX))
        ):
            return broker.host, broker.port
        return host, port

    def discovery(self) -> dict[str, Any]:
        """What ``up.json`` says about the QuecPython side (servers and demo products)."""
        return {
            "services": self.services.url,
            "tcp": self.tcp.describe(),
            "udp": self.udp.describe(),
            "http": self.web.describe(),
            "products": [
                {
                    "vendor": product.vendor.value,
                    "product_key": product.product_key,
                    "product_secret": product.product_secret,
                }
                for product in self.iot.products()
            ],
        }

    async def stop(self) -> None:
        """Close the units' links, then the servers."""
        if self.net is not None:
            self.net.close()
            await self.net.wait_idle()
        await self.web.stop()
        await self.udp.stop()
        await self.tcp.stop()
        await self.services.stop()

    def _aliyun_register(self, request: Request) -> Reply:
        status, answer = self.iot.aliyun_register(
            request.body, request.headers.get("content-type", "")
        )
        return Reply.json(status, answer)

    def _txyun_register(self, request: Request) -> Reply:
        status, answer = self.iot.txyun_register(
            request.body, request.headers.get("content-type", ""), int(time.time())
        )
        return Reply.json(status, answer)
