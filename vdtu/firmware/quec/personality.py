"""The QuecPython personality's registry entry: its builder and its simulated host's codec.

``QUEC`` builds a ``QuecFirmware`` from the unit's ``BuildContext`` (the network must
be a ``QuecNet``; ``dtu_config.json`` is the flash file of that name) and tells a
simulated host how to send an uplink: a command-mode frame on channel 1 with topic id
0 (``1,0,len,crc32,<json>``), which the default config publishes as
``{"data": "<json>"}``. A QuecPython unit answers the cloud's command probe (code 0)
by itself, so the host answers nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vdtu.errors import ConfigError
from vdtu.firmware.personality import BuildContext, Firmware, HostCodec, reaches
from vdtu.firmware.quec.config import DtuConfig, default_config, load_config
from vdtu.firmware.quec.firmware import DEFAULT_OPTIONS, QuecFirmware, QuecOptions
from vdtu.firmware.quec.frames import CommandFrame
from vdtu.firmware.quec.net import QuecNet
from vdtu.storage import MemoryTextFile

CONFIG_FILE = "dtu_config.json"
"""The flash file that holds the unit's configuration."""
MODEL = "EC600N-CN"
"""The module a QuecPython unit runs on (one of those its firmware lists)."""


def _merged(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        known = merged.get(key)
        if isinstance(value, Mapping) and isinstance(known, Mapping):
            merged[key] = _merged(known, value)
        else:
            merged[key] = value
    return merged


def local_default(imei: str) -> DtuConfig:
    """The config a unit writes when nothing else is given: MQTT to 127.0.0.1:1883."""
    return default_config(imei, broker_host="127.0.0.1", broker_port=1883)


@dataclass(frozen=True, slots=True)
class _QuecHost:
    """A QuecPython DTU's host sends command-mode frames; the DTU answers the cloud's
    commands, applies configurations and runs firmware jobs itself (code 62), and polls its
    Modbus slaves itself (Modbus mode), so its host has nothing to answer or to poll."""

    def frame_uplink(self, text: str) -> bytes:
        return CommandFrame(cid="1", topic_id="0", data=text).encode()

    def answers(self, data: bytes) -> list[bytes]:
        return []

    def frame_poll(self, address: int, function: int, register: int, value: int) -> bytes | None:
        return None


@dataclass(frozen=True, slots=True)
class QuecPersonality:
    """The QuecPython DTU."""

    name: str = "quec"
    model: str = MODEL
    options_type: type = QuecOptions
    load_test_options: object | None = None

    def build(self, context: BuildContext) -> Firmware:
        options = context.options or DEFAULT_OPTIONS
        if not isinstance(options, QuecOptions):
            raise TypeError(f"a quec unit takes QuecOptions, not {type(options).__name__}")
        net = context.network
        if net is not None and not reaches(net, QuecNet):
            raise TypeError(f"a quec unit reaches a QuecNet, not {type(net).__name__}")
        return QuecFirmware(
            context.env,
            context.rng,
            context.hardware,
            flash=context.flash,
            config_file=context.files.get(CONFIG_FILE) or MemoryTextFile(),
            default_config=options.default_config or local_default,
            log=context.log,
            net=net,
            options=options,
        )

    def host_codec(self, probe_key: str, *, jobs: bool = False) -> HostCodec:
        return _QuecHost()

    def configured(
        self, options: object | None, imei: str, changes: Mapping[str, Any]
    ) -> dict[str, str]:
        """The unit's default dtu_config.json (its options' or vdtu's) with ``changes``
        merged in: a mapping merges into the mapping it meets, anything else replaces."""
        options = options or QuecOptions()
        if not isinstance(options, QuecOptions):
            raise TypeError(f"a quec unit takes QuecOptions, not {type(options).__name__}")
        base = (options.default_config or local_default)(imei)
        try:
            config = load_config(_merged(base.to_json(), changes))
        except ConfigError as exc:
            raise ValueError(f"dtu_config.json: {exc}") from None
        return {CONFIG_FILE: json.dumps(config.to_json(), ensure_ascii=False, indent=4) + "\n"}


QUEC = QuecPersonality()
