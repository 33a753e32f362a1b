"""The QuecPython personality's fleet side: its cloud counterparts and ``dtu_config.json``.

``QuecSide`` wraps the ``QuecCloudStack`` (the IoT clouds' services, the data
servers, and the ``RealQuecNet`` its units reach, whose cloud broker names lead to
the fleet's broker); its login check lets the broker check the IoT clouds' signed
logins. A unit keeps ``<state_dir>/<IMEI>/dtu_config.json``, which the user may
edit: every one is checked before the fleet starts (a bad one is a ``ConfigError``
naming the file and the field), and a default an older vdtu wrote (``127.0.0.1``
and that run's port) is moved to ``broker.vdtu``, saying so at INFO. A unit
without a config starts with ``--quec-config``'s, else vdtu's default: MQTT to the
fleet's broker by its local name ``broker.vdtu`` (so the file outlives this run's
port) with the unit's login on it. The command probe is command code 0 (the IMEI),
which a unit answers by itself with the command's ``msg_id``. What the cloud console
does for QuecPython units is ``vdtu.links.quec_console``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from vdtu.cloud.broker_auth import Authenticator
from vdtu.errors import ConfigError
from vdtu.firmware.quec.commands import CommandCode
from vdtu.firmware.quec.config import (
    PUBLISH_TOPIC,
    SUBSCRIBE_TOPIC,
    DtuConfig,
    default_config,
    load_config,
)
from vdtu.firmware.quec.firmware import QuecOptions
from vdtu.firmware.quec.personality import CONFIG_FILE, QUEC
from vdtu.links.quec_console import QUEC_CONSOLE
from vdtu.links.quec_net import RealQuecNet
from vdtu.links.quec_stack import (
    BROKER_NAME,
    BROKER_NAME_PORT,
    QuecCloudStack,
    migrate_default_channel,
)
from vdtu.links.quec_term import QUEC_TERM
from vdtu.links.side import Probe, SharedBroker, SideContext
from vdtu.log import LogLevel, UnitLog
from vdtu.storage import FlashError, HostTextFile, MemoryTextFile, TextFile


class QuecSide:
    """The QuecPython units' side of one fleet."""

    def __init__(self, context: SideContext) -> None:
        self.context = context
        self.stack = QuecCloudStack(context.clock, context.hub, seed=context.seed, broker=None)
        self.net: RealQuecNet | None = None
        self._broker: SharedBroker | None = None

    @property
    def network(self) -> RealQuecNet | None:
        return self.net

    def login_check(self, check: Authenticator) -> Authenticator:
        return self.stack.login_check(check)

    async def start(self, broker: SharedBroker) -> None:
        self._broker = broker
        self.stack.broker = broker.broker_url
        given = self.context.broker
        self.net = await self.stack.start(tls_ca=given.ca_file if given else None)

    async def stop(self) -> None:
        await self.stack.stop()

    def unit_options(self, given: object | None) -> QuecOptions:
        options = given if isinstance(given, QuecOptions) else QuecOptions()
        if options.default_config is not None:
            return options
        return replace(options, default_config=self._vdtu_default)

    def _vdtu_default(self, imei: str) -> DtuConfig:
        assert self._broker is not None, "start() first"
        username, password = self._broker.unit_login(imei)
        return default_config(
            imei,
            broker_host=BROKER_NAME,
            broker_port=BROKER_NAME_PORT,
            broker_username=username,
            broker_password=password,
        )

    def unit_files(self, imei: str) -> Mapping[str, TextFile]:
        if self.context.state_dir is None:
            return {CONFIG_FILE: MemoryTextFile()}
        file = HostTextFile(self.context.state_dir / imei / CONFIG_FILE)
        text = file.read()
        if text is not None:
            try:
                load_config(text)
            except ConfigError as exc:
                raise ConfigError(f"{file.path}: {exc}") from None
        return {CONFIG_FILE: file}

    def prepare_files(self, files: Mapping[str, TextFile], imei: str, log: UnitLog) -> None:
        """Move a default config an older vdtu wrote (``127.0.0.1`` and that run's port) to
        ``broker.vdtu``, saying so at INFO; a user's config is left as it is."""
        file = files[CONFIG_FILE]
        text = file.read()
        if text is None:
            return
        stored = load_config(text)  # checked by unit_files
        migrated = migrate_default_channel(stored, self._vdtu_default(imei))
        if migrated is None:
            return
        old = stored.conf["1"].to_json()
        was = f"channel 1 is vdtu's default to {old['url']}:{old['port']} (an older vdtu's broker)"
        now = self.context.clock.env.now
        try:  # the form the firmware writes a file a user reads in: indented
            file.write(json.dumps(migrated.to_json(), ensure_ascii=False, indent=4) + "\n")
        except FlashError as exc:
            log.write(now, LogLevel.ERROR, "config", f"{was}; not moved: {exc}")
            return
        log.write(
            now,
            LogLevel.INFO,
            "config",
            f"dtu_config.json: {was}; now {BROKER_NAME}, the fleet's broker",
        )

    def provision(self, flash: dict[str, Any]) -> bool:
        return False  # a QuecPython unit's settings are its dtu_config.json

    def unit_keys(self, files: Mapping[str, TextFile]) -> dict[str, Any]:
        path = files[CONFIG_FILE].path
        return {"config": None if path is None else str(path)}

    def discovery(self) -> dict[str, Any]:
        return {"quec": self.stack.discovery()}

    def probe(self, imei: str, key: str) -> Probe:
        """Command code 0 (the IMEI) on the unit's default subscribe topic: the unit answers
        by itself, with the command's ``msg_id``."""
        return Probe(
            topic=SUBSCRIBE_TOPIC.format(imei=imei),
            key="msg_id",
            fields={"cmd_code": int(CommandCode.GET_IMEI)},
        )

    def unit_uplink_topic(self, imei: str) -> str:
        return PUBLISH_TOPIC.format(imei=imei)


def read_config(path: Path) -> DtuConfig:
    """``--quec-config FILE``, checked; a bad file is a ConfigError naming it and the field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--quec-config {path}: {exc.strerror}") from None
    try:
        return load_config(text)
    except ConfigError as exc:
        raise ConfigError(f"--quec-config {path}: {exc}") from None


class QuecSideEntry:
    """The QuecPython personality's fleet side in the registry."""

    __slots__ = ()
    name = QUEC.name
    watch_topic = f"{PUBLISH_TOPIC.split('/', 1)[0]}/#"
    uplink_topic = PUBLISH_TOPIC.format(imei="+")
    console = QUEC_CONSOLE
    term = QUEC_TERM

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("QuecPython units (--profile quec or mix)")
        group.add_argument(
            "--quec-config",
            type=Path,
            default=None,
            metavar="FILE",
            help="the dtu_config.json a QuecPython unit starts with when it has none "
            "(default: an MQTT channel to the broker)",
        )

    def options(self, args: argparse.Namespace) -> QuecOptions | None:
        if args.quec_config is None:
            return None
        config = read_config(args.quec_config)
        return QuecOptions(default_config=lambda _imei: config)

    def side(self, context: SideContext) -> QuecSide:
        return QuecSide(context)


QUEC_SIDE = QuecSideEntry()
