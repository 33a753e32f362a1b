"""What an XGC host sees of the modem's and SIM's faults (issue 12), in virtual time.

The unit boots on a simulated platform that knows its project; the faults are applied to
its modem and SIM slot directly, as the fault catalogue will.
"""

from __future__ import annotations

import json

from tests.firmware.test_xgc_cloud import CloudBench, provisioned, states, topic
from tests.xgc_harness import XgcBench
from vdtu.cloud.xgc_api import Channel
from vdtu.firmware.xgc.states import DtuState
from vdtu.modem import SimCard

OTHER_CARD = SimCard(iccid="89860000000000000026", imsi="460009876543210", phone="18800000000")


def net_state(bench: XgcBench) -> str:
    fields = dict(item.split(":", 1) for item in bench.ask("GET_NET_INFO").split(";"))
    return fields["netState"]


def at(bench: XgcBench, line: str) -> list[str]:
    """The AT action's answer lines (nothing when the module does not answer)."""
    return [frame.content or "" for frame in bench.command("AT", line)]


def connected() -> CloudBench:
    bench = provisioned()
    bench.boot(until=DtuState.MQTT_CONNECTED)
    bench.clock.run_for(1)
    bench.frames()
    return bench


def test_congestion_reject_then_retry_after_t3346() -> None:
    """#22: +CREG: 0,3, netState UNREGISTER, mqtt-disconnected with the will; after T3346
    the module registers and the session connects again."""
    bench = connected()
    modem = bench.unit.modem
    modem.reject_registration(22, t3346_s=120)
    bench.clock.run_for(0.5)
    assert states(bench) == ["mqtt-disconnected"]
    assert json.loads(bench.platform.retained[topic(Channel.STATE)]) == {"state": "offline"}
    assert at(bench, "AT+CREG?") == ["+CREG: 0,3", "OK"]
    assert net_state(bench) == "UNREGISTER"
    modem.clear_registration_reject()
    bench.clock.run_for(100)
    assert net_state(bench) == "UNREGISTER"  # T3346 still runs
    bench.clock.run_for(40)
    assert net_state(bench) == "REGISTERED"
    assert bench.firmware.state is DtuState.MQTT_CONNECTED
    assert json.loads(bench.platform.retained[topic(Channel.STATE)]) == {"state": "online"}


def test_data_drop_loses_the_broker_and_keeps_the_outbox() -> None:
    """Registered but the data context is gone: the will, mqtt-disconnected, netState still
    REGISTERED; what the host sends meanwhile arrives after the context is back."""
    bench = connected()
    bench.unit.modem.drop_data(retry_s=30)
    bench.clock.run_for(0.5)
    assert states(bench) == ["mqtt-disconnected"]
    assert json.loads(bench.platform.retained[topic(Channel.STATE)]) == {"state": "offline"}
    assert net_state(bench) == "REGISTERED"
    for n in range(3):
        assert bench.ask("DATA_PACK", f"n:{n}", wait_s=1) == "ok"
    assert bench.platform.payloads(topic(Channel.UP)) == []
    bench.clock.run_for(40)
    assert states(bench)[-1] == "mqtt-connected"
    ups = [json.loads(p)["n"] for p in bench.platform.payloads(topic(Channel.UP))]
    assert ups == [0, 1, 2]
    assert bench.firmware.outbox.pending == []


def test_no_data_plan_registers_but_never_connects() -> None:
    """#33: init-ok (registered), then no cloud session until the plan is back."""
    bench = provisioned()
    bench.unit.modem.refuse_data(33, retry_s=10)
    bench.boot(until=DtuState.INIT_OK)
    bench.clock.run_for(60)
    assert bench.firmware.state is DtuState.INIT_OK
    assert net_state(bench) == "REGISTERED"
    bench.unit.modem.clear_data_refusal()
    bench.clock.run_for(15)
    assert bench.firmware.unit_state.detail == DtuState.MQTT_CONNECTED.value


def test_hung_modem_answers_no_at_command_until_reset() -> None:
    bench = connected()
    bench.unit.modem.hang()
    bench.clock.run_for(0.5)
    assert states(bench) == ["mqtt-disconnected"]
    assert at(bench, "AT+CSQ") == []
    bench.clock.run_for(300)
    assert at(bench, "AT") == []
    bench.unit.modem.reset()
    bench.clock.run_for(60)
    assert at(bench, "AT") == ["OK"]
    assert bench.firmware.state is DtuState.MQTT_CONNECTED


def test_modem_reboot_is_seen_as_net_state_changes() -> None:
    """The module restarts: INIT while it boots, mqtt-disconnected, then connected again."""
    bench = connected()
    bench.unit.modem.reboot()
    bench.clock.run_for(0.5)
    assert states(bench) == ["mqtt-disconnected"]
    assert net_state(bench) == "INIT"
    bench.clock.run_for(60)
    assert states(bench) == ["mqtt-connected"]
    assert net_state(bench) == "REGISTERED"


def test_swapped_sim_reports_its_iccid() -> None:
    bench = connected()
    bench.unit.sim.swap(OTHER_CARD)
    bench.clock.run_for(0.5)
    assert states(bench) == ["mqtt-disconnected"]
    assert bench.ask("GET_ICCID") == OTHER_CARD.iccid
    bench.clock.run_for(60)
    assert bench.firmware.state is DtuState.MQTT_CONNECTED


def test_pin_locked_sim_shows_sim_pin() -> None:
    bench = connected()
    bench.unit.sim.pin_lock()
    bench.clock.run_for(0.5)
    assert states(bench) == ["mqtt-disconnected"]
    assert at(bench, "AT+CPIN?") == ["+CPIN: SIM PIN", "OK"]
    assert bench.ask("GET_ICCID").startswith("error:sim-locked;")
    assert "simStatus:false" in bench.ask("GET_NET_INFO")
    bench.unit.sim.block()
    assert at(bench, "AT+CPIN?") == ["+CPIN: SIM PUK", "OK"]


def test_no_network_time_gives_the_documented_error() -> None:
    """GET_NOW without network time: error:no-network-time (docs/spec/xgc.md#5.8)."""
    bench = connected()
    bench.unit.modem.withhold_network_time()
    assert bench.ask("GET_NOW", "timestamp").startswith("error:no-network-time;")
    bench.unit.modem.clear_network_time_fault()
    assert bench.ask("GET_NOW", "timestamp").isdigit()
