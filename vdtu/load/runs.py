"""Run-scoped topics: each shard's final report on the broker, and ``vdtu fleet collect``.

How it works. Shards of one fleet that run apart (pods of a Kubernetes Indexed Job, a
few VMs started by hand with ``--shard i/n``) share a broker and a run id. A shard
started with ``--run-id ID`` publishes, at its end, its whole report (the JSON
``--report`` writes, histograms included, with ``"run_id"`` added) as one **retained
QoS 1** message on ``vdtu/runs/ID/reports/I``, ``I`` its shard index:

* retained, so the broker keeps the last report of each index: a collector may come
  before, during or after the shards, and a shard restarted with the same index (a pod
  that died) replaces what its earlier attempt published, so every unit is counted once;
* confirmed: the publishing link subscribes to its own topic first, so the broker sends
  the report back once it has taken it; a broker whose access rule drops the publish
  (mosquitto and the embedded broker still acknowledge it) is caught here, and the shard
  says so instead of leaving the collector to time out. It logs in with the fleet's own
  login (the ``--broker`` URL's), which needs to read and write ``vdtu/runs/ID/#``.

``collect`` subscribes to ``vdtu/runs/ID/reports/+``: the retained reports arrive at
once, the others as their shards end. Each report names its shard (``"i/n"``), so the
collector learns ``n`` from the first one (or ``--shards N`` says it up front); it waits
until it has every index ``0..n-1`` or the timeout passes, and merges them with
``report.merge`` (counts summed, histograms merged exactly); its exit status is
``vdtu fleet``'s rule, and a shard a signal stopped before its end (``errors.stopped_early``:
the run was shorter than planned) also fails it. A report for another run
id, of another index than its topic's, or not a report at all is skipped with a line
saying why; reports that disagree on ``n`` mean two runs shared the id, which is an
error. An empty retained message (a cleared report) is no report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from vdtu.cloud.broker_url import BrokerUrl, parse_broker_url
from vdtu.errors import ConfigError
from vdtu.histogram import ReportFormatError
from vdtu.load.options import RUN_ID_RE, Shard
from vdtu.load.report import FleetReport, merge, shortfalls
from vdtu.load.runner import write_report
from vdtu.net.mqtt import LinkState, MqttHub, MqttLink, connect_and_wait

TOPIC_ROOT = "vdtu/runs"
PUBLISH_TIMEOUT_S = 60.0
"""How long a shard tries to hand its report to the broker (redialling) before giving up."""
RETRY_S = 1.0
"""Pause between two attempts to publish a report."""
KEEPALIVE_S = 30
NOT_PUBLISHED_STATUS = 3
"""``vdtu fleet``'s exit status when the run's report could not be published: not the
run's verdict (0 or 1) nor a usage error (2), so a Job may retry the shard for it."""


class ReportNotPublishedError(Exception):
    """The broker did not take a shard's report; the message says why."""


def reports_filter(run_id: str) -> str:
    """The topic filter of every shard report of a run."""
    return f"{TOPIC_ROOT}/{run_id}/reports/+"


def report_topic(run_id: str, index: int) -> str:
    """Where shard ``index`` of run ``run_id`` publishes its report."""
    return f"{TOPIC_ROOT}/{run_id}/reports/{index}"


def report_payload(run_id: str, report: FleetReport) -> bytes:
    """The message: the report's JSON (as ``--report`` writes it) with ``run_id`` added."""
    return json.dumps({**report.to_json(), "run_id": run_id}, separators=(",", ":")).encode()


def login(broker: str, ca_file: Path | None, verify_login: str | None = None) -> BrokerUrl:
    """The broker URL with the login to use (``verify_login`` ``user:pass`` replaces the
    URL's own)."""
    url = parse_broker_url(broker, ca_file=ca_file)
    if verify_login is None:
        return url
    user, _, password = verify_login.partition(":")
    return replace(url, username=user, password=password)


