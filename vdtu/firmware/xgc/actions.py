"""Every host command of the XGC protocol (docs/spec/xgc.md#5), one pure handler each.

How it works. ``execute(request, device)`` looks the action up in ``ACTIONS`` and
runs its handler on the request and a read-only ``XgcDevice``; the handler returns
an ``Outcome`` (``outcome.py``): the reply, the flash entries to write, an uplink to
queue, and the effects the firmware carries out (send on the bus, wait for the
slave's answer, send an SMS, start the OTA download, set relays, switch the pipe,
restart the cloud session, reboot, write a log line). Nothing here stores, sends or
waits, so every action is tested without a clock
(``tests/firmware/test_xgc_actions_pure.py``).

Bad input raises ``RemoteProtocolError`` inside a handler (the ``content.py``
readers do too); ``execute`` turns it into the one error form
(docs/spec/xgc.md#4.2) under the error code its ``reply_hint`` names. Checks run in
the order the replies depend on: the request's fields first, then the device's
condition (SIM, network, pipe), then ``busy``.

Actions that answer later (docs/spec/xgc.md#4.1) return no reply: SEND_MBR_485
(``485_RECEIVE``, or ``error:timeout``), DTU_OTA (``stage:...``), SEND_SMS (``ok``
once sent), AT (its response lines). Settings that must survive a reboot are flash
entries; the firmware writes them before anything else happens.

Where the seed is silent, the choice is documented in docs/xgc-protocol.md and
marked **vdtu** in docs/spec/xgc.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import unquote, urlsplit

from vdtu.cloud.xgc_api import (
    PROJECT_ID_RE,
    PROJECT_SECRET_RE,
    Channel,
    encode_json,
    uplink_json,
)
from vdtu.errors import RemoteProtocolError
from vdtu.firmware.xgc.content import (
    BAD_PARAM,
    MISSING_FIELD,
    parse_bool,
    parse_int,
    parse_pairs,
    reject_unknown,
    require,
)
from vdtu.firmware.xgc.options import Raw485Encoding
from vdtu.firmware.xgc.outcome import (
    AwaitBusAnswer,
    ErrorReply,
    Log,
    Outcome,
    QueueUplink,
    Reboot,
    Request,
    RestartCloud,
    RunAt,
    SendOnBus,
    SendSms,
    SetOutputs,
    StartOta,
    SwitchPipe,
    XgcDevice,
    refused,
)
from vdtu.firmware.xgc.pipe import Pipe
from vdtu.firmware.xgc.states import DtuState
from vdtu.log import LogLevel
from vdtu.modbus.rtu import build_request
from vdtu.modem.registration import SimState

Handler = Callable[[Request, XgcDevice], Outcome]

UPDATE_INTERVAL_MS = (10_000, 86_400_000)
"""SET_UPDATE_PROPS interval bounds: the seed's minimum, and one day."""
DEFAULT_UPDATE_PROPS: Mapping[str, Any] = {"interval": 165_000, "updateLoc": True}
KEY_RE = re.compile(r"[A-Za-z0-9_.\-]{1,32}")
MAX_KEYS = 64
MAX_KEYS_BYTES = 4096
"""The flash area SAVE_KEYS may fill (sum of key and value lengths)."""
LOG_LEVEL_NUMBERS = {
    f"{level.value:02d}": level for level in LogLevel if level is not LogLevel.SILENT
}
OTA_FAILED = "stage:failed"
"""DTU_OTA's answer when the update did not end with the new firmware in the flash."""


def _fail(message: str, hint: str = BAD_PARAM) -> RemoteProtocolError:
    return RemoteProtocolError(message, reply_hint=hint)


def _ok(content: str = "ok") -> Outcome:
    return Outcome(reply=content)


def _require_sim(device: XgcDevice) -> None:
    state = device.sim_state
    if state is SimState.ABSENT:
        raise _fail("no SIM card is inserted", "no-sim")
    if state is SimState.PIN_LOCKED:
        raise _fail("the SIM card is PIN-locked", "sim-locked")


def _require_network(device: XgcDevice) -> None:
    _require_sim(device)
    if not device.registered:
        raise _fail("the modem is not registered on the network", "not-registered")


def _require_idle(device: XgcDevice, action: str, message: str) -> None:
    if action in device.busy:
        raise _fail(message, "busy")


# -- identity and status (docs/spec/xgc.md#5.1, #5.3 to #5.6, #5.8, #5.11) -----------------


def get_imei(_request: Request, device: XgcDevice) -> Outcome:
    return _ok(device.imei)


