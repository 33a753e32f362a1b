"""The XGC units' side of the cloud console: their topics and the ``config`` and ``ota`` pushes.

An XGC unit's topics are ``xgc/<project>/<IMEI>/<channel>`` (``vdtu.cloud.xgc_api``;
docs/xgc-cloud.md), so everything sent to one needs the project (``--project`` or
``up.json``'s). ``send`` publishes on its ``down`` channel (the host gets DATA_PACK);
``config KEY=VALUE ...`` pushes a configuration (NOTIFY_CONFIG), its values typed as a
DATA_PACK's, with ``configVersion`` now in ms unless given; ``ota --url --version``
pushes an OTA task (NOTIFY_OTA), its file name the URL's unless given. ``watch`` takes
every channel of ``xgc/+/<IMEI>/#`` but the cloud's own (``down``, ``config``, ``ota``).
XGC units are the default kind: ``send`` has no flag for them.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from vdtu.cloud.xgc_api import (
    TOPIC_ROOT,
    Channel,
    device_topic,
    encode_json,
    parse_topic,
    uplink_json,
)
from vdtu.errors import ConfigError
from vdtu.firmware.xgc.personality import MODEL
from vdtu.links.console_side import ConsoleCloud, ConsoleCommand, WatchedMessage, push

TO_UNIT = (Channel.DOWN, Channel.CONFIG, Channel.OTA)
"""The channels the cloud sends on (``watch`` leaves them out)."""


def config_payload(pairs: list[str], version: int | None) -> dict[str, Any]:
    """``key=value`` arguments as a config push, values typed like DATA_PACK."""
    settings: dict[str, Any] = {
        "configVersion": version if version is not None else int(time.time() * 1000)
    }
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"config settings are key=value, not {pair!r}")
        typed = uplink_json(f"{key}:{value}")
        settings[key] = typed[key] if isinstance(typed, dict) else value
    return settings


class ConfigPush:
    """``vdtu cloud config IMEI KEY=VALUE ...``."""

    __slots__ = ()
    name = "config"
    help = "push configuration (the host gets NOTIFY_CONFIG)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("imei")
        parser.add_argument("settings", nargs="*", metavar="KEY=VALUE")
        parser.add_argument(
            "--config-version", type=int, default=None, help="configVersion (default: now in ms)"
        )

    async def run(self, cloud: ConsoleCloud, args: argparse.Namespace, out: TextIO) -> int:
        topic = device_topic(cloud.project(), args.imei, Channel.CONFIG)
        payload = encode_json(config_payload(args.settings, args.config_version))
        return await push(cloud, topic, payload, out)


class OtaPush:
    """``vdtu cloud ota IMEI --url U --version V``."""

    __slots__ = ()
    name = "ota"
    help = "push an OTA task (the host gets NOTIFY_OTA)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("imei")
        parser.add_argument("--url", required=True)
        parser.add_argument("--version", dest="fw_version", required=True)
        parser.add_argument("--filename", default=None, help="default: the URL's file name")
        parser.add_argument("--md5", default="", help="the firmware's md5")

    async def run(self, cloud: ConsoleCloud, args: argparse.Namespace, out: TextIO) -> int:
        topic = device_topic(cloud.project(), args.imei, Channel.OTA)
        ota = {
            "fwVersion": args.fw_version,
            "filename": args.filename or Path(args.url.split("?")[0]).name,
            "md5": args.md5,
            "url": args.url,
        }
        return await push(cloud, topic, encode_json(ota), out)


class XgcConsole:
    """The console's side of XGC units."""

    __slots__ = ()
    kind = "XGC"
    article = "an"
    commands: tuple[ConsoleCommand, ...] = (ConfigPush(), OtaPush())
    send_flag = None
    refusal_hint = ""

    def downlink_topic(self, cloud: ConsoleCloud, imei: str) -> str:
        return device_topic(cloud.project(), imei, Channel.DOWN)

    def job(
        self, project: str | None, imei: str, kind: str, fields: Mapping[str, Any], now_ms: int
    ) -> tuple[str, bytes]:
        if project is None:
            raise ValueError("no project to address the unit in")
        if kind == "config":
            return device_topic(project, imei, Channel.CONFIG), encode_json(
                {"configVersion": now_ms, **fields}
            )
        version = str(fields["version"])
        order = {
            "fwVersion": version,
            "filename": fields.get("filename") or f"{MODEL}_{version}.bin",
            "md5": fields.get("md5") or hashlib.md5(version.encode()).hexdigest(),
            "url": fields.get("url") or f"http://files.example.com/xgc/{version}.bin",
        }
        return device_topic(project, imei, Channel.OTA), encode_json(order)

    def watch_filter(self, imei: str | None) -> str:
        return f"{TOPIC_ROOT}/+/{imei or '+'}/#"

    def watched(self, topic: str, payload: bytes) -> WatchedMessage | None:
        parsed = parse_topic(topic)
        if parsed is None or parsed[2] in TO_UNIT:
            return None
        project, imei, channel = parsed
        return WatchedMessage(project, imei, channel.value, payload)


XGC_CONSOLE = XgcConsole()
