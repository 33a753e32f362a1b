"""Every host command of the XGC protocol (seed 004), one handler each.

A handler takes the firmware and the request and returns the content of the
``ok`` reply, or ``None`` when it answers later itself (SEND_MBR_485, DTU_OTA,
SEND_SMS, DTU_REBOOT, AT). Bad input raises ``RemoteProtocolError``; the
firmware turns it into the one error reply form. Handlers read and drive the
hardware models through ``fw.hw``; settings that must survive a reboot go through
``fw.store``, which writes the flash first and memory after (all or nothing): a flash
that cannot be written makes the command's ``error:flash-full`` / ``flash-read-only`` /
``flash-io`` reply and changes nothing.

Where the seed is silent, the choice is documented in docs/xgc-protocol.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import simpy

from vdtu.cloud.xgc_api import (
    PROJECT_ID_RE,
    PROJECT_SECRET_RE,
    Channel,
    encode_json,
    uplink_json,
)
from vdtu.errors import RemoteProtocolError
from vdtu.firmware.xgc.codec import Frame
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
from vdtu.firmware.xgc.pipe import Pipe
from vdtu.firmware.xgc.states import DtuInput, DtuState
from vdtu.log import LogLevel
from vdtu.modbus.rtu import build_request
from vdtu.modem import SimState

if TYPE_CHECKING:
    from vdtu.firmware.xgc.firmware import XgcFirmware


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """A command frame being handled, and the port it came from."""

    frame: Frame
    port: str

    @property
    def content(self) -> str:
        """The content, ``""`` when the frame had none."""
        return self.frame.content or ""


Handler = Callable[["XgcFirmware", Request], str | None]

UPDATE_INTERVAL_MS = (10_000, 86_400_000)
"""SET_UPDATE_PROPS interval bounds: the seed's minimum, and one day."""
DEFAULT_UPDATE_PROPS = {"interval": 165_000, "updateLoc": True}
KEY_RE = re.compile(r"[A-Za-z0-9_.\-]{1,32}")
MAX_KEYS = 64
MAX_KEYS_BYTES = 4096
"""The flash area SAVE_KEYS may fill (sum of key and value lengths)."""
LOG_LEVEL_NUMBERS = {
    f"{level.value:02d}": level for level in LogLevel if level is not LogLevel.SILENT
}


def _fail(message: str, hint: str = BAD_PARAM) -> RemoteProtocolError:
    return RemoteProtocolError(message, reply_hint=hint)


def _require_sim(fw: XgcFirmware) -> None:
    state = fw.hw.sim.state
    if state is SimState.ABSENT:
        raise _fail("no SIM card is inserted", "no-sim")
    if state is SimState.PIN_LOCKED:
        raise _fail("the SIM card is PIN-locked", "sim-locked")


def _require_network(fw: XgcFirmware) -> None:
    _require_sim(fw)
    if not fw.hw.modem.registered:
        raise _fail("the modem is not registered on the network", "not-registered")


def _start_long(fw: XgcFirmware, action: str, work: Generator[simpy.Event, Any, None]) -> None:
    if action in fw.busy:
        raise _fail(f"a {action} is already in progress", "busy")
    process = fw.spawn(work)
    fw.busy[action] = process

    def finished(_event: simpy.Event) -> None:
        fw.busy.pop(action, None)

    process.callbacks.append(finished)


# -- identity and status ------------------------------------------------------------------------


def get_imei(fw: XgcFirmware, _request: Request) -> str:
    return fw.imei


def base_info(fw: XgcFirmware) -> str:
    """``model:..;version:..;rssi:..;vbat:..;vbus:..`` (also notified when vbus changes)."""
    modem, battery = fw.hw.modem, fw.hw.battery
    vbus = "true" if battery.vbus else "false"
    return (
        f"model:{modem.model};version:{fw.version};rssi:{modem.rssi};"
        f"vbat:{battery.vbat_mv};vbus:{vbus}"
    )


def get_base_info(fw: XgcFirmware, _request: Request) -> str:
    return base_info(fw)


def get_iccid(fw: XgcFirmware, _request: Request) -> str:
    _require_sim(fw)
    card = fw.hw.sim.card
    assert card is not None  # a present SIM has a card
    return card.iccid


