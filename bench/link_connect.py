"""CPU per MQTT connect of a bare ``MqttLink``: what ``vdtu/net/mqtt.py`` costs a unit's connect.

Run ``python -m bench.link_connect [--links 4000] [--rate 1000] [--publishes 0] [--runs 1]``.

What runs. A private mosquitto (``vdtu.cloud.mosquitto.Mosquitto``, anonymous, no queue
limit) and ``--links`` ``MqttLink``s on one ``MqttHub`` in this process, their
``connect()`` called at ``--rate`` a second (every 10 ms, those due). With
``--publishes N`` each link subscribes to one topic before it connects (so the SUBSCRIBE
goes out after CONNACK) and, once connected, publishes N QoS 1 messages of 220 bytes, as a
unit's first seconds do (the ONLINE message and the properties). A run ends when every
link has connected (and has every PUBACK); its CPU (user + system, ``getrusage``, this
process only: not mosquitto's) from the first ``connect()`` to then, over the links, is the
figure: the dial, CONNECT, CONNACK, the SUBSCRIBE and SUBACK, the PUBLISHes and PUBACKs,
and the loop around them. Closing the links is outside it. Each run is a new hub and a new
broker; the report (one line per run) goes to standard output.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from collections.abc import Sequence

from bench.common import machine_line, progress
from vdtu.cloud.mosquitto import Mosquitto
from vdtu.net.mqtt import MqttHub, MqttLink

STEP_S = 0.01
"""How often the pacing loop calls ``connect()`` on the links that are due."""
PAYLOAD = b'{"seq": 1, "v": "' + b"x" * 200 + b'"}'
DEADLINE_S = 120.0


def cpu_s() -> float:
    """This process's user + system CPU seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Run:
    """One run's links on one hub, and the count of what has come back."""

    def __init__(self, hub: MqttHub, port: int, links: int, publishes: int) -> None:
        self.publishes = publishes
        self.expected = links * max(publishes, 1)
        self.arrived = 0
        self.failures: list[str] = []
        self.done = asyncio.Event()
        self.links = [self._link(hub, port, index) for index in range(links)]

    def _link(self, hub: MqttHub, port: int, index: int) -> MqttLink:
        link = MqttLink(hub, client_id=f"bench-{index}", host="127.0.0.1", port=port)
        link.on_connect_failed = self.failures.append
        if self.publishes:
            link.subscribe(f"bench/{index}/down", 1)
            link.on_connected = lambda: self._publish(link, index)
            link.on_published = self._arrived
        else:
            link.on_connected = self._arrived
        return link

    def _publish(self, link: MqttLink, index: int) -> None:
        for _ in range(self.publishes):
            link.publish(f"bench/{index}/up", PAYLOAD, qos=1)

    def _arrived(self, *_mid: int) -> None:
        self.arrived += 1
        if self.arrived == self.expected:
            self.done.set()

    async def connect_all(self, rate: float) -> None:
        """Call ``connect()`` on every link at ``rate`` a second."""
        started, called = time.monotonic(), 0
        while called < len(self.links):
            due = min(len(self.links), int((time.monotonic() - started + STEP_S) * rate))
            for link in self.links[called:due]:
                link.connect()
            called = max(called, due)
            await asyncio.sleep(STEP_S)


async def one_run(links: int, rate: float, publishes: int) -> str:
    """One run on a new broker and hub; its report line."""
    with Mosquitto(max_queued_messages=0) as broker:
        hub = MqttHub(asyncio.get_running_loop())
        try:
            run = Run(hub, broker.url.port, links, publishes)
            cpu_before, wall_before = cpu_s(), time.monotonic()
            await run.connect_all(rate)
            async with asyncio.timeout(DEADLINE_S):
                await run.done.wait()
            cpu, wall = cpu_s() - cpu_before, time.monotonic() - wall_before
        finally:
            hub.close()
    if run.failures:
        raise SystemExit(f"{len(run.failures)} connects failed, first: {run.failures[0]}")
    return (
        f"links {links}, {rate:g}/s, {publishes} QoS 1 publishes each: wall {wall:.2f} s, "
        f"cpu {cpu:.3f} s = {1e6 * cpu / links:.1f} us per link"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options and print one line per run."""
    parser = argparse.ArgumentParser(prog="python -m bench.link_connect", description=__doc__)
    parser.add_argument("--links", type=int, default=4000)
    parser.add_argument("--rate", type=float, default=1000.0, help="connect() calls a second")
    parser.add_argument("--publishes", type=int, default=0, help="QoS 1 messages per link")
    parser.add_argument("--runs", type=int, default=1)
    options = parser.parse_args(argv)
    if options.links < 1 or options.rate <= 0 or options.publishes < 0 or options.runs < 1:
        parser.error("--links and --runs must be >= 1, --rate > 0, --publishes >= 0")
    print(machine_line())
    for number in range(options.runs):
        progress(f"run {number + 1} of {options.runs}")
        print(asyncio.run(one_run(options.links, options.rate, options.publishes)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