def base_info(device: XgcDevice) -> str:
    """``model:..;version:..;rssi:..;vbat:..;vbus:..`` (also notified when vbus changes)."""
    vbus = "true" if device.vbus else "false"
    return (
        f"model:{device.model};version:{device.version};rssi:{device.rssi};"
        f"vbat:{device.vbat_mv};vbus:{vbus}"
    )


def get_base_info(_request: Request, device: XgcDevice) -> Outcome:
    return _ok(base_info(device))


def get_iccid(_request: Request, device: XgcDevice) -> Outcome:
    _require_sim(device)
    iccid = device.iccid
    assert iccid is not None  # a present SIM has a card
    return _ok(iccid)


def get_net_info(_request: Request, device: XgcDevice) -> Outcome:
    sim_ok = "true" if device.sim_state is SimState.READY else "false"
    return _ok(
        f"rssi:{device.rssi};netState:{device.net_state.value};"
        f"netMode:{int(device.net_mode)};simStatus:{sim_ok}"
    )


def get_dtu_state(_request: Request, device: XgcDevice) -> Outcome:
    return _ok(device.state.value)


def get_now(request: Request, device: XgcDevice) -> Outcome:
    form = request.content.strip().lower() or "timestamp"
    if form not in ("timestamp", "date"):
        raise _fail(f"GET_NOW takes timestamp or date, not {request.content!r}")
    now_ms = device.network_time_ms()
    if now_ms is None:
        raise _fail("the network has not given the time yet", "no-network-time")
    if form == "timestamp":
        return _ok(str(now_ms))
    local = datetime.fromtimestamp(now_ms / 1000, UTC) + timedelta(hours=device.options.tz_offset_h)
    return _ok(
        f"year:{local.year};month:{local.month};day:{local.day};hour:{local.hour};"
        f"minute:{local.minute};second:{local.second};millis:{now_ms % 1000}"
    )


def get_lbs(_request: Request, device: XgcDevice) -> Outcome:
    _require_network(device)
    location = device.location
    if location is None:
        raise _fail("no serving cell", "not-registered")
    longitude, latitude = location
    return _ok(f"longitude:{_coordinate(longitude)};latitude:{_coordinate(latitude)}")


def _coordinate(value: float) -> str:
    """Three integer digits and seven decimals, as the seed prints ``022.5571994``
    (docs/spec/xgc.md#5.11)."""
    return f"{value:0{12 if value < 0 else 11}.7f}"


# -- project and settings (docs/spec/xgc.md#5.2, #5.7, #5.16 to #5.18) ----------------------


def set_prjinfo(request: Request, device: XgcDevice) -> Outcome:
    try:
        pairs = parse_pairs(request.content)
    except RemoteProtocolError:  # its message would quote a segment: maybe the secret
        raise _fail("expected PID:<project id>;PSECRET:<project secret>") from None
    reject_unknown(pairs, ("PID", "PSECRET"))
    pid, secret = require(pairs, "PID"), require(pairs, "PSECRET")
    if not PROJECT_ID_RE.fullmatch(pid):
        raise _fail(f"PID must be 1..64 letters or digits, not {pid!r}")
    if not PROJECT_SECRET_RE.fullmatch(secret):
        raise _fail("PSECRET must be 1..128 letters or digits")
    saved = Log(level=LogLevel.INFO, source="firmware", text=f"project info saved (PID {pid})")
    restart = () if device.state is DtuState.NO_INIT else (RestartCloud(),)
    return Outcome(
        reply="ok", flash={"project": {"pid": pid, "secret": secret}}, effects=(saved, *restart)
    )


def set_log_level(request: Request, _device: XgcDevice) -> Outcome:
    text = request.content.strip().upper()
    level = (
        LOG_LEVEL_NUMBERS.get(text.zfill(2)) if text.isdigit() else LogLevel.__members__.get(text)
    )
    if level is None:
        allowed = ", ".join(level.name for level in LogLevel)
        raise _fail(f"level must be one of {allowed} (or 01..06), not {request.content!r}")
    note = Log(
        level=LogLevel.INFO, source="firmware", text=f"log level {level.name} from the next boot"
    )
    return Outcome(reply="ok", flash={"log_level": level.name}, effects=(note,))


def update_props(flash: Mapping[str, Any]) -> dict[str, Any]:
    """The SET_UPDATE_PROPS settings in ``flash`` (a copy), or the defaults."""
    return dict(flash.get("update_props", DEFAULT_UPDATE_PROPS))