def _link(hub: MqttHub, broker: BrokerUrl, role: str, run_id: str) -> MqttLink:
    return MqttLink(
        hub,
        client_id=f"vdtu-{role}-{run_id[:32]}-{secrets.token_hex(4)}",
        host=broker.host,
        port=broker.port,
        username=broker.username,
        password=broker.password,
        keepalive=KEEPALIVE_S,
        tls_ca=broker.ca_file,
    )


# -- a shard publishes ------------------------------------------------------------------


async def publish_report(
    broker: BrokerUrl, run_id: str, report: FleetReport, *, timeout_s: float = PUBLISH_TIMEOUT_S
) -> str:
    """Publish a one-shard report, retained, and wait until the broker has it (see the
    module comment); returns the topic.

    Raises:
        ReportNotPublishedError: not done within ``timeout_s``; the last reason is named.
    """
    if len(report.shards) != 1:
        raise ValueError(f"publish one shard's report, not one of shards {list(report.shards)}")
    shard = Shard.parse(report.shards[0])
    topic = report_topic(run_id, shard.index)
    payload = report_payload(run_id, report)
    loop = asyncio.get_running_loop()
    hub = MqttHub(loop)
    deadline = loop.time() + timeout_s
    try:
        while True:
            reason = await _publish_once(hub, broker, run_id, topic, payload, deadline=deadline)
            if reason is None:
                return topic
            if loop.time() + RETRY_S >= deadline:
                raise ReportNotPublishedError(
                    f"the broker {broker} did not take the report of shard {shard} on {topic} "
                    f"within {timeout_s:g} s: {reason}"
                )
            await asyncio.sleep(RETRY_S)
    finally:
        hub.close()


async def _publish_once(
    hub: MqttHub, broker: BrokerUrl, run_id: str, topic: str, payload: bytes, *, deadline: float
) -> str | None:
    """One attempt: None once the report came back from the broker, else why not."""
    loop = hub.loop
    link = _link(hub, broker, "report", run_id)
    outcome: asyncio.Future[str | None] = loop.create_future()

    def settle(reason: str | None) -> None:
        if not outcome.done():
            outcome.set_result(reason)

    def received(got: str, body: bytes) -> None:
        if got == topic and body == payload:
            settle(None)

    def subscribed(_filter: str, granted: int | None) -> None:
        if granted is None:
            settle(f"it refused this login's subscription to {topic} (its access rule)")

    link.on_message = received
    link.on_subscribed = subscribed  # the SUBACK may come in the CONNACK's read
    try:
        link.subscribe(topic, qos=1)
        reason = await connect_and_wait(link, max(0.1, deadline - loop.time()))
        if reason is not None:
            return f"cannot connect: {reason}"
        if outcome.done():
            return outcome.result()
        link.on_disconnected = lambda why: settle(f"connection lost: {why}")
        if link.publish(topic, payload, qos=1, retain=True) is None:
            return "connection lost before the report was sent"
        try:
            return await asyncio.wait_for(outcome, max(0.1, deadline - loop.time()))
        except TimeoutError:
            return (
                "it acknowledged nothing or did not pass the report on; does its access rule "
                f"let this login ({broker.username or 'anonymous'}) publish and read {topic}?"
            )
    finally:
        link.close()


# -- collecting ---------------------------------------------------------------------------