def get_net_info(fw: XgcFirmware, _request: Request) -> str:
    modem = fw.hw.modem
    sim_ok = "true" if fw.hw.sim.state is SimState.READY else "false"
    return (
        f"rssi:{modem.rssi};netState:{modem.net_state.value};"
        f"netMode:{int(modem.net_mode)};simStatus:{sim_ok}"
    )


def get_dtu_state(fw: XgcFirmware, _request: Request) -> str:
    return fw.state.value


def get_now(fw: XgcFirmware, request: Request) -> str:
    form = request.content.strip().lower() or "timestamp"
    if form not in ("timestamp", "date"):
        raise _fail(f"GET_NOW takes timestamp or date, not {request.content!r}")
    now_ms = fw.hw.modem.network_time_ms()
    if now_ms is None:
        raise _fail("the network has not given the time yet", "no-network-time")
    if form == "timestamp":
        return str(now_ms)
    local = datetime.fromtimestamp(now_ms / 1000, UTC) + timedelta(hours=fw.options.tz_offset_h)
    return (
        f"year:{local.year};month:{local.month};day:{local.day};hour:{local.hour};"
        f"minute:{local.minute};second:{local.second};millis:{now_ms % 1000}"
    )


def get_lbs(fw: XgcFirmware, _request: Request) -> str:
    _require_network(fw)
    location = fw.hw.modem.location
    if location is None:
        raise _fail("no serving cell", "not-registered")
    longitude, latitude = location
    return f"longitude:{_coordinate(longitude)};latitude:{_coordinate(latitude)}"


def _coordinate(value: float) -> str:
    """Three integer digits and seven decimals, as the seed prints ``022.5571994``."""
    return f"{value:0{12 if value < 0 else 11}.7f}"


# -- project and settings -----------------------------------------------------------------------


def set_prjinfo(fw: XgcFirmware, request: Request) -> str:
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
    fw.store({"project": {"pid": pid, "secret": secret}})
    fw.write_log(LogLevel.INFO, "firmware", f"project info saved (PID {pid})")
    if fw.state is not DtuState.NO_INIT:
        fw.spawn(_restart_cloud(fw))
    return "ok"


def _restart_cloud(fw: XgcFirmware) -> Generator[simpy.Event, Any, None]:
    """After the ``ok`` reply has gone out, the cloud session starts over."""
    yield fw.env.timeout(0)
    fw.advance(DtuInput.PROJECT_INFO_SET)
    fw.start_cloud_session()


def set_log_level(fw: XgcFirmware, request: Request) -> str:
    text = request.content.strip().upper()
    level = (
        LOG_LEVEL_NUMBERS.get(text.zfill(2)) if text.isdigit() else LogLevel.__members__.get(text)
    )
    if level is None:
        allowed = ", ".join(level.name for level in LogLevel)
        raise _fail(f"level must be one of {allowed} (or 01..06), not {request.content!r}")
    fw.store({"log_level": level.name})
    fw.write_log(LogLevel.INFO, "firmware", f"log level {level.name} from the next boot")
    return "ok"


def set_update_props(fw: XgcFirmware, request: Request) -> str:
    pairs = parse_pairs(request.content)
    if "updataLoc" in pairs and "updateLoc" not in pairs:
        pairs["updateLoc"] = pairs.pop("updataLoc")  # the seed's own spelling slip
    reject_unknown(pairs, ("interval", "updateLoc"))
    if not pairs:
        raise _fail("give interval and/or updateLoc", MISSING_FIELD)
    props = fw.update_props()
    if "interval" in pairs:
        props["interval"] = parse_int(
            "interval", pairs["interval"], low=UPDATE_INTERVAL_MS[0], high=UPDATE_INTERVAL_MS[1]
        )
    if "updateLoc" in pairs:
        props["updateLoc"] = parse_bool("updateLoc", pairs["updateLoc"])
    fw.store({"update_props": props})
    return "ok"


def save_keys(fw: XgcFirmware, request: Request) -> str:
    pairs = parse_pairs(request.content)
    if not pairs:
        raise _fail("give at least one key:value", MISSING_FIELD)
    for key, value in pairs.items():
        if not KEY_RE.fullmatch(key):
            raise _fail(f"key must be 1..32 of A-Z a-z 0-9 _ . -, not {key!r}")
        if len(value) > 256:
            raise _fail(f"value of {key} is {len(value)} characters; the limit is 256")
    keys = dict(fw.nvram.get("keys", {})) | pairs
    size = sum(len(k) + len(v) for k, v in keys.items())
    if len(keys) > MAX_KEYS or size > MAX_KEYS_BYTES:
        raise _fail(
            f"{len(keys)} keys / {size} bytes would exceed "
            f"{MAX_KEYS} keys / {MAX_KEYS_BYTES} bytes",
            "storage-full",
        )
    fw.store({"keys": keys})
    return "ok"


