"""Every QuecPython channel type carries data both ways through a unit's PTY, in command
and in passthrough mode, against counterparts the test owns.

One ``vdtu up --profile quec`` runs for the module, its units started from configs
written before the fleet starts:

* unit 0, command mode: one channel of each type, all on UART ``"2"`` (the ``uart``
  PTY), plus an Aliyun channel with a wrong DeviceSecret;
* units 1-4, passthrough mode: one channel per UART (``"2"`` the ``uart`` PTY, ``"0"``
  the ``rs232`` PTY), so the four cover the seven types; unit 1 sends the registration
  message and a heartbeat on its TCP channel.

The tcp, udp and http counterparts are standard-library servers in this process; the
mqtt, aliyun, txyun and quecthing channels go through the fleet's broker to a paho
client with the console login. Aliyun and Tencent log in both ways: one device secret
(``mos``, the secret the cloud derives) and one type one secret (``tas``, registering
over HTTP first).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.cloud_tools import cloud as cloud_console
from tests.e2e.quec_tools import (
    WAIT_S,
    CloudClient,
    HttpCounterpart,
    HttpSide,
    MqttSide,
    QuecHost,
    Side,
    StderrTail,
    TcpCounterpart,
    TcpSide,
    UdpCounterpart,
    UdpSide,
    broker_login,
    registration_end,
    uconf,
    wait_for_channels,
    write_unit_config,
)
from tests.e2e.running import RunningFleet, vdtu_up
from vdtu.cloud.iot_cloud import IotCloud, Vendor
from vdtu.firmware.quec.channel_schema import (
    AliyunChannel,
    AuthType,
    Channel,
    HttpChannel,
    HttpMethod,
    MqttChannel,
    QuecthingChannel,
    TcpChannel,
    TxyunChannel,
    UdpChannel,
)
from vdtu.firmware.quec.config import DtuConfig
from vdtu.firmware.quec.executor import MqttState, QuecthingState, SocketState
from vdtu.firmware.quec.frames import (
    CommandFrame,
    PassthroughFrame,
    PortBinding,
    WorkMode,
)
from vdtu.identity import Identity

pytestmark = pytest.mark.pty

SEED = 23
UNITS = 5
PING = "PING"
"""Unit 1's TCP heartbeat text."""
HEARTBEAT_S = 2
BAD_CID = "8"
"""Unit 0's Aliyun channel with a wrong DeviceSecret."""
PORT_OF_UART = {"2": "uart", "0": "rs232"}


def imei_of(unit_id: int) -> str:
    return Identity.for_unit(SEED, unit_id).imei


def password_of(unit_id: int) -> str:
    return imei_of(unit_id)[-6:]


# -- the fleet's configs ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Servers:
    """The counterparts the configs point at (one per tcp, udp or http channel)."""

    tcp_command: TcpCounterpart
    tcp_through: TcpCounterpart
    udp_command: UdpCounterpart
    udp_through: UdpCounterpart
    http_command: HttpCounterpart
    http_through: HttpCounterpart

    def close(self) -> None:
        for server in (
            self.tcp_command,
            self.tcp_through,
            self.udp_command,
            self.udp_through,
            self.http_command,
            self.http_through,
        ):
            server.close()


def mqtt_topics(unit_id: int) -> tuple[dict[str, str], dict[str, str]]:
    """(subscribe, publish) of a unit's mqtt channel; ``quec/<IMEI>/...`` carries commands.

    Topic 1 lies below the unit's own ``quec/<IMEI>/down`` and ``up``: the fleet's broker
    lets a unit's login use only those (docs/brokers.md, access control).
    """
    imei = imei_of(unit_id)
    return (
        {"0": f"quec/{imei}/down", "1": f"quec/{imei}/down/1"},
        {"0": f"quec/{imei}/up", "1": f"quec/{imei}/up/1"},
    )


def cloud_topics(vendor: Vendor, unit_id: int) -> tuple[dict[str, str], dict[str, str]]:
    """(subscribe, publish) of a unit's Aliyun or Tencent channel, in the device's own tree
    (Aliyun ``/<pk>/<dn>/user/...``, Tencent ``<ProductId>/<dn>/...``)."""
    product = IotCloud.for_seed(SEED).product(vendor).product_key
    if vendor is Vendor.TXYUN:
        base = f"{product}/{imei_of(unit_id)}"
        return {"0": f"{base}/control"}, {"0": f"{base}/data"}
    base = f"/{product}/{imei_of(unit_id)}"
    return {"0": f"{base}/user/get"}, {"0": f"{base}/user/update"}


