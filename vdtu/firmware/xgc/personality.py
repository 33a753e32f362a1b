"""The XGC personality's registry entry: its builder and its simulated host's codec.

``XGC`` builds an ``XgcFirmware`` from the unit's ``BuildContext`` (the network must
be an ``XgcCloud``: the platform and broker the unit reaches). A simulated host sends
an uplink as a ``DATA_PACK`` frame whose content is the JSON object's pairs
(``{"u": 1, "s": 2}`` -> ``u:1;s:2``), which the unit publishes typed again as that
object. It answers the cloud's command probe: a ``DATA_PACK`` from the cloud whose
content starts with ``<probe key>:`` goes straight back up. Its frame reader is made
on the first probe it sees, so a host that is never probed keeps none.
"""

from __future__ import annotations

import json

from vdtu.firmware.personality import BuildContext, Firmware, HostCodec
from vdtu.firmware.xgc.cloud import XgcCloud
from vdtu.firmware.xgc.codec import CodeFormat, Frame, FrameKind, FrameReader, FrameReceived
from vdtu.firmware.xgc.firmware import XgcFirmware
from vdtu.firmware.xgc.options import XgcOptions

MODEL = "XGC-RG88C"
"""The model an XGC unit reports (``AT+CGMM``)."""


def data_pack(content: str) -> bytes:
    """A host's ``DATA_PACK`` frame with ``content`` (hex check code, as hosts write it)."""
    frame = Frame(
        kind=FrameKind.COMMAND, action="DATA_PACK", sn="0", timestamp="0", content=content
    )
    return frame.encode(CodeFormat.HEX)


class _XgcHost:
    __slots__ = ("_probe", "_reader")

    def __init__(self, probe_key: str) -> None:
        self._probe = probe_key
        self._reader: FrameReader | None = None

    def frame_uplink(self, text: str) -> bytes:
        return data_pack(";".join(f"{key}:{value}" for key, value in json.loads(text).items()))

    def answers(self, data: bytes) -> list[bytes]:
        if self._reader is None:
            if self._probe.encode() not in data:
                return []
            self._reader = FrameReader()
        self._reader.receive_data(data)
        answers = [
            data_pack(event.frame.content or "")
            for event in self._reader.events()
            if isinstance(event, FrameReceived)
            and event.frame.action == "DATA_PACK"
            and (event.frame.content or "").startswith(self._probe + ":")
        ]
        if not self._reader.buffered:
            self._reader = None
        return answers


class XgcPersonality:
    """The XGC DTU."""

    __slots__ = ()
    name = "xgc"
    model = MODEL
    options_type: type = XgcOptions
    load_test_options = XgcOptions(jitter_first_reconnect=True)
    """A load-test fleet reconnects spread out: the first retry after a loss is jittered."""

    def build(self, context: BuildContext) -> Firmware:
        options = context.options or XgcOptions()
        if not isinstance(options, XgcOptions):
            raise TypeError(f"an xgc unit takes XgcOptions, not {type(options).__name__}")
        cloud = context.network
        if cloud is not None and not isinstance(cloud, XgcCloud):
            raise TypeError(f"an xgc unit reaches an XgcCloud, not {type(cloud).__name__}")
        return XgcFirmware(
            context.env,
            context.rng,
            context.hardware,
            flash=context.flash,
            log=context.log,
            options=options,
            base_version=context.firmware_version,
            cloud=cloud,
        )

    def host_codec(self, probe_key: str) -> HostCodec:
        return _XgcHost(probe_key)


XGC = XgcPersonality()