def get_keys(fw: XgcFirmware, request: Request) -> str:
    stored: dict[str, str] = fw.nvram.get("keys", {})
    wanted = [key.strip() for key in request.content.split(",") if key.strip()]
    if not wanted:
        wanted = list(stored)
    return ";".join(f"{key}:{stored[key]}" for key in wanted if key in stored)


# -- GPIO ---------------------------------------------------------------------------------------


def set_gpio(fw: XgcFirmware, request: Request) -> str:
    pairs = parse_pairs(request.content)
    if not pairs:
        raise _fail("give outN:0|1 pairs", MISSING_FIELD)
    gpio = fw.hw.gpio
    changes: list[tuple[str, int]] = []
    for name, text in pairs.items():
        match = re.fullmatch(r"(out|in)([1-9][0-9]*)", name)
        if match is None:
            raise _fail(f"GPIO names are out1..out8, not {name!r}")
        if match.group(1) == "in":
            raise _fail(f"{name} is an input; only outputs can be set")
        level = parse_int(name, text, low=0, high=1)
        if gpio.has(name):
            changes.append((name, level))
    for name, level in changes:
        gpio.set_output(int(name[3:]), level)
    return ";".join(f"{name}:{level}" for name, level in changes)


def get_gpio_all(fw: XgcFirmware, _request: Request) -> str:
    return fw.gpio_all()


# -- pipe ---------------------------------------------------------------------------------------


def set_dtu_pipe(fw: XgcFirmware, request: Request) -> str:
    frame = request.frame
    # The seed's example puts the value where the timestamp goes: $XGC#SET_DTU_PIPE#SN#232.
    text = frame.content if frame.content is not None else frame.timestamp
    pipe = Pipe.parse(text)
    fw.set_pipe(pipe)
    return f"{pipe.value}-ok"


def get_dtu_pipe(fw: XgcFirmware, _request: Request) -> str:
    return fw.pipe.value


# -- RS-485 -------------------------------------------------------------------------------------


def _require_bus_free(fw: XgcFirmware) -> None:
    if fw.pipe is Pipe.RS485:
        raise _fail(
            "the host pipe is the RS-485 bus; switch the pipe to uart or 232 first", "pipe-is-485"
        )


def send_mbr_485(fw: XgcFirmware, request: Request) -> None:
    _require_bus_free(fw)
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
    if "SEND_MBR_485" in fw.busy:
        raise _fail("a SEND_MBR_485 is still waiting for its answer", "busy")
    sent_at = fw.taps["rs485"].send(frame)
    fw.write_log(LogLevel.DEBUG, "rs485", f"sent {frame.hex(' ')}")
    if address == 0:
        return  # a broadcast gets no answer; nothing to wait for
    _start_long(fw, "SEND_MBR_485", _await_mbr_answer(fw, request.port, sent_at, address))


def _await_mbr_answer(
    fw: XgcFirmware, port: str, sent_at: float, address: int
) -> Generator[simpy.Event, Any, None]:
    answer = fw.env.event()
    fw.mbr_answer = answer
    wait_s = sent_at - float(fw.env.now) + fw.options.mbr_timeout_s
    result = yield answer | fw.env.timeout(wait_s)
    fw.mbr_answer = None
    if answer not in result:
        fw.reply_error(
            port,
            "SEND_MBR_485",
            "timeout",
            f"no answer from slave {address} in {fw.options.mbr_timeout_s} s",
        )


def send_raw_485(fw: XgcFirmware, request: Request) -> str:
    _require_bus_free(fw)
    text = request.content
    if not text:
        raise _fail("no data to send", MISSING_FIELD)
    if fw.options.raw485 is Raw485Encoding.HEX:
        try:
            data = bytes.fromhex(text)
        except ValueError:
            raise _fail(f"data must be hex digits in pairs, not {text[:40]!r}") from None
    else:
        data = text.encode()
    fw.taps["rs485"].send(data)
    return "ok"


# -- modem: SMS, AT -----------------------------------------------------------------------------


