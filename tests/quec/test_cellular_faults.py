"""What a QuecPython unit shows of the modem's and SIM's faults (issue 12), in virtual time."""

from __future__ import annotations

import json

from tests.quec_harness import QuecBench
from vdtu.firmware.quec.config import default_config
from vdtu.modem import SimCard

PASSWORD = "362828"
NAMED_BROKER = ("broker.vdtu", 1883)
OTHER_CARD = SimCard(iccid="89860000000000000026", imsi="460009876543210", phone="18800000000")


def channel_connected(bench: QuecBench) -> bool:
    return bench.firmware.drivers["1"].connected


def test_data_drop_loses_the_channel_and_it_reconnects() -> None:
    """The data call dropped: the MQTT channel is lost at once (code 11 no longer 0);
    re-activated after retry_s, the channel connects again and takes commands."""
    bench = QuecBench()
    bench.boot()
    bench.unit.modem.drop_data(retry_s=30)
    bench.clock.run_for(0.1)
    assert not channel_connected(bench)
    assert bench.firmware.channel_states() != {"1": 0}
    assert bench.firmware.drivers["1"].links_lost == 1
    bench.run_until(lambda: channel_connected(bench), limit_s=60)
    assert bench.clock.now >= 30
    assert bench.command(11, password=PASSWORD)["data"] == {"1": 0}


def test_refused_data_keeps_the_unit_off_the_cloud() -> None:
    """#33 (no data plan): registered (code 12 would say 1), but no channel comes up."""
    bench = QuecBench()
    bench.unit.modem.refuse_data(33, retry_s=10)
    bench.host_on("uart")
    bench.unit.power_on()
    bench.clock.run_for(60)
    assert bench.unit.modem.registered
    assert bench.firmware.state == "waiting-network"
    bench.unit.modem.clear_data_refusal()
    bench.run_until(lambda: "1" in bench.firmware.drivers and channel_connected(bench))
    assert bench.command(12, password=PASSWORD)["data"] == {"voice_state": 1, "data_state": 1}


def test_roaming_shows_in_code_12() -> None:
    bench = QuecBench()
    bench.boot()
    bench.unit.modem.force_roaming()
    bench.run_until(lambda: bench.unit.modem.reg_stat == 5 and channel_connected(bench))
    assert bench.command(12, password=PASSWORD)["data"] == {"voice_state": 5, "data_state": 5}


def test_congestion_reject_shows_in_code_12_after_recovery_and_drops_the_channel() -> None:
    """#22: the channel is lost with the registration; after T3346 the unit is back and
    code 12 says 1 again."""
    bench = QuecBench()
    bench.boot()
    bench.unit.modem.reject_registration(22, t3346_s=60)
    bench.clock.run_for(0.1)
    assert int(bench.unit.modem.reg_stat) == 3
    assert not channel_connected(bench)
    bench.unit.modem.clear_registration_reject()
    bench.clock.run_for(50)
    assert not channel_connected(bench)
    bench.run_until(lambda: channel_connected(bench), limit_s=400)
    assert bench.command(12, password=PASSWORD)["data"] == {"voice_state": 1, "data_state": 1}


def test_dns_failure_keeps_a_named_broker_unreachable() -> None:
    """A channel whose broker is a host name cannot connect while DNS fails."""
    bench = QuecBench(
        config=lambda imei: default_config(
            imei, broker_host=NAMED_BROKER[0], broker_port=NAMED_BROKER[1]
        )
    )
    bench.net.brokers.add(NAMED_BROKER)
    bench.unit.modem.fail_dns()
    bench.host_on("uart")
    bench.unit.power_on()
    bench.clock.run_for(120)
    driver = bench.firmware.drivers["1"]
    assert not driver.connected
    assert "DNS lookup of 'broker.vdtu' failed" in driver.last_error
    assert bench.net.links == []
    bench.unit.modem.clear_dns_failure()
    bench.run_until(lambda: channel_connected(bench), limit_s=400)


def test_swapped_sim_reports_its_iccid_in_code_6() -> None:
    bench = QuecBench()
    bench.boot()
    bench.unit.sim.swap(OTHER_CARD)
    bench.run_until(lambda: channel_connected(bench), limit_s=400)
    reply = bench.command(6, password=PASSWORD)
    assert reply["data"] == OTHER_CARD.iccid
    assert json.loads(json.dumps(bench.unit.modem.snapshot()))["sim"]["iccid"] == OTHER_CARD.iccid
