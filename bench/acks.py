"""What timing every uplink's PUBACK costs the fleet's process, against not timing, in one run.

The control API times each QoS 1 publish of a fleet's MQTT links to its PUBACK
(``MqttHub.on_acked``, docs/control-api.md ``ack_ms``): a send time kept per message in
flight, and two histogram adds per acknowledgement. This measures that cost where it is
paid, on the fleet's loop: ``--links`` real ``MqttLink`` s on one hub, connected to a
private mosquitto (its own process), each publishing a QoS 1 message of 200 bytes in
turn until ``--messages`` are acknowledged. Rounds alternate between the hub not timing
(``on_acked`` None: the baseline) and timing into two ``LatencyHistogram`` s as
``FleetHandle`` does; each round's CPU time of this process (user + system) is divided
by the messages acknowledged. Printed: per mode, the median over its rounds of the CPU
microseconds per message and of the messages a second, and the ratio timing/baseline.

Run from the repository root: ``python -m bench.acks [--links 200] [--messages 20000]
[--rounds 3] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # ``python bench/acks.py``: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import cpu_seconds, machine_line, markdown_table, progress
from vdtu.cloud.mosquitto import Mosquitto
from vdtu.histogram import LatencyHistogram
from vdtu.net.mqtt import MqttHub, MqttLink

PAYLOAD = b"x" * 200


async def one_round(port: int, links: int, messages: int, *, timed: bool) -> dict[str, float]:
    """Publish ``messages`` QoS 1 messages over ``links`` links; CPU s and wall s."""
    loop = asyncio.get_running_loop()
    hub = MqttHub(loop)
    total, window = LatencyHistogram(), LatencyHistogram()
    if timed:

        def acked(seconds: float) -> None:
            ms = seconds * 1000.0
            total.add(ms)
            window.add(ms)

        hub.on_acked = acked
    done = asyncio.Event()
    connected = 0
    acknowledged = 0
    published = 0
    ready = asyncio.Event()
    pool: list[MqttLink] = []

    def on_connected() -> None:
        nonlocal connected
        connected += 1
        if connected == links:
            ready.set()

    def publish(link: MqttLink) -> None:
        nonlocal published
        if published < messages:
            published += 1
            link.publish(f"bench/{link.client_id}/up", PAYLOAD, qos=1)

    for index in range(links):
        link = MqttLink(hub, client_id=f"acks{index}", host="127.0.0.1", port=port)

        def on_published(_mid: int, link: MqttLink = link) -> None:
            nonlocal acknowledged
            acknowledged += 1
            if acknowledged == messages:
                done.set()
            publish(link)

        link.on_connected = on_connected
        link.on_published = on_published
        link.connect()
        pool.append(link)
    await asyncio.wait_for(ready.wait(), 60)
    cpu0, wall0 = cpu_seconds(), time.monotonic()
    for link in pool:
        publish(link)
    await asyncio.wait_for(done.wait(), 300)
    cpu, wall = cpu_seconds() - cpu0, time.monotonic() - wall0
    hub.close()
    if timed:
        assert total.count == messages, (total.count, messages)
    return {"cpu_us_per_message": cpu / messages * 1e6, "messages_per_s": messages / wall}


async def measure(links: int, messages: int, rounds: int) -> dict[str, Any]:
    results: dict[str, list[dict[str, float]]] = {"baseline": [], "timed": []}
    with Mosquitto() as broker:
        for number in range(rounds):
            for mode in ("baseline", "timed"):
                figures = await one_round(broker.port, links, messages, timed=mode == "timed")
                progress(f"round {number + 1} {mode}: {figures['cpu_us_per_message']:.1f} us CPU "
                         f"a message, {figures['messages_per_s']:.0f} messages/s")  # fmt: skip
                results[mode].append(figures)
    summary = {
        mode: {
            key: statistics.median(r[key] for r in rounds_)
            for key in ("cpu_us_per_message", "messages_per_s")
        }
        for mode, rounds_ in results.items()
    }
    ratio = summary["timed"]["cpu_us_per_message"] / summary["baseline"]["cpu_us_per_message"]
    return {"links": links, "messages": messages, "rounds": rounds, "median": summary,
            "cpu_ratio": ratio, "all": results}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=200)
    parser.add_argument("--messages", type=int, default=20_000, help="acknowledged per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each mode, alternated")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    figures = asyncio.run(measure(options.links, options.messages, options.rounds))
    if options.json:
        print(json.dumps(figures, indent=1))
        return
    print(machine_line())
    print()
    rows = [
        [mode, f"{m['cpu_us_per_message']:.1f}", f"{m['messages_per_s']:.0f}"]
        for mode, m in figures["median"].items()
    ]
    print(markdown_table(["hub", "CPU us / message (median)", "messages/s (median)"], rows))
    print()
    print(f"timing / baseline CPU per message: {figures['cpu_ratio']:.3f}")


if __name__ == "__main__":
    main()
