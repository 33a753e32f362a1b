"""The XGC personality's fleet side, which also hosts the fleet's broker.

``XgcSide`` wraps the ``XgcCloudStack``: the embedded broker (or the user's) and
the XGC platform, whose project every fleet has (derived from the seed) and whose
console login ``vdtu cloud`` uses; its ``start_broker`` adds the other sides'
login checks (the IoT clouds' signed logins of QuecPython units) to the
platform's. A unit logs in to the embedded broker with its IMEI and the
project's device password, to the user's broker with that URL's login. The
fleet's project fills an empty ``project`` slot of an XGC unit's flash (a
project the host set with ``SET_PRJINFO`` is kept); ``--unprovisioned`` erases
it. The command probe is ``{key: n}`` on a unit's downlink topic, which its
host echoes back up as an uplink. ``XGC_SIDE`` adds the firmware's behaviour options to ``vdtu up``;
what the cloud console does for XGC units is ``vdtu.links.xgc_console``.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from vdtu.cloud.broker_auth import Authenticator
from vdtu.cloud.broker_url import BrokerUrl
from vdtu.cloud.xgc_api import TOPIC_ROOT, Channel, device_password, device_topic
from vdtu.firmware.xgc.codec import CodeFormat
from vdtu.firmware.xgc.options import CheckMode, Raw485Encoding, XgcOptions
from vdtu.firmware.xgc.personality import XGC
from vdtu.links.discovery import url_from_discovery
from vdtu.links.mqtt_xgc import MqttXgcCloud
from vdtu.links.side import LoginCheck, Probe, SharedBroker, SideContext
from vdtu.links.xgc_console import XGC_CONSOLE
from vdtu.links.xgc_stack import CloudSettings, XgcCloudStack, default_project
from vdtu.links.xgc_term import XGC_TERM
from vdtu.log import UnitLog
from vdtu.storage import TextFile


class XgcSide:
    """The XGC units' side of one fleet, and the host of its broker."""

    def __init__(self, context: SideContext) -> None:
        self.context = context
        self.project_id, self.project_secret = default_project(context.seed)
        self.stack = XgcCloudStack(
            context.clock,
            context.hub,
            CloudSettings(
                broker=context.broker,
                project_id=self.project_id,
                project_secret=self.project_secret,
                direct_login=context.direct_logins,
            ),
        )
        self.cloud: MqttXgcCloud | None = None

    @property
    def broker_url(self) -> BrokerUrl | None:
        return self.stack.broker_url

    @property
    def network(self) -> MqttXgcCloud | None:
        return self.cloud

    def unit_login(self, imei: str) -> tuple[str, str]:
        broker = self.context.broker
        if broker is None:
            return imei, device_password(self.project_secret, imei)
        return broker.username or "", broker.password or ""

    def login_check(self, check: Authenticator) -> Authenticator:
        return check  # the platform checks XGC logins itself

    async def start_broker(self, logins: Sequence[LoginCheck]) -> None:
        def checked(check: Authenticator) -> Authenticator:
            for login in logins:
                check = login(check)
            return check

        self.cloud = await self.stack.start(logins=checked)

    async def stop_broker(self) -> None:
        await self.stack.stop()

    @property
    def broker_paused(self) -> bool:
        return self.stack.broker_paused

    async def pause_broker(self) -> None:
        await self.stack.pause_broker()

    async def resume_broker(self) -> None:
        await self.stack.resume_broker()

    async def start(self, broker: SharedBroker) -> None:
        """Nothing more: ``start_broker`` started the platform its units reach."""

    async def stop(self) -> None:
        """Nothing yet: ``stop_broker`` stops the platform after the other sides."""

    def unit_options(self, given: object | None) -> object | None:
        return given

    def unit_files(self, imei: str) -> Mapping[str, TextFile]:
        return {}

    def prepare_files(self, files: Mapping[str, TextFile], imei: str, log: UnitLog) -> None:
        """An XGC unit keeps no named files."""

    def provision(self, flash: dict[str, Any]) -> bool:
        if self.context.provision:
            # The default only fills an empty slot: a project the host set is its data.
            project = {"pid": self.project_id, "secret": self.project_secret}
            return flash.setdefault("project", project) is project
        return flash.pop("project", None) is not None

    def unit_keys(self, files: Mapping[str, TextFile]) -> dict[str, Any]:
        return {}

    def discovery(self) -> dict[str, Any]:
        return {}

    def probe(self, imei: str, key: str) -> Probe:
        """``{key: n}`` on the unit's downlink topic: its host echoes it back up."""
        return Probe(topic=device_topic(self.project_id, imei, Channel.DOWN), key=key, fields={})

    def unit_uplink_topic(self, imei: str) -> str:
        return device_topic(self.project_id, imei, Channel.UP)

    def broker_discovery(self) -> dict[str, Any]:
        return self.stack.discovery()

    def console_login(self) -> BrokerUrl:
        """On the embedded broker the console login (``vdtu-console`` and this run's token;
        its access rule lets it read and write every topic), with ``--broker`` that URL's
        own login."""
        return url_from_discovery(self.stack.discovery())


class XgcSideEntry:
    """The XGC personality's fleet side in the registry."""

    __slots__ = ()
    name = XGC.name
    watch_topic = f"{TOPIC_ROOT}/#"
    uplink_topic = f"{TOPIC_ROOT}/+/+/{Channel.UP.value}"
    console = XGC_CONSOLE
    term = XGC_TERM

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("XGC units (--profile xgc or mix)")
        group.add_argument(
            "--check",
            choices=[m.value for m in CheckMode],
            default=CheckMode.STRICT.value,
            help="what a wrong check code does (default strict)",
        )
        group.add_argument(
            "--code-format",
            choices=[f.value for f in CodeFormat],
            default=CodeFormat.DECIMAL.value,
            help="how the DTU prints check codes (default decimal)",
        )
        group.add_argument(
            "--uplink-queue",
            type=int,
            default=1000,
            help="host messages kept per unit while the cloud is unreachable (default 1000)",
        )
        group.add_argument(
            "--keepalive", type=int, default=60, help="MQTT keep-alive, s (default 60)"
        )
        group.add_argument(
            "--raw485",
            choices=[e.value for e in Raw485Encoding],
            default=Raw485Encoding.HEX.value,
            help="how SEND_RAW_485 content becomes bus bytes (default hex)",
        )

    def options(self, args: argparse.Namespace) -> XgcOptions:
        return XgcOptions(
            check_mode=CheckMode(args.check),
            code_format=CodeFormat(args.code_format),
            raw485=Raw485Encoding(args.raw485),
            uplink_queue=args.uplink_queue,
            keepalive_s=args.keepalive,
        )

    def side(self, context: SideContext) -> XgcSide:
        return XgcSide(context)


XGC_SIDE = XgcSideEntry()