def property_report(device: XgcDevice) -> dict[str, Any]:
    """What the DTU uploads every SET_UPDATE_PROPS interval (docs/spec/xgc.md#5.18): signal,
    battery, charging, ICCID and, with ``updateLoc``, the cell's location."""
    props: dict[str, Any] = {
        "rssi": device.rssi,
        "vbat": device.vbat_mv,
        "vbus": device.vbus,
        "iccid": device.iccid,
    }
    location = device.location
    if bool(update_props(device.flash)["updateLoc"]) and location is not None:
        props["lbs"] = {"longitude": location[0], "latitude": location[1]}
    return props


def set_update_props(request: Request, device: XgcDevice) -> Outcome:
    pairs = parse_pairs(request.content)
    if "updataLoc" in pairs and "updateLoc" not in pairs:
        pairs["updateLoc"] = pairs.pop("updataLoc")  # the seed's slip (docs/spec/xgc.md#5.18)
    reject_unknown(pairs, ("interval", "updateLoc"))
    if not pairs:
        raise _fail("give interval and/or updateLoc", MISSING_FIELD)
    props = update_props(device.flash)
    if "interval" in pairs:
        props["interval"] = parse_int(
            "interval", pairs["interval"], low=UPDATE_INTERVAL_MS[0], high=UPDATE_INTERVAL_MS[1]
        )
    if "updateLoc" in pairs:
        props["updateLoc"] = parse_bool("updateLoc", pairs["updateLoc"])
    return Outcome(reply="ok", flash={"update_props": props})


def save_keys(request: Request, device: XgcDevice) -> Outcome:
    pairs = parse_pairs(request.content)
    if not pairs:
        raise _fail("give at least one key:value", MISSING_FIELD)
    for key, value in pairs.items():
        if not KEY_RE.fullmatch(key):
            raise _fail(f"key must be 1..32 of A-Z a-z 0-9 _ . -, not {key!r}")
        if len(value) > 256:
            raise _fail(f"value of {key} is {len(value)} characters; the limit is 256")
    keys = dict(device.flash.get("keys", {})) | pairs
    size = sum(len(k) + len(v) for k, v in keys.items())
    if len(keys) > MAX_KEYS or size > MAX_KEYS_BYTES:
        raise _fail(
            f"{len(keys)} keys / {size} bytes would exceed "
            f"{MAX_KEYS} keys / {MAX_KEYS_BYTES} bytes",
            "storage-full",
        )
    return Outcome(reply="ok", flash={"keys": keys})


def get_keys(request: Request, device: XgcDevice) -> Outcome:
    stored: Mapping[str, str] = device.flash.get("keys", {})
    wanted = [key.strip() for key in request.content.split(",") if key.strip()]
    if not wanted:
        wanted = list(stored)
    return _ok(";".join(f"{key}:{stored[key]}" for key in wanted if key in stored))


# -- GPIO (docs/spec/xgc.md#5.9, #5.10) ------------------------------------------------------


def set_gpio(request: Request, device: XgcDevice) -> Outcome:
    pairs = parse_pairs(request.content)
    if not pairs:
        raise _fail("give outN:0|1 pairs", MISSING_FIELD)
    existing = device.gpio_levels()
    changes: list[tuple[str, int]] = []
    for name, text in pairs.items():
        match = re.fullmatch(r"(out|in)([1-9][0-9]*)", name)
        if match is None:
            raise _fail(f"GPIO names are out1..out8, not {name!r}")
        if match.group(1) == "in":
            raise _fail(f"{name} is an input; only outputs can be set")
        level = parse_int(name, text, low=0, high=1)
        if name in existing:
            changes.append((name, level))
    reply = ";".join(f"{name}:{level}" for name, level in changes)
    if not changes:
        return _ok(reply)
    levels = tuple((int(name[3:]), level) for name, level in changes)
    return Outcome(reply=reply, effects=(SetOutputs(levels=levels),))


def gpio_all(levels: Mapping[str, int]) -> str:
    """Every output then every input that exists, e.g. ``out1:0;...;in1:1``."""
    return ";".join(f"{name}:{level}" for name, level in levels.items())


def get_gpio_all(_request: Request, device: XgcDevice) -> Outcome:
    return _ok(gpio_all(device.gpio_levels()))


# -- pipe (docs/spec/xgc.md#5.12, #5.13, #7) -------------------------------------------------


def switch_pipe(device: XgcDevice, pipe: Pipe) -> Outcome:
    """Move the host protocol to ``pipe``: persisted first, answered ``<pipe>-ok`` on the old
    pipe, then in force. Both SET_DTU_PIPE and its shortcut (docs/spec/xgc.md#7) use it."""
    reply = f"{pipe.value}-ok"
    if pipe is device.pipe:
        return _ok(reply)
    note = Log(
        level=LogLevel.INFO,
        source="firmware",
        text=f"host pipe {device.pipe.value} -> {pipe.value}",
    )
    return Outcome(reply=reply, flash={"pipe": pipe.value}, effects=(note, SwitchPipe(pipe=pipe)))