def send_sms(fw: XgcFirmware, request: Request) -> None:
    content = request.content
    head, sep, text = content.partition(";CONTENT:")
    if not head.startswith("PHONE:") or not sep:
        raise _fail("expected PHONE:<number>;CONTENT:<text>", MISSING_FIELD)
    phone = head[len("PHONE:") :]
    _require_network(fw)
    _start_long(fw, "SEND_SMS", _sending_sms(fw, request.port, phone, text))


def _sending_sms(
    fw: XgcFirmware, port: str, phone: str, text: str
) -> Generator[simpy.Event, Any, None]:
    try:
        yield fw.env.process(fw.hw.modem.send_sms(phone, text))
    except RemoteProtocolError as exc:
        fw.reply_error(port, "SEND_SMS", exc.reply_hint, str(exc))
        return
    fw.reply(port, "SEND_SMS", "ok")


def at_command(fw: XgcFirmware, request: Request) -> None:
    line = request.content.strip()
    if not line:
        raise _fail("no AT command given", MISSING_FIELD)
    for response in fw.at.execute(line):
        if response:
            fw.reply(request.port, "AT", response)


# -- OTA and reboot -----------------------------------------------------------------------------


def dtu_ota(fw: XgcFirmware, request: Request) -> None:
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
    _start_long(fw, "DTU_OTA", _updating(fw, request.port, filename, version))


def _updating(
    fw: XgcFirmware, port: str, filename: str, version: str
) -> Generator[simpy.Event, Any, None]:
    model = fw.hw.modem.model
    reason = ""
    if not filename.startswith(model):
        reason = f"filename {filename!r} does not start with the model {model}"
    elif len(filename.encode()) >= 32:
        reason = f"filename is {len(filename.encode())} bytes; it must be under 32"
    elif not fw.hw.modem.registered:
        reason = "no network"
    else:
        yield fw.env.timeout(fw.rng.uniform(*fw.options.ota_download_s))
        if not fw.hw.modem.registered:
            reason = "the network was lost during the download"
    if reason:
        fw.write_log(LogLevel.WARN, "ota", f"update to {version} failed: {reason}")
        fw.reply(port, "DTU_OTA", "stage:failed")
        return
    try:
        fw.store({"pending_fw_version": version})
    except RemoteProtocolError as exc:
        fw.write_log(LogLevel.WARN, "ota", f"update to {version} failed: {exc}")
        fw.reply(port, "DTU_OTA", "stage:failed")
        return
    fw.write_log(LogLevel.INFO, "ota", f"firmware {version} downloaded; active after a reboot")
    fw.reply(port, "DTU_OTA", f"stage:finish;fwVersion:{version}")


def dtu_reboot(fw: XgcFirmware, request: Request) -> None:
    done_at = fw.reply(request.port, "DTU_REBOOT", "")
    fw.spawn(_rebooting(fw, done_at))


def _rebooting(fw: XgcFirmware, reply_done_at: float) -> Generator[simpy.Event, Any, None]:
    yield fw.env.timeout(max(0.0, reply_done_at - float(fw.env.now)))
    for listener in fw.on_reboot_request:
        listener()


# -- cloud data (the cloud link comes with the XGC platform) ------------------------------------


def _submit(fw: XgcFirmware, channel: Channel, value: object) -> str:
    session = fw.session
    if session is None:
        raise _fail(
            f"no cloud session (state {fw.state.value}); set the project info first", "no-project"
        )
    if not session.submit(channel, encode_json(value)):
        raise _fail(
            f"{len(fw.outbox.pending)} messages wait for the cloud already (the limit); "
            "this one was not accepted",
            "queue-full",
        )
    return "ok"


def data_pack(fw: XgcFirmware, request: Request) -> str:
    if not request.content:
        raise _fail("no data", MISSING_FIELD)
    return _submit(fw, Channel.UP, uplink_json(request.content))


def upload_config_status(fw: XgcFirmware, request: Request) -> str:
    pairs = parse_pairs(request.content)
    require(pairs, "configVersion")
    require(pairs, "status")
    return _submit(fw, Channel.CONFIG_STATUS, uplink_json(request.content))


def upload_ota_status(fw: XgcFirmware, request: Request) -> str:
    pairs = parse_pairs(request.content)
    require(pairs, "status")
    return _submit(fw, Channel.OTA_STATUS, uplink_json(request.content))


def dtu_frames_only(fw: XgcFirmware, request: Request) -> str:
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
