"""What the fleet does for the units of one personality: its fleet side, behind one interface.

A ``Fleet`` (``vdtu/fleet.py``) runs units of one or more personalities against one
shared broker. Each personality has a ``SideEntry`` in ``vdtu.links.sides``; the entry
needs no fleet: it adds the personality's options to ``vdtu up`` and builds them from
the parsed arguments, names the topic filter that covers its units' traffic, and
makes the ``FleetSide`` of one fleet. The side starts and stops the personality's
cloud part, gives the network object its units reach, merges the options a unit gets
with what the fleet needs, opens and checks a unit's named flash files (and moves
what an older vdtu wrote there), provisions its flash, adds its keys to a unit's
``vdtu up --json`` line and its part to ``up.json``, and says how a load test's
command probe reaches a unit. Its ``console`` is what the cloud console does for
its units (``vdtu.links.console_side``), its ``term`` what the host console does
(``vdtu.links.term_side``).

One side also hosts the shared broker (a ``BrokerHost``): every fleet makes it,
whether or not it runs units of that personality. The fleet starts it first, with
every side's login check, and then the sides with it as their ``SharedBroker``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from vdtu.clock import Clock
from vdtu.cloud.broker_auth import Authenticator
from vdtu.cloud.broker_url import BrokerUrl
from vdtu.links.console_side import ConsoleSide
from vdtu.links.term_side import TermSide
from vdtu.log import UnitLog
from vdtu.net.mqtt import MqttHub
from vdtu.storage import TextFile

LoginCheck = Callable[[Authenticator], Authenticator]
"""Wraps the broker's check of logins with a personality's own (or returns it as it is)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SideContext:
    """What every side of one fleet is made with."""

    clock: Clock
    hub: MqttHub
    seed: int
    broker: BrokerUrl | None
    """The broker the user named (``--broker``); None: the embedded one."""
    state_dir: Path | None
    """Where flash files live; None keeps them in memory."""
    provision: bool
    """False: ``--unprovisioned`` (units start without what the fleet would give them)."""
    direct_logins: bool = False
    """Units get their logins from the fleet's own platform by a call in this process, not
    over its HTTP endpoint (``vdtu fleet``; XGC: ``MqttXgcCloud.direct_login``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Probe:
    """How a load test's command probe reaches one unit and knows its answer."""

    topic: str
    """Where the cloud sends the command."""
    key: str
    """The field whose value is the probe's number, in the command and in the unit's answer."""
    fields: Mapping[str, object]
    """The rest of the command."""

    def command(self, number: int) -> dict[str, object]:
        """The command of probe ``number``."""
        return {self.key: number, **self.fields}


class SharedBroker(Protocol):
    """The fleet's broker, as the sides see it once it is up."""

    @property
    def broker_url(self) -> BrokerUrl | None:
        """Where the broker is (None before it started)."""

    def unit_login(self, imei: str) -> tuple[str, str]:
        """The user name and password a unit logs in to the broker with."""


class FleetSide(Protocol):
    """What the fleet does for the units of one personality."""

    @property
    def network(self) -> object | None:
        """What its units reach (the personality's network; None before ``start``)."""

    def login_check(self, check: Authenticator) -> Authenticator:
        """The embedded broker's check of logins, with this personality's own added."""

    async def start(self, broker: SharedBroker) -> None:
        """Start its cloud part (the shared broker is up)."""

    async def stop(self) -> None:
        """Stop its cloud part (its units are off; the broker stops after)."""

    def unit_options(self, given: object | None) -> object | None:
        """The options a unit runs with: ``given`` (the user's, or None) with what the
        fleet adds."""

    def unit_files(self, imei: str) -> Mapping[str, TextFile]:
        """The named flash files of unit ``imei``, checked.

        Raises:
            ConfigError: a file is not valid (naming the file and the field).
        """

    def prepare_files(self, files: Mapping[str, TextFile], imei: str, log: UnitLog) -> None:
        """Before the unit starts: move what an older vdtu wrote into its files."""

    def provision(self, flash: dict[str, Any]) -> bool:
        """Give a unit's flash document what the fleet provisions; whether it changed."""

    def unit_keys(self, files: Mapping[str, TextFile]) -> dict[str, Any]:
        """The keys this personality adds to a unit's ``vdtu up --json`` line."""

    def discovery(self) -> dict[str, Any]:
        """Its keys in ``up.json`` (after ``start``)."""

    def probe(self, imei: str, key: str) -> Probe:
        """The command probe of unit ``imei``: a command its unit (or, if the unit cannot
        answer by itself, its simulated host, which echoes what carries ``key``) answers."""

    def unit_uplink_topic(self, imei: str) -> str:
        """The topic unit ``imei``'s uplinks arrive on: the one topic of the entry's
        ``uplink_topic`` filter that is this unit's (a load-test shard reads only its own
        units')."""


class BrokerHost(FleetSide, SharedBroker, Protocol):
    """The side whose cloud hosts the fleet's broker, its console login and its project."""

    @property
    def project_id(self) -> str:
        """The fleet's project (the console's default)."""

    @property
    def project_secret(self) -> str: ...

    async def start_broker(self, logins: Sequence[LoginCheck]) -> None:
        """Start the broker (embedded: checking logins with each of ``logins`` added) or
        reach the user's, and what checks its logins."""

    async def stop_broker(self) -> None:
        """Stop what ``start_broker`` started."""

    @property
    def broker_paused(self) -> bool:
        """Whether the broker is stopped by ``pause_broker`` (the ``broker-stop`` fault)."""

    async def pause_broker(self) -> None:
        """Stop the embedded broker for now (the ``broker-stop`` fault): every client's
        connection closes, new connects are refused; nothing if already paused.

        Raises:
            ConfigError: the fleet uses the user's broker (``--broker``).
        """

    async def resume_broker(self) -> None:
        """Start the paused broker again on the same port; units reconnect by their
        back-off. Nothing if it is not paused.

        Raises:
            ConfigError: the port was taken meanwhile (the broker stays stopped).
        """

    def broker_discovery(self) -> dict[str, Any]:
        """How a console reaches the broker: the start of ``up.json`` (with a secret)."""

    def console_login(self) -> BrokerUrl:
        """The broker with the login ``vdtu cloud`` uses."""


class SideEntry(Protocol):
    """One personality's fleet side in the registry: what needs no fleet, and its maker."""

    @property
    def name(self) -> str:
        """The personality's name (its registry entry's)."""

    @property
    def watch_topic(self) -> str:
        """A topic filter that covers its units' default traffic (``vdtu cloud watch``)."""

    @property
    def uplink_topic(self) -> str:
        """A topic filter that covers every one of its units' uplinks (what its host sends)."""

    @property
    def console(self) -> ConsoleSide:
        """What ``vdtu cloud`` does for its units: its subcommands, topics and refusals."""

    @property
    def term(self) -> TermSide:
        """What ``vdtu term`` does for its units: framing a typed line, showing their output."""

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """Add its unit options to ``vdtu up`` (a group of their own)."""

    def options(self, args: argparse.Namespace) -> object | None:
        """Its unit options from ``vdtu up``'s arguments (None: its defaults).

        Raises:
            ConfigError, ValueError: a value is not valid (the message names it).
        """

    def side(self, context: SideContext) -> FleetSide:
        """Its side in one fleet."""
