"""What ``vdtu fleet`` runs: options from flags or a YAML file, checked with messages naming each.

A YAML file (``--config FILE``) holds the same names as the flags, with ``_`` for
``-`` (``units: 5000``, ``broker: mqtt://127.0.0.1:1883``, ``interval: 10``); a
flag given on the command line wins over the file. Unknown keys are refused with
the list of allowed ones.

A shard is ``i/n``, or ``env:VAR/n``: the index is read from the environment variable
``VAR`` when the options are parsed (a Kubernetes Indexed Job sets
``JOB_COMPLETION_INDEX`` in each pod, so every pod runs the same command line). A
missing variable, one that is not a number, or an index outside ``0..n-1`` is refused
naming the variable and its value.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from vdtu.errors import ConfigError
from vdtu.load.ramp import Ramp, check_stages, parse_ramp

PROFILES = ("xgc", "quec", "mix")
PLATFORM_LOGINS = ("direct", "http")
_SHARD_RE = re.compile(r"([0-9]+)/([0-9]+)")
_ENV_SHARD_RE = re.compile(r"env:([A-Za-z_][A-Za-z0-9_]*)/([0-9]+)")
RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A run id: one MQTT topic level of letters, digits, ``.``, ``_`` and ``-`` (no wildcard,
no ``/``), at most 64 characters; a Kubernetes Job's uid fits."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Shard:
    """This process's part of a fleet: shard ``index`` of ``count`` (0-based)."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ConfigError(f"shard must be i/n with 0 <= i < n, not {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"i/n"``, or ``"env:VAR/n"`` with the index read from ``os.environ[VAR]``."""
        from_env = _ENV_SHARD_RE.fullmatch(text.strip())
        if from_env is not None:
            return cls._from_env(from_env.group(1), int(from_env.group(2)))
        match = _SHARD_RE.fullmatch(text.strip())
        if match is None:
            raise ConfigError(
                f"shard must be i/n such as 0/2, or env:VAR/n such as "
                f"env:JOB_COMPLETION_INDEX/4, not {text!r}"
            )
        return cls(index=int(match.group(1)), count=int(match.group(2)))

    @classmethod
    def _from_env(cls, name: str, count: int) -> Shard:
        spec = f"shard env:{name}/{count}"
        if count < 1:
            raise ConfigError(f"{spec}: the number of shards must be 1 or more, not {count}")
        value = os.environ.get(name)
        if value is None:
            raise ConfigError(
                f"{spec}: the environment variable {name} is not set (a Kubernetes Indexed "
                "Job sets JOB_COMPLETION_INDEX in each pod; elsewhere give --shard i/n)"
            )
        if not value.strip().isdigit():
            raise ConfigError(f"{spec}: {name}={value!r} is not a shard index (0..{count - 1})")
        index = int(value)
        if index >= count:
            raise ConfigError(
                f"{spec}: {name}={index} is out of range for {count} shards (0..{count - 1}); "
                "the Job's completions and the shard count must be equal"
            )
        return cls(index=index, count=count)

    def block(self, units: int) -> range:
        """The fleet ids of this shard's units: a contiguous block of ``range(units)``."""
        start = units * self.index // self.count
        return range(start, units * (self.index + 1) // self.count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadOptions:
    """One load-test run."""

    units: int = 100
    profile: str = "xgc"
    broker: str | None = None
    """``mqtt://[user:pass@]host:port`` (None: the embedded broker)."""
    ca_file: Path | None = None
    verify_login: str | None = None
    """``user:password`` of the verifying subscriber (default: the broker URL's login, or
    the embedded broker's console login)."""
    ramp: Ramp = 100.0
    """Units powered on per second, or stages of (duration, target units up)
    (``vdtu/load/ramp.py``)."""
    duration: float = 60.0
    """Seconds of sending once the ramp (its last stage) has ended."""
    interval: float = 10.0
    """Mean seconds between two uplinks of one unit."""
    payload: int = 64
    """Characters in each uplink's JSON text."""
    seed: int = 0
    report: Path | None = None
    procs: int = 1
    shard: Shard = Shard()
    pty: bool = False
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    """The address ``/metrics`` listens on (``0.0.0.0`` in a pod, for Prometheus)."""
    run_id: str | None = None
    """With a broker: publish the final report, retained, on ``vdtu/runs/<run_id>/reports/<i>``
    for ``vdtu fleet collect`` (``vdtu/load/runs.py``)."""
    probe_rate: float = 1.0
    """Command probes per second (0: none)."""
    probe_units: int = 20
    """How many units the probe addresses (round robin; spread over the fleet)."""
    grace: float = 10.0
    """Seconds to wait after sending stops for what is still in flight."""
    platform_login: str = "direct"
    """How XGC units get their MQTT login from the run's own platform: ``direct`` (the same
    request and answer, handed over in this process) or ``http`` (over its HTTP endpoint,
    as under ``vdtu up``)."""
    progress: bool = True
    control_dir: Path | None = None
    """Where the run names its control API (``up.json``, for ``vdtu ctl --pty-dir``); None:
    ``<default pty dir>/fleet``."""
    control_port: int = 0
    """The control API's port on 127.0.0.1 (0: any free one)."""

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("units", 1 <= self.units <= 1_000_000, "1..1000000"),
            ("profile", self.profile in PROFILES, " | ".join(PROFILES)),
            ("ramp", isinstance(self.ramp, tuple) or self.ramp > 0, "> 0 units per second"),
            ("duration", self.duration > 0, "> 0 s"),
            ("interval", self.interval > 0, "> 0 s"),
            ("payload", 32 <= self.payload <= 65536, "32..65536 characters"),
            ("procs", 1 <= self.procs <= 64, "1..64"),
            ("probe_rate", self.probe_rate >= 0, ">= 0 per second"),
            ("probe_units", self.probe_units >= 1, ">= 1"),
            ("grace", self.grace >= 0, ">= 0 s"),
            ("platform_login", self.platform_login in PLATFORM_LOGINS, " | ".join(PLATFORM_LOGINS)),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise ConfigError(f"{name} must be {allowed}, not {getattr(self, name)!r}")
        if isinstance(self.ramp, tuple):
            check_stages(self.ramp, self.units)
        if not 0 <= self.control_port <= 65535:
            raise ConfigError(f"control_port must be 0..65535, not {self.control_port}")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"metrics_port must be 0..65535, not {self.metrics_port}")
        if not self.metrics_host.strip():
            raise ConfigError("metrics_host must be an address such as 0.0.0.0, not empty")
        if self.run_id is not None:
            if RUN_ID_RE.fullmatch(self.run_id) is None:
                raise ConfigError(
                    "run_id must be 1..64 letters, digits, '.', '_' or '-' (starting with a "
                    f"letter or digit), not {self.run_id!r}"
                )
            if self.broker is None:
                raise ConfigError(
                    "run_id needs --broker: the shards publish their reports to a broker that "
                    "outlives them, and the embedded broker ends with this run"
                )
        if self.verify_login is not None and ":" not in self.verify_login:
            raise ConfigError("verify_login must be user:password, not a bare user name")
        if self.procs > 1 and self.shard.count > 1:
            raise ConfigError("give --procs or --shard, not both (each process is a shard)")