def set_dtu_pipe(request: Request, device: XgcDevice) -> Outcome:
    frame = request.frame
    # The seed's example puts the value where the timestamp goes: $XGC#SET_DTU_PIPE#SN#232
    # (docs/spec/xgc.md#5.12).
    text = frame.content if frame.content is not None else frame.timestamp
    return switch_pipe(device, Pipe.parse(text))


def get_dtu_pipe(_request: Request, device: XgcDevice) -> Outcome:
    return _ok(device.pipe.value)


# -- RS-485 (docs/spec/xgc.md#5.14, #5.15) ---------------------------------------------------


def _require_bus_free(device: XgcDevice) -> None:
    if device.pipe is Pipe.RS485:
        raise _fail(
            "the host pipe is the RS-485 bus; switch the pipe to uart or 232 first", "pipe-is-485"
        )


def send_mbr_485(request: Request, device: XgcDevice) -> Outcome:
    _require_bus_free(device)
    pairs = parse_pairs(request.content)
    reject_unknown(pairs, ("addr", "instructions", "reg", "value"))
    address = parse_int("addr", require(pairs, "addr"), low=0, high=247, base=16)
    function = parse_int("instructions", require(pairs, "instructions"), low=1, high=0x7F, base=16)
    register = parse_int("reg", require(pairs, "reg"), low=0, high=0xFFFF, base=16)
    value = parse_int("value", require(pairs, "value"), low=0, high=0xFFFF, base=16)
    try:
        frame = build_request(address, function, register, value)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    _require_idle(device, "SEND_MBR_485", "a SEND_MBR_485 is still waiting for its answer")
    sent = (
        SendOnBus(data=frame),
        Log(level=LogLevel.DEBUG, source="rs485", text=f"sent {frame.hex(' ')}"),
    )
    if address == 0:
        return Outcome(reply=None, effects=sent)  # a broadcast gets no answer: no wait
    timeout_s = device.options.mbr_timeout_s
    wait = AwaitBusAnswer(
        timeout_s=timeout_s,
        on_timeout=ErrorReply(
            code="timeout", message=f"no answer from slave {address} in {timeout_s} s"
        ),
    )
    return Outcome(reply=None, effects=(*sent, wait))


def send_raw_485(request: Request, device: XgcDevice) -> Outcome:
    _require_bus_free(device)
    text = request.content
    if not text:
        raise _fail("no data to send", MISSING_FIELD)
    if device.options.raw485 is Raw485Encoding.HEX:
        try:
            data = bytes.fromhex(text)
        except ValueError:
            raise _fail(f"data must be hex digits in pairs, not {text[:40]!r}") from None
    else:
        data = text.encode()
    return Outcome(reply="ok", effects=(SendOnBus(data=data),))


# -- modem: SMS, AT (docs/spec/xgc.md#5.20, #5.22) -------------------------------------------


def send_sms(request: Request, device: XgcDevice) -> Outcome:
    head, sep, text = request.content.partition(";CONTENT:")
    if not head.startswith("PHONE:") or not sep:
        raise _fail("expected PHONE:<number>;CONTENT:<text>", MISSING_FIELD)
    phone = head[len("PHONE:") :]
    _require_network(device)
    _require_idle(device, "SEND_SMS", "a SEND_SMS is already in progress")
    return Outcome(reply=None, effects=(SendSms(phone=phone, text=text),))


def at_command(request: Request, _device: XgcDevice) -> Outcome:
    line = request.content.strip()
    if not line:
        raise _fail("no AT command given", MISSING_FIELD)
    return Outcome(reply=None, effects=(RunAt(line=line),))


# -- OTA and reboot (docs/spec/xgc.md#5.19, #5.21) -------------------------------------------