def quecthing_topics(unit_id: int) -> tuple[str, str]:
    """(down, up) of a unit's quecthing channel (its Devicename left empty: the IMEI)."""
    product = IotCloud.for_seed(SEED).product(Vendor.QUECTHING).product_key
    base = f"quecthing/{product}/{imei_of(unit_id)}"
    return f"{base}/down", f"{base}/up"


def mqtt_channel(unit_id: int, uart: str) -> MqttChannel:
    username, password = broker_login(SEED, imei_of(unit_id))
    subscribe, publish = mqtt_topics(unit_id)
    return MqttChannel(
        url="broker.vdtu",
        port=1883,
        subscribe=subscribe,
        publish=publish,
        qos=1,
        username=username,
        password=password,
        serial_id=uart,
    )


def iot_channel(
    vendor: Vendor, unit_id: int, uart: str, auth: AuthType, *, secret: str | None = None
) -> AliyunChannel | TxyunChannel:
    """An Aliyun or Tencent channel of the demo product; Devicename is the unit's IMEI.

    ``secret`` replaces the DeviceSecret the cloud derives (``mos`` only).
    """
    cloud = IotCloud.for_seed(SEED)
    product = cloud.product(vendor)
    device = imei_of(unit_id)
    subscribe, publish = cloud_topics(vendor, unit_id)
    kind = AliyunChannel if vendor is Vendor.ALIYUN else TxyunChannel
    derived = cloud.device_secret(vendor, product.product_key, device)
    mos = auth is AuthType.MOS
    return kind(
        auth_type=auth,
        client_id=f"{vendor}-{device}" if secret is None else f"bad-{device}",
        device_name=device,
        product_key=product.product_key,
        qos=1,
        subscribe=subscribe,
        publish=publish,
        serial_id=uart,
        device_secret=(derived if secret is None else secret) if mos else "",
        product_secret="" if mos else product.product_secret,
    )


def quecthing_channel(uart: str) -> QuecthingChannel:
    product = IotCloud.for_seed(SEED).product(Vendor.QUECTHING)
    return QuecthingChannel(
        product_key=product.product_key,
        product_secret=product.product_secret,
        qos=1,
        serial_id=uart,
    )


def unit_config(
    unit_id: int, mode: WorkMode, conf: dict[str, Channel], *, reg: int = 0
) -> DtuConfig:
    return DtuConfig(
        password=password_of(unit_id),
        work_mode=mode,
        conf=conf,
        uconf=uconf("0", "2"),
        version=100,
        reg=reg,
    )


def fleet_configs(servers: Servers) -> list[DtuConfig]:
    """Unit 0 in command mode, units 1-4 in passthrough (see the module comment)."""
    cid_url = "http://127.0.0.1:{port}/dtu/{mode}"
    wrong = "0" * 32
    command = unit_config(
        0,
        WorkMode.COMMAND,
        {
            "1": mqtt_channel(0, "2"),
            "2": TcpChannel(url="127.0.0.1", port=servers.tcp_command.port, serial_id="2"),
            "3": UdpChannel(url="127.0.0.1", port=servers.udp_command.port, serial_id="2"),
            "4": HttpChannel(
                method=HttpMethod.POST,
                url=cid_url.format(port=servers.http_command.port, mode="command"),
                serial_id="2",
            ),
            "5": iot_channel(Vendor.ALIYUN, 0, "2", AuthType.MOS),
            "6": iot_channel(Vendor.TXYUN, 0, "2", AuthType.TAS),
            "7": quecthing_channel("2"),
            BAD_CID: iot_channel(Vendor.ALIYUN, 0, "2", AuthType.MOS, secret=wrong),
        },
    )
    through = WorkMode.PASSTHROUGH
    tcp = TcpChannel(
        url="127.0.0.1",
        port=servers.tcp_through.port,
        ping=PING,
        heartbeat_s=HEARTBEAT_S,
        serial_id="2",
    )
    http = HttpChannel(
        method=HttpMethod.POST,
        url=cid_url.format(port=servers.http_through.port, mode="through"),
        serial_id="0",
    )
    return [
        command,
        unit_config(1, through, {"1": tcp, "2": mqtt_channel(1, "0")}, reg=1),
        unit_config(
            2,
            through,
            {
                "1": UdpChannel(url="127.0.0.1", port=servers.udp_through.port, serial_id="2"),
                "2": http,
            },
        ),
        unit_config(
            3,
            through,
            {
                "1": iot_channel(Vendor.ALIYUN, 3, "2", AuthType.TAS),
                "2": iot_channel(Vendor.TXYUN, 3, "0", AuthType.MOS),
            },
        ),
        unit_config(4, through, {"1": quecthing_channel("2")}),
    ]