def load_options(path: Path, overrides: dict[str, Any]) -> LoadOptions:
    """Options from a YAML file, then ``overrides`` (the flags the user gave).

    Raises:
        ConfigError: the file cannot be read, is not a mapping, names an unknown key, or
            holds a value of the wrong kind (the message names the key).
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of option: value, not {type(data).__name__}")
    return build_options({**{str(k).replace("-", "_"): v for k, v in data.items()}, **overrides})


def build_options(values: dict[str, Any]) -> LoadOptions:
    """``LoadOptions`` from names and values, each converted to its field's type."""
    known = {item.name: item for item in fields(LoadOptions)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown options {unknown}; allowed: {', '.join(sorted(known))}")
    converted: dict[str, Any] = {}
    for name, value in values.items():
        converted[name] = _convert(name, value)
    return replace(LoadOptions(), **converted)


_NUMBERS: dict[str, type[int] | type[float]] = {
    "units": int,
    "duration": float,
    "interval": float,
    "payload": int,
    "seed": int,
    "procs": int,
    "probe_rate": float,
    "probe_units": int,
    "grace": float,
    "metrics_port": int,
    "control_port": int,
}


def _convert(name: str, value: Any) -> Any:
    bad = ConfigError(f"{name}: {value!r} is not a valid value")
    nullable = (
        "broker",
        "ca_file",
        "report",
        "metrics_port",
        "verify_login",
        "control_dir",
        "run_id",
    )
    if value is None and name in nullable:
        return None
    if name in _NUMBERS:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise bad
        try:
            return _NUMBERS[name](value)
        except ValueError:
            raise bad from None
    if name in ("pty", "progress"):
        if not isinstance(value, bool):
            raise bad
        return value
    if name in ("report", "ca_file", "control_dir"):
        return Path(str(value))
    if name == "ramp":
        return parse_ramp(value)
    if name == "shard":
        return value if isinstance(value, Shard) else Shard.parse(str(value))
    return str(value)