@dataclass(slots=True)
class Collection:
    """The reports of one run gathered so far, by shard index."""

    run_id: str
    count: int | None = None
    """How many shards the run has (``--shards``, or the first report's ``i/n``)."""
    reports: dict[int, FleetReport] = field(default_factory=dict)

    @property
    def missing(self) -> list[int]:
        """Shard indexes without a report (all of ``0..n-1`` while ``n`` is unknown: [])."""
        if self.count is None:
            return []
        return [index for index in range(self.count) if index not in self.reports]

    @property
    def complete(self) -> bool:
        return self.count is not None and not self.missing

    def take(self, topic: str, payload: bytes) -> str | None:
        """Add one message; returns a line to show (a report in, or why one was skipped).

        Raises:
            ConfigError: the report's shard count disagrees with the others' (two runs
                share the run id).
        """
        index_text = topic.rsplit("/", 1)[-1]
        if not index_text.isdigit():
            return f"skipped {topic}: not a shard index"
        index = int(index_text)
        if not payload:
            self.reports.pop(index, None)  # a cleared retained report
            return None
        try:
            data = json.loads(payload)
            report = FleetReport.from_json(data)
        except (ValueError, UnicodeDecodeError, ReportFormatError) as exc:
            return f"skipped {topic}: not a fleet report ({exc})"
        assert isinstance(data, Mapping)  # from_json refused anything else
        if data.get("run_id") != self.run_id:
            return f"skipped {topic}: its run_id is {data.get('run_id')!r}, not {self.run_id!r}"
        if len(report.shards) != 1:
            return f"skipped {topic}: one shard's report expected, not {list(report.shards)}"
        try:
            shard = Shard.parse(report.shards[0])
        except ConfigError as exc:
            return f"skipped {topic}: {exc}"
        if shard.index != index:
            return f"skipped {topic}: it holds the report of shard {shard}"
        if self.count is None:
            self.count = shard.count
        elif shard.count != self.count:
            others = "--shards says" if not self.reports else "the reports so far say"
            raise ConfigError(
                f"run {self.run_id}: {topic} holds the report of shard {shard}, but "
                f"{others} {self.count} shards: two runs share the run id (give each run its "
                "own) or --shards is wrong"
            )
        self.reports[index] = report
        return f"shard {shard} in ({len(self.reports)} of {self.count})"

    def merged(self) -> FleetReport:
        """The reports at hand merged, in shard order."""
        return merge(self.reports[index] for index in sorted(self.reports))


class CollectTimeoutError(Exception):
    """Not every shard's report arrived in time; ``collection`` holds those that did."""

    def __init__(self, message: str, collection: Collection) -> None:
        super().__init__(message)
        self.collection = collection


async def collect_reports(
    broker: BrokerUrl,
    run_id: str,
    *,
    shards: int | None = None,
    timeout_s: float,
    out: TextIO | None = None,
) -> Collection:
    """Wait for every shard's report of ``run_id`` (see the module comment).

    Raises:
        ConfigError: the broker cannot be reached or refuses the login or the
            subscription, or the reports disagree on the number of shards.
        CollectTimeoutError: ``timeout_s`` passed first; the message names what is missing.
    """
    loop = asyncio.get_running_loop()
    collection = Collection(run_id=run_id, count=shards)
    hub = MqttHub(loop)
    link = _link(hub, broker, "collect", run_id)
    changed = asyncio.Event()
    failure: list[BaseException] = []

    def received(topic: str, payload: bytes) -> None:
        try:
            line = collection.take(topic, payload)
        except ConfigError as exc:
            failure.append(exc)
            line = None
        if line is not None and out is not None:
            print(f"vdtu fleet collect: run {run_id}: {line}", file=out, flush=True)
        changed.set()

    def subscribed(topic: str, granted: int | None) -> None:
        if granted is None:
            failure.append(
                ConfigError(
                    f"the broker {broker} refused the subscription to {topic}: its access "
                    f"rule must let {broker.username or 'anonymous'} read {TOPIC_ROOT}/{run_id}/#"
                )
            )
            changed.set()

    link.on_message = received
    link.on_subscribed = subscribed
    link.subscribe(reports_filter(run_id), qos=1)
    try:
        reason = await connect_and_wait(link, min(timeout_s, 10.0) + 1)
        if reason is not None:
            raise ConfigError(f"cannot connect to the broker {broker}: {reason}")

        def redial(_why: str) -> None:  # the retained reports come again on the new session
            loop.call_later(RETRY_S, _redial, link)

        link.on_disconnected = redial
        link.on_connect_failed = redial
        deadline = loop.time() + timeout_s
        while not collection.complete and not failure:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise CollectTimeoutError(_missing_text(collection, timeout_s), collection)
            changed.clear()
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                continue
        if failure:
            raise failure[0]
        return collection
    finally:
        hub.close()