def connected(config: DtuConfig, states: Mapping[str, int]) -> bool:
    """Whether every channel but the one with the wrong secret is connected (code 11)."""
    for cid, channel in config.conf.items():
        if cid == BAD_CID and config.work_mode is WorkMode.COMMAND:
            continue
        state = states.get(cid)
        match channel:
            case TcpChannel() | UdpChannel():
                ready = state == SocketState.ESTABLISHED
            case QuecthingChannel():
                ready = state == QuecthingState.SUBSCRIBED
            case HttpChannel():
                ready = state is not None  # no connection: ready once the network is
            case _:
                ready = state == MqttState.CONNECTED
        if not ready:
            return False
    return True


def ready(config: DtuConfig) -> Callable[[Mapping[str, int]], bool]:
    """``connected`` for one unit's config."""
    return lambda states: connected(config, states)


# -- the module's fleet -------------------------------------------------------------------------


@dataclass
class Rig:
    fleet: RunningFleet
    configs: list[DtuConfig]
    servers: Servers
    cloud: CloudClient
    log: StderrTail
    pty_dir: Path
    hosts: dict[tuple[int, str], QuecHost] = field(default_factory=dict)
    """(unit, port) -> the host on that PTY."""
    states_seen: dict[int, list[dict[str, int]]] = field(default_factory=dict)
    """Unit -> every code 11 answer while waiting for its channels."""
    sides: dict[str, Side] = field(default_factory=dict)


def binding_of(config: DtuConfig, uart: str) -> PortBinding:
    channels = {cid: c.protocol for cid, c in config.conf.items() if c.serial_id == uart}
    if config.work_mode is WorkMode.COMMAND:
        return PortBinding.command(channels)
    return PortBinding.passthrough(next(iter(channels.values())))


def build_sides(rig: Rig) -> None:
    cloud, servers = rig.cloud, rig.servers
    for unit_id, prefix in ((0, "command"), (1, "through")):
        subscribe, publish = mqtt_topics(unit_id)
        topic = "1" if unit_id == 0 else "0"
        rig.sides[f"{prefix}-mqtt"] = MqttSide(cloud, publish[topic], subscribe[topic])
    for unit_id, prefix in ((0, "command"), (3, "through")):
        for vendor in (Vendor.ALIYUN, Vendor.TXYUN):
            subscribe, publish = cloud_topics(vendor, unit_id)
            rig.sides[f"{prefix}-{vendor}"] = MqttSide(cloud, publish["0"], subscribe["0"])
    for unit_id, prefix in ((0, "command"), (4, "through")):
        down, up = quecthing_topics(unit_id)
        rig.sides[f"{prefix}-quecthing"] = MqttSide(cloud, up, down)
    rig.sides["command-tcp"] = TcpSide(servers.tcp_command)
    rig.sides["through-tcp"] = TcpSide(
        servers.tcp_through, heartbeat=PING.encode(), registration=True
    )
    rig.sides["command-udp"] = UdpSide(servers.udp_command)
    rig.sides["through-udp"] = UdpSide(servers.udp_through)
    rig.sides["command-http"] = HttpSide(servers.http_command, "/dtu/command")
    rig.sides["through-http"] = HttpSide(servers.http_through, "/dtu/through")


def subscribe_cloud(cloud: CloudClient) -> None:
    topics: list[str] = []
    for unit_id in (0, 1):
        topics.extend(mqtt_topics(unit_id)[1].values())
    for unit_id in (0, 3):
        for vendor in (Vendor.ALIYUN, Vendor.TXYUN):
            topics.extend(cloud_topics(vendor, unit_id)[1].values())
    topics.extend(quecthing_topics(unit_id)[1] for unit_id in (0, 4))
    cloud.subscribe(*topics)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    base = tmp_path_factory.mktemp("quec-channels")
    state_dir, pty_dir = base / "state", base / "pty"
    servers = Servers(
        TcpCounterpart(),
        TcpCounterpart(),
        UdpCounterpart(),
        UdpCounterpart(),
        HttpCounterpart(),
        HttpCounterpart(),
    )
    configs = fleet_configs(servers)
    for unit_id, config in enumerate(configs):
        write_unit_config(state_dir, SEED, unit_id, config)
    args = ("--profile", "quec", "--seed", str(SEED), "--ports", "uart,rs232")
    paths = ("--state-dir", str(state_dir), "--pty-dir", str(pty_dir))
    try:
        with vdtu_up(*args, *paths, units=UNITS) as fleet:
            log = StderrTail(fleet.process)
            cloud = CloudClient(pty_dir)
            rig = Rig(fleet, configs, servers, cloud, log, pty_dir)
            try:
                subscribe_cloud(cloud)
                build_sides(rig)
                open_hosts(rig)
                for unit_id, config in enumerate(configs):
                    host = rig.hosts[unit_id, "uart"]
                    rig.states_seen[unit_id] = wait_for_channels(
                        host, password_of(unit_id), ready(config)
                    )
                yield rig
                code, err = fleet.stop()
                assert code == 0, log.text() + err
            finally:
                for host in rig.hosts.values():
                    host.close()
                cloud.close()
                log.close()
    finally:
        servers.close()


