"""Frames the DTU sends to the host on the cloud's behalf: DATA_PACK, NOTIFY_CONFIG, NOTIFY_OTA.

These travel with the ``$XGC#`` prefix (seed 004, "小机云数据通知" and "配置与远程升级
通知"). The seed's DATA_PACK cases: a JSON object becomes ``key:value`` pairs
(booleans as ``true``/``false``, numbers as JSON prints them, strings bare), and
a JSON string is sent as its text. The seed prints case one with a trailing ``;``
(``switch1:true;``) and case two without (``up:true;temperature:32``); vdtu omits
it by default and ``trailing_separator=True`` adds it, so both can be reproduced.
NOTIFY_OTA carries the download URL percent-encoded (``http%3A%2F%2F...``), with
every character outside ``A-Z a-z 0-9 - _ . ~`` encoded, as in the seed.

``downlink_frame`` picks the frame for a decoded cloud message (``xgc_api.downlink_value``)
by its channel, and refuses (``DownlinkRefusedError``) a config that is not an object or an
OTA order that lacks a field.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from vdtu.cloud.xgc_api import Channel, DownlinkRefusedError
from vdtu.firmware.xgc.codec import Frame, FrameKind
from vdtu.firmware.xgc.content import format_pairs, format_value


def data_pack(
    payload: Mapping[str, object] | str,
    *,
    sn: str,
    timestamp: str = "0",
    trailing_separator: bool = False,
) -> Frame:
    """A DATA_PACK frame for a cloud message (a JSON object or a plain string)."""
    if isinstance(payload, str):
        content = payload
    else:
        content = format_pairs(payload) + (";" if trailing_separator and payload else "")
    return Frame(
        kind=FrameKind.COMMAND, action="DATA_PACK", sn=sn, timestamp=timestamp, content=content
    )


def notify_config(
    config_version: int | str,
    settings: Mapping[str, object],
    *,
    sn: str,
    timestamp: str = "0",
) -> Frame:
    """A NOTIFY_CONFIG frame: ``configVersion:<v>`` then the custom settings."""
    content = f"configVersion:{format_value(config_version)}"
    if settings:
        content += ";" + format_pairs(settings)
    return Frame(
        kind=FrameKind.COMMAND, action="NOTIFY_CONFIG", sn=sn, timestamp=timestamp, content=content
    )


def notify_ota(
    *,
    fw_version: str,
    filename: str,
    md5: str,
    url: str,
    sn: str,
    config_version: int | str | None = None,
    timestamp: str = "0",
) -> Frame:
    """A NOTIFY_OTA frame; ``url`` is given plain and sent percent-encoded."""
    pairs: dict[str, object] = {}
    if config_version is not None:
        pairs["configVersion"] = config_version
    pairs |= {"fwVersion": fw_version, "filename": filename, "md5": md5, "url": quote(url, safe="")}
    return Frame(
        kind=FrameKind.COMMAND,
        action="NOTIFY_OTA",
        sn=sn,
        timestamp=timestamp,
        content=format_pairs(pairs),
    )


OTA_FIELDS = ("fwVersion", "filename", "md5", "url")
"""What an OTA order must give."""


def downlink_frame(
    channel: Channel,
    value: Mapping[str, object] | str,
    *,
    sn: str,
    trailing_separator: bool = False,
) -> Frame:
    """The frame a decoded cloud message on ``channel`` becomes for the host.

    Raises:
        DownlinkRefusedError: ``channel`` is not a downlink, a config or OTA message is not a
            JSON object, or an OTA order lacks one of ``OTA_FIELDS``.
    """
    if channel is Channel.DOWN:
        return data_pack(value, sn=sn, trailing_separator=trailing_separator)
    if channel not in (Channel.CONFIG, Channel.OTA):
        raise DownlinkRefusedError(f"{channel.value} is not a downlink channel")
    if isinstance(value, str):
        raise DownlinkRefusedError("expected a JSON object, not text")
    if channel is Channel.CONFIG:
        settings = dict(value)
        version = settings.pop("configVersion", "")
        return notify_config(format_value(version), settings, sn=sn)
    missing = [key for key in OTA_FIELDS if key not in value]
    if missing:
        raise DownlinkRefusedError(f"fields {missing} are missing")
    return notify_ota(
        fw_version=format_value(value["fwVersion"]),
        filename=format_value(value["filename"]),
        md5=format_value(value["md5"]),
        url=format_value(value["url"]),
        config_version=None
        if "configVersion" not in value
        else format_value(value["configVersion"]),
        sn=sn,
    )