def dtu_ota(request: Request, device: XgcDevice) -> Outcome:
    pairs = parse_pairs(request.content)
    reject_unknown(pairs, ("filename", "fwVersion", "url", "md5"))
    filename = require(pairs, "filename")
    version = require(pairs, "fwVersion")
    url = unquote(require(pairs, "url"))
    if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,32}", version):
        raise _fail(f"fwVersion must be 1..32 of A-Z a-z 0-9 _ . -, not {version!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _fail(f"url must be an http(s) URL (URL-encoded), not {url[:60]!r}")
    _require_idle(device, "DTU_OTA", "a DTU_OTA is already in progress")
    return Outcome(reply=None, effects=(StartOta(filename=filename, version=version),))


def ota_refusal(device: XgcDevice, filename: str) -> str | None:
    """Why an update of ``filename`` fails as it starts (it ends in ``OTA_FAILED``), or None."""
    if not filename.startswith(device.model):
        return f"filename {filename!r} does not start with the model {device.model}"
    size = len(filename.encode())
    if size >= 32:
        return f"filename is {size} bytes; it must be under 32"
    if not device.registered:
        return "no network"
    return None


def ota_finished(version: str) -> str:
    """DTU_OTA's answer once firmware ``version`` is in the flash, pending a reboot."""
    return f"stage:finish;fwVersion:{version}"


def dtu_reboot(_request: Request, _device: XgcDevice) -> Outcome:
    return Outcome(reply="", effects=(Reboot(),))


# -- cloud data (docs/spec/xgc.md#5.23 to #5.25) ---------------------------------------------


def _queue(device: XgcDevice, channel: Channel, value: object) -> Outcome:
    if not device.has_cloud_session:
        raise _fail(
            f"no cloud session (state {device.state.value}); set the project info first",
            "no-project",
        )
    full = _queue_full(device.options.uplink_queue)
    uplink = QueueUplink(channel=channel, payload=encode_json(value), when_full=full)
    return Outcome(reply="ok", uplink=uplink)


@cache
def _queue_full(capacity: int) -> ErrorReply:
    """The reply to data a full uplink queue of ``capacity`` does not take (one per size)."""
    return ErrorReply(
        code="queue-full",
        message=f"{capacity} messages wait for the cloud already (the limit); "
        "this one was not accepted",
    )


def data_pack(request: Request, device: XgcDevice) -> Outcome:
    content = request.content
    if not content:
        raise _fail("no data", MISSING_FIELD)
    return _queue(device, Channel.UP, uplink_json(content))


def upload_config_status(request: Request, device: XgcDevice) -> Outcome:
    pairs = parse_pairs(request.content)
    require(pairs, "configVersion")
    require(pairs, "status")
    return _queue(device, Channel.CONFIG_STATUS, uplink_json(request.content))


def upload_ota_status(request: Request, device: XgcDevice) -> Outcome:
    pairs = parse_pairs(request.content)
    require(pairs, "status")
    return _queue(device, Channel.OTA_STATUS, uplink_json(request.content))


def dtu_frames_only(request: Request, _device: XgcDevice) -> Outcome:
    raise _fail(
        f"{request.frame.action} is sent by the DTU to the host, not to the DTU", "unknown-action"
    )


ACTIONS: dict[str, Handler] = {
    "GET_IMEI": get_imei,
    "SET_PRJINFO": set_prjinfo,
    "GET_BASE_INFO": get_base_info,
    "GET_ICCID": get_iccid,
    "GET_NET_INFO": get_net_info,
    "GET_DTU_STATE": get_dtu_state,
    "SET_LOG_LEVEL": set_log_level,
    "GET_NOW": get_now,
    "SET_GPIO": set_gpio,
    "GET_GPIO_ALL": get_gpio_all,
    "GET_LBS": get_lbs,
    "SET_DTU_PIPE": set_dtu_pipe,
    "GET_DTU_PIPE": get_dtu_pipe,
    "SEND_MBR_485": send_mbr_485,
    "SEND_RAW_485": send_raw_485,
    "SAVE_KEYS": save_keys,
    "GET_KEYS": get_keys,
    "SET_UPDATE_PROPS": set_update_props,
    "DTU_OTA": dtu_ota,
    "SEND_SMS": send_sms,
    "DTU_REBOOT": dtu_reboot,
    "AT": at_command,
    "DATA_PACK": data_pack,
    "UPLOAD_CONFIG_STATUS": upload_config_status,
    "UPLOAD_OTA_STATUS": upload_ota_status,
    "NOTIFY_CONFIG": dtu_frames_only,
    "NOTIFY_OTA": dtu_frames_only,
    "GPIO_INT": dtu_frames_only,
    "485_RECEIVE": dtu_frames_only,
}
"""The handler of every action the host may send."""


def execute(request: Request, device: XgcDevice) -> Outcome:
    """Run the command ``request`` on ``device``.

    Returns:
        Its outcome; a refused command's is an ``ErrorReply`` under the code its
        ``RemoteProtocolError`` named (``unknown-action`` for an action not in
        ``ACTIONS``). ``device`` is only read.
    """
    action = request.frame.action
    handler = ACTIONS.get(action)
    if handler is None:
        return refused("unknown-action", f"{action} is not an XGC command")
    try:
        return handler(request, device)
    except RemoteProtocolError as exc:
        return refused(exc.reply_hint, str(exc))
