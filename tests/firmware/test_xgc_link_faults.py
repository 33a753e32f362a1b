"""What an XGC unit shows of its IP link's faults and its platform's (issue 12), in virtual time.

The unit runs against the simulated platform and broker (50 ms one way); the faults are
set through the personality interface (``set_link_conditions``, ``reset_link``,
``set_platform_conditions``), as the fault catalogue sets them.
"""

from __future__ import annotations

import json

from tests.firmware.test_xgc_cloud import CloudBench, provisioned, states, topic
from vdtu.cloud.xgc_api import Channel
from vdtu.firmware.xgc.states import DtuState
from vdtu.net.conditions import LinkConditions, PlatformConditions

KEEPALIVE_S = 60
"""The XGC firmware's default MQTT keep-alive."""


def connected() -> CloudBench:
    bench = provisioned()
    bench.boot(until=DtuState.MQTT_CONNECTED)
    bench.clock.run_for(1)
    bench.frames()
    return bench


def retained_state(bench: CloudBench) -> str:
    return str(json.loads(bench.platform.retained[topic(Channel.STATE)])["state"])


def ups(bench: CloudBench) -> list[int]:
    return [json.loads(p)["n"] for p in bench.platform.payloads(topic(Channel.UP))]


def log_lines(bench: CloudBench, text: str) -> list[str]:
    return [entry.text for entry in bench.unit.log.records if text in entry.text]


def test_blackhole_is_found_by_keepalive_will_then_mqtt_disconnected_and_nothing_is_lost() -> None:
    """No RST, no FIN: the host hears nothing until keep-alive gives up (PINGREQ one
    keepalive in, no PINGRESP one keepalive later); the broker publishes the will after
    1.5 keepalives of silence; what the host handed over meanwhile arrives, in order,
    after the blackhole clears."""
    bench = connected()
    bench.firmware.set_link_conditions(LinkConditions(blackhole=True))
    for n in range(3):
        assert bench.ask("DATA_PACK", f"n:{n}", wait_s=1) == "ok"
    bench.clock.run_for(KEEPALIVE_S)
    assert states(bench) == []
    assert retained_state(bench) == "online"
    bench.clock.run_for(KEEPALIVE_S / 2 + 1)
    assert retained_state(bench) == "offline"  # the broker gave up first
    assert states(bench) == []
    bench.clock.run_for(KEEPALIVE_S / 2)
    assert states(bench) == ["mqtt-disconnected"]
    assert log_lines(bench, "connection lost: keepalive timeout")
    assert ups(bench) == []
    bench.clock.run_for(120)  # reconnects time out while the blackhole lasts
    assert states(bench) == []
    assert log_lines(bench, "connect failed: timed out after 10 s")
    bench.firmware.set_link_conditions(None)
    bench.clock.run_for(200)
    assert states(bench) == ["mqtt-connected"]
    assert retained_state(bench) == "online"
    assert ups(bench) == [0, 1, 2]
    assert bench.firmware.outbox.pending == []


def test_a_blackhole_cleared_before_keepalive_notices_ends_in_a_reset_and_nothing_is_lost() -> None:
    """A NAT that forgot the connection: what the unit sent into the blackhole is sent
    again after the clear and meets an RST, so the unit reconnects and sends it on the new
    connection; the broker ends the old connection (its will) when the new one takes the
    session over, before the new one says online."""
    bench = connected()
    bench.firmware.set_link_conditions(LinkConditions(blackhole=True))
    for n in range(3):
        assert bench.ask("DATA_PACK", f"n:{n}", wait_s=1) == "ok"
    bench.clock.run_for(20)  # well inside one keep-alive: neither end has noticed
    assert states(bench) == []
    assert ups(bench) == []
    bench.firmware.set_link_conditions(None)
    bench.clock.run_for(1)
    assert states(bench) == ["mqtt-disconnected"]
    assert log_lines(bench, "connection lost: connection reset by peer")
    bench.clock.run_for(30)
    assert states(bench) == ["mqtt-connected"]
    assert ups(bench) == [0, 1, 2]
    assert bench.firmware.outbox.pending == []
    state_topic = topic(Channel.STATE)
    told = [
        json.loads(m.payload)["state"] for m in bench.platform.published if m.topic == state_topic
    ]
    assert told[-2:] == ["offline", "online"]
    assert retained_state(bench) == "online"
    bench.clock.run_for(2 * KEEPALIVE_S)  # the old connection's keep-alive deadline passes
    assert retained_state(bench) == "online"


def test_latency_delays_a_qos1_round_trip_by_ms_plus_minus_jitter() -> None:
    """ms=300 jitter=100: the broker has the uplink 200..400 ms late and the PUBACK is back
    400..800 ms late (over the 2 x 50 ms the simulated network always takes)."""
    bench = connected()
    bench.firmware.set_link_conditions(LinkConditions(latency_ms=300, jitter_ms=100))
    bench.send("DATA_PACK", "n:7")
    bench.clock.run_for(0.001)
    while not bench.firmware.outbox.pending:
        bench.clock.run_for(0.001)
    sent_at = bench.clock.now
    while bench.firmware.outbox.pending:
        bench.clock.run_for(0.001)
    acked_at = bench.clock.now
    (arrived,) = [p for p in bench.platform.published if p.topic == topic(Channel.UP)]
    assert 0.05 + 0.2 <= arrived.at - sent_at <= 0.05 + 0.4 + 0.002
    assert 0.1 + 0.4 <= acked_at - sent_at <= 0.1 + 0.8 + 0.002