def _redial(link: MqttLink) -> None:
    if link.state is LinkState.DISCONNECTED:
        link.connect()


def _missing_text(collection: Collection, timeout_s: float) -> str:
    run = f"run {collection.run_id}"
    if collection.count is None:
        return (
            f"{run}: no shard report arrived within {timeout_s:g} s (on "
            f"{reports_filter(collection.run_id)}: is the run id right, have the shards "
            "ended, and may this login read there?)"
        )
    missing = ", ".join(str(index) for index in collection.missing)
    return (
        f"{run}: no report from shard{'s' if len(collection.missing) > 1 else ''} {missing} "
        f"of {collection.count} within {timeout_s:g} s"
    )


# -- the command -------------------------------------------------------------------------


def add_collect(
    fleet: argparse.ArgumentParser, parser_class: type[argparse.ArgumentParser]
) -> None:
    """``vdtu fleet collect`` as a subcommand of ``vdtu fleet``."""
    commands = fleet.add_subparsers(
        dest="fleet_command", metavar="{collect}", parser_class=parser_class
    )
    collect = commands.add_parser(
        "collect",
        help="gather the reports the shards of a run published (--run-id) into one",
        description="Wait for the final report of every shard of a run (published on "
        f"{TOPIC_ROOT}/RUN_ID/reports/I by vdtu fleet --run-id), merge them and print one "
        "report; exit 0 when every unit was connected at the end and nothing was lost.",
    )
    collect.add_argument("--broker", required=True, help="mqtt://[user:pass@]host:port")
    collect.add_argument("--ca-file", type=Path, default=None, help="CA file for mqtts")
    collect.add_argument("--run-id", required=True, help="the run id the shards were given")
    collect.add_argument(
        "--shards", type=int, default=None, help="how many shards to wait for (default: "
        "what the reports say)"
    )  # fmt: skip
    collect.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for them all (default 60)"
    )
    collect.add_argument("--report", type=Path, default=None, help="write the merged report here")
    collect.add_argument(
        "--partial",
        action="store_true",
        help="on a timeout, still print (and write) the merge of the reports that came",
    )


async def run_collect(args: argparse.Namespace, out: TextIO = sys.stderr) -> int:
    """``vdtu fleet collect``: the exit status (0 passed, 1 failed or incomplete)."""
    run_id: str = args.run_id
    if RUN_ID_RE.fullmatch(run_id) is None:
        raise ConfigError(f"--run-id must be what the shards were given, not {run_id!r}")
    if args.shards is not None and not 1 <= args.shards <= 100_000:
        raise ConfigError(f"--shards must be 1..100000, not {args.shards}")
    if not args.timeout > 0:
        raise ConfigError(f"--timeout must be > 0 s, not {args.timeout:g}")
    broker = login(args.broker, args.ca_file)
    try:
        collection = await collect_reports(
            broker, run_id, shards=args.shards, timeout_s=args.timeout, out=out
        )
    except CollectTimeoutError as exc:
        print(f"vdtu fleet collect: {exc}", file=out, flush=True)
        if args.partial and exc.collection.reports:
            _emit(exc.collection.merged(), args.report)
        return 1
    report = collection.merged()
    _emit(report, args.report)
    causes = shortfalls(report)
    stopped = report.errors.get("stopped_early", 0)
    if stopped:  # a shorter run than planned (the Job deleted, a shard stopped for good)
        causes.append(f"{stopped} of {collection.count} shards were stopped before their end")
    if causes:
        print(f"vdtu fleet collect: run {run_id}: {'; '.join(causes)}", file=out)
    return 1 if causes else 0


def _emit(report: FleetReport, path: Path | None) -> None:
    if path is not None:
        write_report(path, report)
    summary: dict[str, Any] = report.to_json()
    summary.pop("histograms", None)
    print(json.dumps(summary, indent=1), flush=True)