def open_hosts(rig: Rig) -> None:
    for unit_id, config in enumerate(rig.configs):
        for uart, port in PORT_OF_UART.items():
            if not config.channels_on(uart):
                continue
            path = rig.fleet.units[unit_id]["ports"][port]
            rig.hosts[unit_id, port] = QuecHost(path, binding_of(config, uart))


# -- the cases ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    """One channel: what the host writes, what its far end must get, and back."""

    side: str
    unit: int
    port: str
    up: CommandFrame | PassthroughFrame
    cloud_gets: bytes
    cloud_sends: bytes
    host_gets: CommandFrame | PassthroughFrame


def _wrapped(data: str) -> bytes:
    """What the cloud gets in command mode: ``{"data": "<data>"}``."""
    return json.dumps({"data": data}, ensure_ascii=False).encode()


def command_case(kind: str, cid: str, up_id: str | None, down_id: str | None) -> Case:
    up = f"{kind} up, from the host: 1,2,3"
    down = f"{kind} down, to the host: a,b"
    return Case(
        side=f"command-{kind}",
        unit=0,
        port="uart",
        up=CommandFrame(cid=cid, topic_id=up_id, data=up),
        cloud_gets=_wrapped(up),
        cloud_sends=_wrapped(down),
        host_gets=CommandFrame(cid=cid, topic_id=down_id, data=down),
    )


def through_case(kind: str, unit: int, port: str, frame_id: str | None) -> Case:
    up = f"raw {kind} up, 1,2,3"
    down = f"raw {kind} down: not JSON {{a,b"
    return Case(
        side=f"through-{kind}",
        unit=unit,
        port=port,
        up=PassthroughFrame(topic_id=frame_id, data=up),
        cloud_gets=up.encode(),
        cloud_sends=down.encode(),
        host_gets=PassthroughFrame(topic_id=frame_id, data=down),
    )


CASES = [
    command_case("mqtt", "1", "1", "1"),
    command_case("tcp", "2", None, None),
    command_case("udp", "3", None, None),
    command_case("http", "4", "0", "0"),
    command_case("aliyun", "5", "0", "0"),
    command_case("txyun", "6", "0", "0"),
    # the pkgid of an uplink is ignored; a downlink always carries 0
    command_case("quecthing", "7", "3", "0"),
    through_case("tcp", 1, "uart", None),
    through_case("mqtt", 1, "rs232", "0"),
    through_case("udp", 2, "uart", None),
    through_case("http", 2, "rs232", "0"),
    through_case("aliyun", 3, "uart", "0"),
    through_case("txyun", 3, "rs232", "0"),
    through_case("quecthing", 4, "uart", "0"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.side for c in CASES])
def test_channel_carries_data_both_ways_through_the_pty(rig: Rig, case: Case) -> None:
    """The host's frame reaches the far end exactly; the far end's answer comes back as a frame."""
    host = rig.hosts[case.unit, case.port]
    side = rig.sides[case.side]
    side.arm(case.cloud_sends)
    host.send(case.up)
    side.expect(case.cloud_gets)
    assert host.next_frame() == case.host_gets
    assert_nothing_dropped(rig)


def assert_nothing_dropped(rig: Rig) -> None:
    """The up process logged no dropped frame, lost uplink or unusable downlink so far."""
    log = rig.log.text()
    for problem in ("frame dropped", "uplink lost", "downlink", "crashed"):
        assert problem not in log, log
    assert rig.fleet.process.poll() is None, log


