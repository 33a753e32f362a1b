"""The XGC personality's registry entry: its builder and its simulated host's codec.

``XGC`` builds an ``XgcFirmware`` from the unit's ``BuildContext`` (the network must
be an ``XgcCloud``: the platform and broker the unit reaches). A simulated host sends
an uplink as a ``DATA_PACK`` frame whose content is the JSON object's pairs
(``{"u": 1, "s": 2}`` -> ``u:1;s:2``), which the unit publishes typed again as that
object. It answers the cloud's command probe: a ``DATA_PACK`` from the cloud whose
content starts with ``<probe key>:`` goes straight back up. Its frame reader is made
on the first probe it sees, so a host that is never probed keeps none. A host that
carries out jobs (``jobs``) also applies a NOTIFY_CONFIG (UPLOAD_CONFIG_STATUS
``status:success``), passes a NOTIFY_OTA on as DTU_OTA and reports DTU_OTA's answer with
UPLOAD_OTA_STATUS (``success`` with the version, or ``failed``); it reads every frame.
A host polls a slave with SEND_MBR_485.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from vdtu.firmware.personality import BuildContext, Firmware, HostCodec, reaches
from vdtu.firmware.xgc.cloud import XgcCloud
from vdtu.firmware.xgc.codec import CodeFormat, Frame, FrameKind, FrameReader, FrameReceived
from vdtu.firmware.xgc.firmware import XgcFirmware
from vdtu.firmware.xgc.options import DEFAULT_OPTIONS, XgcOptions

MODEL = "XGC-RG88C"
"""The model an XGC unit reports (``AT+CGMM``)."""


def data_pack(content: str) -> bytes:
    """A host's ``DATA_PACK`` frame with ``content`` (hex check code, as hosts write it)."""
    return _frame("DATA_PACK", content)


def _frame(action: str, content: str) -> bytes:
    frame = Frame(kind=FrameKind.COMMAND, action=action, sn="0", timestamp="0", content=content)
    return frame.encode(CodeFormat.HEX)


def _job_answer(frame: Frame) -> bytes | None:
    """What a host that carries out the cloud's jobs writes for ``frame`` (docs/spec/xgc.md
    6.2, 6.3, 5.19, 5.24, 5.25): a configuration is applied and reported; a firmware job
    for the DTU is passed on with DTU_OTA, whose answer is reported."""
    pairs = dict(part.split(":", 1) for part in (frame.content or "").split(";") if ":" in part)
    if frame.kind is FrameKind.COMMAND and frame.action == "NOTIFY_CONFIG":
        version = pairs.get("configVersion", "0")
        return _frame("UPLOAD_CONFIG_STATUS", f"configVersion:{version};status:success")
    if frame.kind is FrameKind.COMMAND and frame.action == "NOTIFY_OTA":
        job = ";".join(f"{key}:{pairs.get(key, '')}" for key in ("filename", "fwVersion", "url"))
        return _frame("DTU_OTA", job)
    if frame.kind is FrameKind.ACK and frame.action == "DTU_OTA":
        if pairs.get("stage") == "finish":
            return _frame(
                "UPLOAD_OTA_STATUS", f"status:success;fwVersion:{pairs.get('fwVersion', '')}"
            )
        if pairs.get("stage") == "failed" or (frame.content or "").startswith("error:"):
            return _frame("UPLOAD_OTA_STATUS", "status:failed")
    return None


class _XgcHost:
    __slots__ = ("_jobs", "_probe", "_reader")

    def __init__(self, probe_key: str, *, jobs: bool) -> None:
        self._probe = probe_key
        self._jobs = jobs
        self._reader: FrameReader | None = None

    def frame_uplink(self, text: str) -> bytes:
        return data_pack(";".join([f"{key}:{value}" for key, value in json.loads(text).items()]))

    def answers(self, data: bytes) -> list[bytes]:
        if self._reader is None:
            if not self._jobs and self._probe.encode() not in data:
                return []
            self._reader = FrameReader()
        self._reader.receive_data(data)
        answers: list[bytes] = []
        for event in self._reader.events():
            if not isinstance(event, FrameReceived):
                continue
            frame = event.frame
            if frame.action == "DATA_PACK" and (frame.content or "").startswith(self._probe + ":"):
                answers.append(data_pack(frame.content or ""))
            elif self._jobs and (job := _job_answer(frame)) is not None:
                answers.append(job)
        if not self._reader.buffered:
            self._reader = None
        return answers

    def frame_poll(self, address: int, function: int, register: int, value: int) -> bytes | None:
        content = (
            f"addr:{address:02X};instructions:{function:02X};reg:{register:04X};value:{value:04X}"
        )
        return _frame("SEND_MBR_485", content)


class XgcPersonality:
    """The XGC DTU."""

    __slots__ = ()
    name = "xgc"
    model = MODEL
    options_type: type = XgcOptions
    load_test_options = XgcOptions(jitter_first_reconnect=True)
    """A load-test fleet reconnects spread out: the first retry after a loss is jittered."""

    def build(self, context: BuildContext) -> Firmware:
        options = context.options or DEFAULT_OPTIONS
        if not isinstance(options, XgcOptions):
            raise TypeError(f"an xgc unit takes XgcOptions, not {type(options).__name__}")
        cloud = context.network
        if cloud is not None and not reaches(cloud, XgcCloud):
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

    def host_codec(self, probe_key: str, *, jobs: bool = False) -> HostCodec:
        return _XgcHost(probe_key, jobs=jobs)

    def configured(
        self, options: object | None, imei: str, changes: Mapping[str, Any]
    ) -> dict[str, str]:
        raise ValueError(
            "an XGC unit keeps no configuration file: its host sets it up with SET_ commands "
            "(send steps) and its cloud with configuration pushes (config steps)"
        )


XGC = XgcPersonality()
