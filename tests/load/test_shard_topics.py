"""A shard's verifier reads its own units' uplink topics only: one exact topic per unit,
each the unit's own under its personality's uplink filter."""

from __future__ import annotations

import asyncio
import io

from vdtu.identity import Identity
from vdtu.links.sides import SIDES
from vdtu.load.options import Shard, build_options
from vdtu.load.runner import LoadRun


def _matches(topic_filter: str, topic: str) -> bool:
    levels, wanted = topic.split("/"), topic_filter.split("/")
    if len(levels) != len(wanted):
        return False
    return all(w in ("+", t) for w, t in zip(wanted, levels, strict=True))


def _topics(shard: str) -> list[str] | None:
    async def build() -> list[str] | None:
        options = build_options({"units": 10, "profile": "mix", "shard": shard, "seed": 3})
        run = LoadRun(asyncio.get_running_loop(), options, io.StringIO())
        try:
            return run._uplink_topics()
        finally:
            await run.fleet.close()

    return asyncio.run(build())


def test_a_shard_subscribes_to_each_of_its_units_uplink_topic_and_no_other() -> None:
    topics = _topics("1/2")
    assert topics is not None
    block = Shard(index=1, count=2).block(10)
    assert len(topics) == len(set(topics)) == len(block)
    filters = [entry.uplink_topic for entry in SIDES.values()]
    for unit_id, topic in zip(block, topics, strict=True):
        assert Identity.for_unit(3, unit_id).imei in topic.split("/")
        assert sum(_matches(f, topic) for f in filters) == 1, topic
    # mix: even fleet ids are XGC units, odd ones QuecPython
    assert {topic.split("/")[0] for topic in topics} == {"xgc", "quec"}


def test_a_whole_fleet_in_one_process_reads_the_wildcard_filters() -> None:
    assert _topics("0/1") is None
