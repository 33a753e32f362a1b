"""The scenario file format: what a YAML scenario may say, checked with pydantic.

Why pydantic: the format is a tree of typed records with alternatives (a step does one
of several things, an expectation checks one of several figures); pydantic states each
record once, checks types, ranges and unknown keys, and reports every error with its
path (``steps -> 3 -> fault``), which ``load_scenario`` turns into the file's line.
Domain checks go through the same code the rest of vdtu uses: fault kinds and their
parameters through the catalogue (``parse_request``), selectors through
``parse_selector``, pokes through ``POKES``.

docs/scenarios.md describes the format for users; ``scenarios/`` holds examples.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from vdtu.control.pokes import POKES, PokeError
from vdtu.control.selector import SelectorError, parse_selector
from vdtu.durations import parse_duration, parse_rate
from vdtu.faults.catalogue import FaultError, parse_request
from vdtu.firmware.registry import PERSONALITIES, options_with, personality

MAX_UNITS = 100_000


def _selector(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"a selector is text such as all, 0-9 or tag=north, not {value!r}")
    try:
        parse_selector(value)
    except SelectorError as exc:
        raise ValueError(str(exc)) from None
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
Rate = Annotated[float, BeforeValidator(parse_rate)]
Selector = Annotated[str, BeforeValidator(_selector)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _host(value: object) -> object:
    """``none`` and ``external`` are host plans of that kind."""
    if value in ("none", "external"):
        return {"kind": value}
    if isinstance(value, str):
        raise ValueError(
            f"host is none, external, or a plan such as {{uplink_every: 1m}}; not {value!r}"
        )
    return value


class PollPlan(_Record):
    """A host that has its unit send a Modbus request on the RS-485 bus every ``every``
    (XGC: SEND_MBR_485; a QuecPython DTU polls its slaves itself, by its Modbus mode)."""

    every: Duration
    address: int = Field(default=1, ge=0, le=247)
    function: int = Field(default=3, ge=1, le=16)
    reg: int = Field(default=0, ge=0, le=0xFFFF)
    """The first register (or coil) it asks for."""
    value: int = Field(default=1, ge=0, le=0xFFFF)
    """The quantity (functions 1-4) or the value (5, 6)."""


class HostPlan(_Record):
    """What the unit's host MCU is: ``none`` (it only sends what ``send`` steps say),
    ``external`` (the user's own code on the PTY: real time only), or a simulated host
    that sends an uplink every ``uplink_every`` (each period drawn within +/-20 %) once its
    unit has reached its cloud, carries out the cloud's jobs (``jobs``) and polls a slave
    (``poll``)."""

    kind: Literal["simulated", "none", "external"] = "simulated"
    uplink_every: Duration | None = None
    payload: int = Field(default=64, ge=32, le=4096)
    """The uplink's size in characters."""
    jobs: bool = False
    """Apply the cloud's configurations and firmware jobs and report them (XGC hosts:
    NOTIFY_CONFIG -> UPLOAD_CONFIG_STATUS; NOTIFY_OTA -> DTU_OTA -> UPLOAD_OTA_STATUS)."""
    poll: PollPlan | None = None


CHECK_IMEI = "860000000000000"
"""The IMEI a group's ``config`` is checked with (each unit's own goes in its file)."""


class UnitGroup(_Record):
    """Units that share a profile, settings and host; ids are given in file order."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    """The group's name; it is also a tag of each of its units (``tag=<name>``)."""
    count: int = Field(ge=1, le=MAX_UNITS)
    profile: str = "xgc"
    tags: tuple[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")], ...] = ()
    powered: bool = True
    """Powered at the start (False: a step powers them on, e.g. a ramp of ``power-on``)."""
    rssi: int = Field(default=26, ge=0, le=31)
    """The signal's mean (CSQ)."""
    slaves: Literal["none", "demo"] = "none"
    """The RS-485 bus: empty, or the demo Modbus slave at address 1 (README, "Without
    --slaves")."""
    host: Annotated[HostPlan, BeforeValidator(_host)] = HostPlan(kind="none")
    options: dict[str, Any] = Field(default_factory=dict)
    """The firmware's settings that differ from its defaults (XGC: ``keepalive_s: 10``,
    ``uplink_queue``, ``check_mode``, ...: the personality's options, by field name)."""
    config: dict[str, Any] = Field(default_factory=dict)
    """Changes to the configuration file the units start with (QuecPython: its
    dtu_config.json, e.g. ``{work_mode: through}`` or a channel's ``keepAlive``), merged
    into the default: a mapping into the mapping it meets, anything else replacing."""

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        if value not in PERSONALITIES:
            raise ValueError(f"profile must be one of {', '.join(PERSONALITIES)}, not {value!r}")
        return value

    @model_validator(mode="after")
    def _options(self) -> UnitGroup:
        if self.options:
            try:
                options_with(self.profile, self.options)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"options: {exc}") from None
        return self

    @field_validator("config")
    @classmethod
    def _config(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        profile = info.data.get("profile")
        if value and profile is not None:  # None: the profile was refused already
            personality(profile).configured(None, CHECK_IMEI, value)
        return value

    def firmware_options(self) -> object | None:
        """The group's firmware options (None: the personality's defaults)."""
        return options_with(self.profile, self.options) if self.options else None


class WaitFor(_Record):
    """Wait until the selected units are in a state, or each wrote a line, or sent an
    uplink matching a pattern; the wait fails after ``timeout``."""

    select: Selector = "all"
    state: str | None = None
    """A phase (``connected``, ``connecting``, ``off``, ...) or personality state."""
    serial: str | None = None
    """A regular expression a line the unit writes toward its host must match."""
    uplink: str | None = None
    """A regular expression an uplink the cloud receives from the unit must match."""
    message: str | None = None
    """A regular expression ``<topic> <payload>`` of any message the cloud receives from
    the unit must match (its state, a job's status, a command's answer, an uplink)."""
    timeout: Duration

    @model_validator(mode="after")
    def _one_condition(self) -> WaitFor:
        conditions = ("state", "serial", "uplink", "message")
        given = [name for name in conditions if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"a wait needs exactly one of {', '.join(conditions)}; got {given}")
        for name in conditions[1:]:
            pattern = getattr(self, name)
            if pattern is not None:
                _check_pattern(pattern)
        return self


def _check_pattern(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None


ACTIONS = ("fault", "clear", "poke", "downlink", "send", "config", "ota", "wait", "note")


class Step(_Record):
    """One step of the timeline: when (``at``, ``after`` or ``every``) and what."""

    at: Duration | None = None
    """Sim time from the start."""
    after: Duration | None = None
    """Time after the previous step was done (a wait is done when its condition held)."""
    every: Duration | None = None
    """Repeat with this period, from ``start`` (default 0) until ``until`` (default the
    end) or ``times`` repetitions."""
    start: Duration = 0.0
    until: Duration | None = None
    times: int | None = Field(default=None, ge=1, le=1_000_000)
    select: Selector = "all"
    ramp: Rate | None = None
    """Act on the selected units one after the other at this rate, in unit order."""
    fault: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    lasting: Duration | None = Field(default=None, alias="for")
    clear: str | None = None
    """A fault kind, or ``all``."""
    poke: str | None = None
    downlink: str | None = None
    """A payload the cloud sends to each selected unit (JSON text or plain text)."""
    send: str | None = Field(default=None, min_length=1, max_length=4096)
    """A command line the unit's host writes, framed as ``vdtu term`` frames a typed line
    (XGC: ``SAVE_KEYS a:1`` becomes a ``$XGC#SAVE_KEYS#...`` frame with its check code)."""
    config: dict[str, Any] | None = None
    """A configuration the cloud pushes (XGC: the ``config`` topic, NOTIFY_CONFIG)."""
    ota: OtaOffer | None = None
    """A firmware job the cloud offers (XGC: the ``ota`` topic, NOTIFY_OTA)."""
    wait: WaitFor | None = None
    note: str | None = None
    """A line in the transcript, nothing more."""
    allow_refusal: bool = False
    """A unit that refuses the step (an empty SIM slot, a unit that is off) is expected; by
    default a refusal fails the run, with the unit and its reason."""

    @model_validator(mode="after")
    def _checked(self) -> Step:
        timing = [name for name in ("at", "after", "every") if getattr(self, name) is not None]
        if len(timing) != 1:
            raise ValueError(f"a step needs exactly one of at, after, every; got {timing}")
        if self.every is not None and self.every <= 0:
            raise ValueError("every must be > 0")
        actions = [name for name in ACTIONS if getattr(self, name) is not None]
        if len(actions) != 1:
            raise ValueError(f"a step does exactly one of {', '.join(ACTIONS)}; got {actions}")
        if self.fault is not None:
            try:
                parse_request(self.fault, self.params, self.lasting)
            except FaultError as exc:
                raise ValueError(str(exc)) from None
        elif self.poke is not None:
            if self.poke not in POKES:
                raise ValueError(f"unknown poke {self.poke!r}; the pokes are: {', '.join(POKES)}")
            try:
                POKES[self.poke].check(self.params)
            except PokeError as exc:
                raise ValueError(f"{self.poke}: {exc}") from None
        elif self.params:
            raise ValueError("params go with a fault or a poke")
        if self.lasting is not None and self.fault is None:
            raise ValueError("for goes with a fault")
        if self.wait is not None and (self.every is not None or self.ramp is not None):
            raise ValueError("a wait cannot repeat (every) or ramp")
        if self.wait is not None and "select" in self.model_fields_set:
            raise ValueError("a wait's units go inside it: wait: {select: ..., ...}")
        return self

    @property
    def action(self) -> str:
        return next(name for name in ACTIONS if getattr(self, name) is not None)


class OtaOffer(_Record):
    version: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    filename: str | None = None
    """Default: ``<model>_<version>.bin`` (an XGC DTU takes only files named for its model)."""
    url: str | None = None
    md5: str | None = None


class Bound(_Record):
    """A figure's allowed range: ``min`` and/or ``max`` (inclusive)."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _some(self) -> Bound:
        if self.min is None and self.max is None:
            raise ValueError("a bound needs min, max or both")
        return self

    def holds(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def describe(self) -> str:
        if self.min is not None and self.max is not None:
            return f"in {self.min:g}..{self.max:g}"
        return f">= {self.min:g}" if self.min is not None else f"<= {self.max:g}"


def _bound(value: object) -> object:
    """A bare number means exactly that number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"min": value, "max": value}
    return value


Figure = Annotated[Bound, BeforeValidator(_bound)]


class UplinkCounts(_Record):
    """What became of the uplinks the simulated hosts handed to their units."""

    delivered_pct: Figure | None = None
    lost: Figure | None = None
    duplicated: Figure | None = None
    reordered: Figure | None = None


class StateCheck(_Record):
    select: Selector = "all"
    phase: str
    """What every selected unit's phase or personality state is (any case)."""
    at: Duration | None = None
    """When to look, in sim time from the start (None: at the end)."""


class SerialCheck(_Record):
    select: Selector = "all"
    sequence: tuple[str, ...] = ()
    """Regular expressions that lines each selected unit wrote toward its host match, in
    this order (other lines may come between)."""
    absent: tuple[str, ...] = ()
    """Regular expressions that no line of a selected unit may match."""

    @model_validator(mode="after")
    def _patterns(self) -> SerialCheck:
        if not self.sequence and not self.absent:
            raise ValueError("a serial check needs a sequence, absent patterns, or both")
        for pattern in (*self.sequence, *self.absent):
            _check_pattern(pattern)
        return self


class CloudCheck(_Record):
    """How many messages the cloud received from the selected units on topics matching
    ``topic`` (and, when given, with a payload matching ``payload``)."""

    select: Selector = "all"
    topic: str
    payload: str | None = None
    count: Figure

    @model_validator(mode="after")
    def _patterns(self) -> CloudCheck:
        _check_pattern(self.topic)
        if self.payload is not None:
            _check_pattern(self.payload)
        return self


class ReconnectCheck(_Record):
    """The time from each loss of a unit's cloud link to its return, over the selected
    units (a loss never followed by a return counts as lasting until the end)."""

    select: Selector = "all"
    count: Figure | None = None
    p50: Figure | None = None
    p99: Figure | None = None
    max: Figure | None = None


class FlashCheck(_Record):
    """What the selected units' flash holds at the end: the flash document, or the named
    file ``file``; with ``key`` (dotted: ``project.pid``) the value there of the document
    or of the file's JSON. The value (its JSON text if it is not a string) must match
    ``matches``."""

    select: Selector = "all"
    file: str | None = Field(default=None, min_length=1, max_length=100)
    key: str | None = Field(default=None, pattern=r"^[^.]+(\.[^.]+)*$", max_length=200)
    matches: str

    @model_validator(mode="after")
    def _pattern(self) -> FlashCheck:
        _check_pattern(self.matches)
        return self


class RoundTripCheck(_Record):
    """The time from each request the scenario's steps sent a selected unit from the cloud
    (``request``: a downlink, a configuration push or a firmware offer; with ``sent``, only
    those whose payload matches it) to its answer: the unit's next message on a topic
    matching ``topic`` (and a payload matching ``payload``), each answer for the oldest
    request waiting. A request still unanswered at the end counts in ``unanswered``."""

    select: Selector = "all"
    request: Literal["downlink", "config", "ota"]
    sent: str | None = None
    topic: str
    payload: str | None = None
    count: Figure | None = None
    """How many requests were answered."""
    unanswered: Figure | None = None
    p50: Figure | None = None
    p99: Figure | None = None
    max: Figure | None = None

    @model_validator(mode="after")
    def _patterns(self) -> RoundTripCheck:
        for pattern in (self.topic, self.payload, self.sent):
            if pattern is not None:
                _check_pattern(pattern)
        return self


CHECKS = ("uplinks", "state", "serial", "reconnect_s", "cloud", "flash", "round_trip_s")


class Expectation(_Record):
    """One check of the run, at its end; exactly one of its figures."""

    name: str | None = None
    uplinks: UplinkCounts | None = None
    state: StateCheck | None = None
    serial: SerialCheck | None = None
    reconnect_s: ReconnectCheck | None = None
    cloud: CloudCheck | None = None
    flash: FlashCheck | None = None
    round_trip_s: RoundTripCheck | None = None

    @model_validator(mode="after")
    def _one(self) -> Expectation:
        given = [n for n in CHECKS if getattr(self, n)]
        if len(given) != 1:
            raise ValueError(
                f"an expectation checks exactly one of {', '.join(CHECKS)}; got {given}"
            )
        return self

    @property
    def kind(self) -> str:
        return next(n for n in CHECKS if getattr(self, n))

    @property
    def title(self) -> str:
        return self.name or self.kind


class Scenario(_Record):
    """A whole scenario file."""

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    duration: Duration
    """Sim time the scenario lasts."""
    units: tuple[UnitGroup, ...]
    steps: tuple[Step, ...] = ()
    expect: tuple[Expectation, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if not self.units:
            raise ValueError("units: give at least one unit group")
        names = [group.name for group in self.units]
        doubled = sorted({name for name in names if names.count(name) > 1})
        if doubled:
            raise ValueError(f"unit group names must differ: {', '.join(doubled)}")
        total = sum(group.count for group in self.units)
        if total > MAX_UNITS:
            raise ValueError(f"at most {MAX_UNITS} units in all, not {total}")
        if self.duration <= 0:
            raise ValueError("duration must be > 0")
        return self

    @property
    def unit_count(self) -> int:
        return sum(group.count for group in self.units)
