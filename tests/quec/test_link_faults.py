"""What a QuecPython unit shows of its IP link's faults and its platform's (issue 12), in
virtual time, on the simulated network (20 ms one way).

The QuecPython DTU tells its host nothing when a channel's link goes (docs/spec/quec.md has
no such frame); what shows is code 11's channel state, the channel's counters, and the
offline store, from which uplinks that were not acknowledged are replayed.
"""

from __future__ import annotations

import json
import random

from tests.quec_harness import QuecBench
from vdtu.firmware.quec.channel_schema import MQTT_KEEPALIVE_DEFAULT_S
from vdtu.firmware.quec.frames import CommandFrame
from vdtu.firmware.quec.net import RESET_REASON, HttpRequest, HttpResponse, HttpResult
from vdtu.links.sim_quec import SimQuecNet
from vdtu.net.conditions import REFUSE_STATUS, Impairment, LinkConditions, PlatformConditions

PASSWORD = "362828"


def channel(bench: QuecBench):  # type: ignore[no-untyped-def]
    return bench.firmware.drivers["1"]


def uplink(bench: QuecBench, data: str) -> None:
    bench.host_on().write(CommandFrame(cid="1", topic_id="0", data=data).encode())
    bench.clock.run_for(0.5)


def test_blackhole_is_found_by_keepalive_and_unacknowledged_uplinks_are_replayed() -> None:
    """The channel looks connected until keep-alive gives up (at most two keepalives); the
    QoS 1 uplinks sent meanwhile go to the offline store and arrive after the clear."""
    bench = QuecBench()
    bench.boot()
    bench.firmware.set_link_conditions(LinkConditions(blackhole=True))
    for n in range(3):
        uplink(bench, f"m{n}")
    assert channel(bench).connected
    assert bench.published() == []
    bench.clock.run_for(2 * MQTT_KEEPALIVE_DEFAULT_S)
    assert not channel(bench).connected
    assert channel(bench).links_lost == 1
    assert channel(bench).last_error == "keepalive timeout"
    assert len(bench.firmware.offline) == 3
    bench.firmware.set_link_conditions(None)
    bench.run_until(lambda: len(bench.published()) == 3, limit_s=400)
    assert [json.loads(p)["data"] for p in bench.published()] == ["m0", "m1", "m2"]
    assert bench.command(11, password=PASSWORD)["data"] == {"1": 0}


def test_a_blackhole_cleared_before_keepalive_notices_ends_in_a_reset_and_nothing_is_lost() -> None:
    """A NAT that forgot the connection: after the clear the device's next packet meets an
    RST, the channel reconnects and the uplinks sent into the blackhole arrive, in order."""
    bench = QuecBench()
    bench.boot()
    bench.firmware.set_link_conditions(LinkConditions(blackhole=True))
    for n in range(3):
        uplink(bench, f"m{n}")
    bench.clock.run_for(MQTT_KEEPALIVE_DEFAULT_S / 3)  # neither end has noticed yet
    assert channel(bench).connected
    assert bench.published() == []
    bench.firmware.set_link_conditions(None)
    bench.clock.run_for(0.1)
    assert not channel(bench).connected
    assert channel(bench).last_error == RESET_REASON
    bench.run_until(lambda: len(bench.published()) == 3, limit_s=60)
    assert [json.loads(p)["data"] for p in bench.published()] == ["m0", "m1", "m2"]
    assert channel(bench).reconnects == 1


def test_reset_loses_the_channel_and_it_reconnects() -> None:
    bench = QuecBench()
    bench.boot()
    bench.firmware.reset_link()
    bench.clock.run_for(0.1)
    assert not channel(bench).connected
    assert channel(bench).last_error == RESET_REASON
    bench.run_until(lambda: channel(bench).connected, limit_s=30)
    assert channel(bench).reconnects == 1


def test_latency_delays_each_uplink_by_ms_plus_minus_jitter() -> None:
    bench = QuecBench()
    bench.boot()
    bench.firmware.set_link_conditions(LinkConditions(latency_ms=500, jitter_ms=100))
    sent_at = bench.clock.now
    bench.host_on().write(CommandFrame(cid="1", topic_id="0", data="late").encode())
    bench.run_until(lambda: bench.published() != [], limit_s=5)
    (arrived,) = [s for s in bench.net.sent if s.topic == bench.up_topic]
    assert 0.02 + 0.4 <= arrived.at - sent_at <= 0.02 + 0.6 + 0.2  # + the UART's own time


def test_connect_timeout_makes_every_new_attempt_fail_after_ten_seconds() -> None:
    bench = QuecBench()
    bench.boot()
    bench.firmware.set_link_conditions(LinkConditions(connect_timeout=True))
    bench.clock.run_for(120)
    assert channel(bench).connected  # the link of the moment is untouched
    bench.firmware.reset_link()
    bench.clock.run_for(30)
    assert not channel(bench).connected
    assert channel(bench).last_error.startswith("timed out after 10 s connecting to")
    bench.firmware.set_link_conditions(None)
    bench.run_until(lambda: channel(bench).connected, limit_s=400)


def test_link_conditions_outlast_a_reboot() -> None:
    bench = QuecBench()
    bench.boot()
    bench.firmware.set_link_conditions(LinkConditions(connect_timeout=True))
    bench.unit.reboot()
    bench.clock.run_for(120)
    assert not channel(bench).connected
    bench.firmware.set_link_conditions(None)
    bench.run_until(lambda: channel(bench).connected, limit_s=400)


def test_platform_refuse_and_slow_apply_to_credential_requests_only() -> None:
    """A credential request the platform refuses is answered 503; a slow one ms late; any
    other request is untouched."""
    bench = QuecBench()
    net: SimQuecNet = bench.net
    net.http_servers[("register.example", 80)] = lambda _r: HttpResponse(status=200, body=b"{}")
    results: list[tuple[float, HttpResult]] = []
    request = HttpRequest(method="POST", url="http://register.example/auth")

    def done(result: HttpResult) -> None:
        results.append((bench.clock.now, result))

    net.request(request, done, platform=PlatformConditions(refuse=True))
    net.request(request, done, platform=PlatformConditions(delay_ms=3000))
    net.request(request, done)
    bench.clock.run_for(5)
    answers = [(round(at, 3), r.status) for at, r in results if isinstance(r, HttpResponse)]
    assert answers == [(0.04, REFUSE_STATUS), (0.04, 200), (3.04, 200)]


def test_blackholed_request_gets_no_answer_within_its_timeout() -> None:
    bench = QuecBench()
    net: SimQuecNet = bench.net
    net.http_servers[("api.example", 80)] = lambda _r: HttpResponse(status=200, body=b"")
    results: list[HttpResult] = []
    impairment = Impairment(conditions=LinkConditions(blackhole=True), rng=random.Random(1))
    net.request(
        HttpRequest(method="GET", url="http://api.example/", timeout_s=7),
        results.append,
        impairment=impairment,
    )
    bench.clock.run_for(6.9)
    assert results == []
    bench.clock.run_for(0.2)
    assert [getattr(r, "reason", "") for r in results] == [
        "no answer from http://api.example/ within 7 s"
    ]