def test_latency_draws_repeat_in_a_second_run() -> None:
    """The jitter comes from the unit's seeded random source: a run repeats."""
    times = []
    for _ in range(2):
        bench = connected()
        bench.firmware.set_link_conditions(LinkConditions(latency_ms=300, jitter_ms=100))
        for n in range(3):
            bench.send("DATA_PACK", f"n:{n}")
        bench.clock.run_for(3)
        times.append([p.at for p in bench.platform.published if p.topic == topic(Channel.UP)])
    assert times[0] == times[1]
    assert len(times[0]) == 3


def test_bandwidth_cap_makes_a_large_uplink_take_size_over_kbps() -> None:
    """kbps=8 (1000 bytes a second): a 3000-byte uplink reaches the broker 3 s later."""
    bench = connected()
    bench.firmware.set_link_conditions(LinkConditions(bandwidth_kbps=8))
    bench.send("DATA_PACK", "v:" + "x" * 3000)
    while not bench.firmware.outbox.pending:
        bench.clock.run_for(0.001)
    sent_at = bench.clock.now
    bench.clock.run_for(5)
    (arrived,) = [p for p in bench.platform.published if p.topic == topic(Channel.UP)]
    size = len(arrived.payload) + len(arrived.topic)
    assert arrived.at - sent_at >= size / 1000
    assert arrived.at - sent_at <= size / 1000 + 0.1
    assert bench.firmware.outbox.pending == []


def test_reset_publishes_the_will_notifies_mqtt_disconnected_and_reconnects() -> None:
    bench = connected()
    bench.firmware.reset_link()
    bench.clock.run_for(0.5)
    assert states(bench) == ["mqtt-disconnected"]
    assert retained_state(bench) == "offline"
    assert log_lines(bench, "connection lost: connection reset by peer")
    bench.clock.run_for(10)
    assert states(bench) == ["mqtt-connected"]
    assert retained_state(bench) == "online"


def test_connect_timeout_leaves_the_connection_but_fails_every_new_attempt() -> None:
    """The connection of the moment is untouched; after a reset each attempt fails at 10 s."""
    bench = connected()
    bench.firmware.set_link_conditions(LinkConditions(connect_timeout=True))
    bench.clock.run_for(300)
    assert bench.firmware.state is DtuState.MQTT_CONNECTED
    bench.firmware.reset_link()
    bench.clock.run_for(5.5)
    assert states(bench) == ["mqtt-disconnected"]
    attempts = len(bench.platform.connect_attempts)
    bench.clock.run_for(10)
    assert log_lines(bench, "connect failed: timed out after 10 s waiting for the TCP/TLS")
    assert len(bench.platform.connect_attempts) == attempts
    bench.firmware.set_link_conditions(None)
    bench.clock.run_for(120)
    assert bench.firmware.state is DtuState.MQTT_CONNECTED


def test_link_conditions_outlast_a_reboot() -> None:
    """A condition of the network: the rebooted unit still cannot get its credentials."""
    bench = connected()
    bench.firmware.set_link_conditions(LinkConditions(blackhole=True))
    bench.unit.reboot()
    bench.clock.run_for(120)
    assert bench.firmware.unit_state.detail == DtuState.GET_MQTT_INFO_FAIL.value
    assert log_lines(bench, "get mqtt info failed: no answer from the platform within 10 s")
    assert bench.firmware.link_conditions == LinkConditions(blackhole=True)
    bench.firmware.set_link_conditions(None)
    bench.clock.run_for(300)
    assert bench.firmware.state is DtuState.MQTT_CONNECTED


def test_platform_refuse_gives_get_mqtt_info_fail_and_retries_until_cleared() -> None:
    """The platform answers 503: get-mqtt-info-fail (not a wrong project: retried)."""
    bench = provisioned()
    bench.firmware.set_platform_conditions(PlatformConditions(refuse=True))
    bench.boot(until=DtuState.GET_MQTT_INFO_FAIL)
    assert states(bench) == ["init-ok", "get-mqtt-info-fail"]
    assert log_lines(bench, "get mqtt info failed: HTTP 503 from the platform")
    bench.clock.run_for(60)
    assert len(log_lines(bench, "HTTP 503")) >= 3
    bench.firmware.set_platform_conditions(None)
    bench.clock.run_for(120)
    assert states(bench)[-2:] == ["get-mqtt-info-ok", "mqtt-connected"]


def test_platform_slow_answers_the_credential_request_ms_late() -> None:
    bench = provisioned()
    bench.firmware.set_platform_conditions(PlatformConditions(delay_ms=4000))
    booted_at = bench.boot(until=DtuState.INIT_OK)
    info_at = bench.boot(until=DtuState.GET_MQTT_INFO_OK, limit_s=30)
    assert 4.0 <= info_at - booted_at <= 4.5
    assert states(bench)[-1] == "get-mqtt-info-ok"