def test_non_ascii_text_keeps_its_characters_both_ways(rig: Rig) -> None:
    """Length and CRC-32 count characters: Chinese text and a degree sign survive the trip."""
    host = rig.hosts[1, "rs232"]
    side = rig.sides["through-mqtt"]
    side.arm("温度=23,5°C 下行".encode())
    host.send(PassthroughFrame(topic_id="0", data="温度=23,5°C 上行"))
    side.expect("温度=23,5°C 上行".encode())
    assert host.next_frame() == PassthroughFrame(topic_id="0", data="温度=23,5°C 下行")


def test_http_passthrough_forwards_the_whole_body_and_command_mode_only_its_data(
    rig: Rig,
) -> None:
    """The same JSON body: passthrough writes all of it, command mode the value of "data"."""
    body = json.dumps({"data": "inner", "extra": 1}).encode()
    for key, unit, port, up, expected in (
        ("through-http", 2, "rs232", PassthroughFrame(topic_id="0", data="q"), body.decode()),
        ("command-http", 0, "uart", CommandFrame(cid="4", topic_id="0", data="q"), "inner"),
    ):
        host = rig.hosts[unit, port]
        side = rig.sides[key]
        side.arm(body)
        host.send(up)
        side.expect(b"q" if unit else _wrapped("q"))
        assert host.next_frame().data == expected, key


def test_tcp_registration_message_comes_first_then_heartbeats(rig: Rig) -> None:
    """reg 1 (quec.md#6.4): the JSON (csq, imei, iccid, ver) opens the connection; ``ping`` follows
    every ``heartbeat`` seconds."""
    server = rig.servers.tcp_through
    deadline = time.monotonic() + 3 * HEARTBEAT_S + WAIT_S
    while server.stream().count(PING.encode()) < 2:
        assert time.monotonic() < deadline, f"fewer than 2 heartbeats: {server.stream()!r}"
        time.sleep(0.1)
    stream = server.stream()
    end = registration_end(stream)
    assert end is not None, stream
    registration = json.loads(stream[:end])
    identity = Identity.for_unit(SEED, 1)
    assert set(registration) == {"csq", "imei", "iccid", "ver"}
    assert (registration["imei"], registration["iccid"], registration["ver"]) == (
        identity.imei,
        identity.iccid,
        100,
    )
    assert 0 <= registration["csq"] <= 31
    rest = stream[end:].decode()
    # after the registration: heartbeats, and the host's data if that case ran already
    assert rest.replace(PING, "").replace(through_tcp_uplink(), "") == "", rest


def through_tcp_uplink() -> str:
    (case,) = (c for c in CASES if c.side == "through-tcp")
    return case.up.data


def test_command_mode_unit_without_reg_sends_only_the_hosts_data(rig: Rig) -> None:
    """reg 0 and no ping: unit 0's TCP and UDP servers get nothing but ``{"data": ...}``."""
    for cid, key in (("2", "command-tcp"), ("3", "command-udp")):
        host = rig.hosts[0, "uart"]
        side = rig.sides[key]
        side.arm(b"{}")
        host.send(CommandFrame(cid=cid, data="only data"))
        side.expect(_wrapped("only data"))
        # an answer without "data" is forwarded whole
        assert host.next_frame() == CommandFrame(cid=cid, data="{}")
    decoder = json.JSONDecoder()
    text = rig.servers.tcp_command.stream().decode()
    while text:
        value, end = decoder.raw_decode(text)
        assert list(value) == ["data"], text
        text = text[end:]
    for datagram in rig.servers.udp_command.datagrams.snapshot():
        assert list(json.loads(datagram.data)) == ["data"], datagram


def test_a_wrong_device_secret_is_refused_and_the_channel_never_connects(rig: Rig) -> None:
    """The broker refuses the login signed with a wrong DeviceSecret: code 11 reads -1 (error)
    and the unit logs the refusal, while its other channels are connected."""
    host = rig.hosts[0, "uart"]
    states = host.command(11, password_of(0))["data"]
    assert states[BAD_CID] == MqttState.ERROR
    assert connected(rig.configs[0], states)
    seen = rig.states_seen[0]
    assert all(s[BAD_CID] != MqttState.CONNECTED for s in seen), seen
    log = rig.log.text()
    assert re.search(rf"dtu0 .* ch{BAD_CID}: aliyun refused", log), log
    # the cloud console reads the same through the unit's mqtt channel
    console = cloud_console("--pty-dir", str(rig.pty_dir), "cmd", imei_of(0), "11")
    assert console.returncode == 0, console.stdout + console.stderr
    assert json.loads(console.stdout)["data"][BAD_CID] == MqttState.ERROR
