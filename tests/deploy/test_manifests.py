"""deploy/: the Kubernetes manifests checked offline against the Kubernetes schemas
(kubernetes-validate, strict: an unknown field fails too), both file by file and as
``kubectl kustomize`` renders the base, and against vdtu itself: the Job's command line is a
valid ``vdtu fleet`` command, its exit-status policy is vdtu's, the shard count is the Job's
completions, the scrape settings point at the port the pods serve, and the broker example's
access rule is the one the shard-lifecycle test runs under."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # no py.typed
import pytest
import yaml

from tests.conftest import require_tool
from tests.load.test_runs import FLEET_ACL
from vdtu.cli import build_parser
from vdtu.errors import ConfigError
from vdtu.load.command import CRASHED_STATUS, STOPPED_STATUS
from vdtu.load.options import LoadOptions, Shard, load_options
from vdtu.load.runs import NOT_PUBLISHED_STATUS

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
VERSIONS = ("1.29.0", "1.37.0")
"""The oldest Kubernetes whose Jobs restart a pod per index by default (backoffLimitPerIndex
is beta from 1.29, GA from 1.33), and the newest the schemas know."""
MANIFESTS = ("configmap.yaml", "job.yaml", "mosquitto/mosquitto.yaml")
CRDS = ("podmonitor.yaml",)
"""Resources of a CRD (the Prometheus operator's) the Kubernetes schemas do not hold."""


def _documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def _validate(documents: list[dict[str, Any]]) -> None:
    """Every document against every version's strict schema; raises ValidationError."""
    assert documents, "no resource to validate"
    for document in documents:
        for version in VERSIONS:
            kubernetes_validate.validate(document, version, strict=True)


def _render(directory: Path) -> list[dict[str, Any]]:
    kubectl = require_tool("kubectl")
    done = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return _documents(done.stdout)


def _one(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [doc for doc in documents if doc["kind"] == kind]
    assert len(found) == 1, [doc["kind"] for doc in documents]
    return found[0]


def _job() -> dict[str, Any]:
    return _one(_documents((DEPLOY / "job.yaml").read_text()), "Job")


def _container(job: dict[str, Any]) -> dict[str, Any]:
    containers = job["spec"]["template"]["spec"]["containers"]
    assert [container["name"] for container in containers] == ["vdtu"]
    return dict(containers[0])


@pytest.mark.parametrize("name", MANIFESTS)
def test_each_manifest_file_is_valid_against_the_kubernetes_schemas(name: str) -> None:
    _validate(_documents((DEPLOY / name).read_text()))


def test_the_rendered_kustomize_base_and_broker_example_are_valid() -> None:
    base = _render(DEPLOY)
    assert sorted(doc["kind"] for doc in base) == ["ConfigMap", "Job"]
    _validate(base)
    broker = _render(DEPLOY / "mosquitto")
    assert sorted(doc["kind"] for doc in broker) == ["ConfigMap", "Deployment", "Service"]
    _validate(broker)
    # the image is tagged with the package's version (pyproject.toml)
    with (DEPLOY.parent / "pyproject.toml").open("rb") as file:
        version = tomllib.load(file)["project"]["version"]
    assert _container(_one(base, "Job"))["image"] == f"vdtu:{version}"


def _drop_container_name(job: dict[str, Any]) -> None:
    del job["spec"]["template"]["spec"]["containers"][0]["name"]


def _drop_condition_status(job: dict[str, Any]) -> None:
    del job["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"]


BREAKAGES = {
    "is not of type 'string'": lambda job: job["spec"].update(completionMode=["Indexed"]),
    "completions": lambda job: job["spec"].update(completions="twenty"),
    "backoffLimitPerIndexx": lambda job: job["spec"].update(backoffLimitPerIndexx=2),
    "'name' is a required property": _drop_container_name,
    "'status' is a required property": _drop_condition_status,  # required in 1.29
}


@pytest.mark.parametrize("named", BREAKAGES)
def test_a_broken_job_fails_validation_naming_what_is_wrong(named: str) -> None:
    job = _job()
    _validate([job])  # whole, it passes
    BREAKAGES[named](job)
    with pytest.raises(kubernetes_validate.ValidationError) as caught:
        _validate([job])
    assert named in str(caught.value)


def test_the_pod_command_line_is_a_valid_vdtu_fleet_run_of_its_shard(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    job = _job()
    container = _container(job)
    config = _documents((DEPLOY / "configmap.yaml").read_text())[0]["data"]["fleet.yaml"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")["mountPath"]
    (tmp_path / "fleet.yaml").write_text(config)
    env_names = {item["name"] for item in container["env"]}
    values = {  # what Kubernetes puts in the container's env from the Secret and the pod
        "VDTU_BROKER": "mqtts://fleet:secret@broker.example:8883",
        "VDTU_RUN_ID": "5f0c2a8e-1b7d-4e3a-9c61-0d2f7b4e8a90",
    }
    assert set(values) <= env_names
    args = []
    for arg in container["args"]:
        named = re.findall(r"\$\((\w+)\)", arg)  # $(VAR): Kubernetes expands it from env
        assert set(named) <= set(values), f"{arg} names a variable the container's env lacks"
        expanded = re.sub(r"\$\((\w+)\)", lambda found: values[found[1]], arg)
        args.append(expanded.replace(f"{mount}/fleet.yaml", str(tmp_path / "fleet.yaml")))
    count = job["spec"]["completions"]
    assert job["spec"]["parallelism"] == count
    for index in (0, count - 1):
        monkeypatch.setenv("JOB_COMPLETION_INDEX", str(index))
        parsed = build_parser().parse_args(args)
        assert parsed.command == "fleet"
        assert parsed.fleet_command is None
        names = ("shard", "broker", "run_id", "metrics_host", "metrics_port", "progress")
        flags = {name: getattr(parsed, name) for name in names}
        options = load_options(parsed.config, flags)
        assert options.shard == Shard(index=index, count=count)
        assert (options.metrics_host, options.metrics_port) == ("0.0.0.0", 9100)
        assert options.run_id is not None
        assert options.units % count == 0  # every pod the same number of units
    monkeypatch.setenv("JOB_COMPLETION_INDEX", str(count))  # one past the Job's last index
    with pytest.raises(ConfigError, match="out of range"):
        Shard.parse(f"env:JOB_COMPLETION_INDEX/{count}")
    assert isinstance(options, LoadOptions)


def test_the_run_id_is_the_jobs_uid_and_the_pod_restarts_per_index_by_vdtus_exit_status() -> None:
    job = _job()
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["backoffLimitPerIndex"] >= 1
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    run_id = next(item for item in _container(job)["env"] if item["name"] == "VDTU_RUN_ID")
    assert run_id["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['batch.kubernetes.io/controller-uid']"
    )
    rules = spec["podFailurePolicy"]["rules"]
    # first: an evicted pod runs again whatever it exited with (a rule that matched ends it)
    assert rules[0] == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }
    actions = {}
    for rule in rules:
        if "onExitCodes" in rule:
            assert rule["onExitCodes"]["containerName"] == "vdtu"
            for code in rule["onExitCodes"]["values"]:
                actions[code] = rule["action"]
    # 2: bad settings, the same in every pod; 1: the run failed but its report is out;
    # 3 (the report not published), 4 (a crash), 5 (stopped early) and a killed pod: counted,
    # and the index runs again
    assert actions == {2: "FailJob", 1: "FailIndex"}
    assert NOT_PUBLISHED_STATUS not in actions
    assert CRASHED_STATUS not in actions
    assert STOPPED_STATUS not in actions


def test_the_shard_count_follows_the_jobs_completions(tmp_path: Path) -> None:
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy)
    job_file = copy / "job.yaml"
    job_file.write_text(job_file.read_text().replace("completions: 20", "completions: 7"))
    job = _one(_render(copy), "Job")
    assert (job["spec"]["completions"], job["spec"]["parallelism"]) == (7, 7)
    assert "--shard=env:JOB_COMPLETION_INDEX/7" in _container(job)["args"]


def test_prometheus_finds_the_port_the_pods_serve_metrics_on() -> None:
    job = _job()
    template = job["spec"]["template"]
    container = _container(job)
    port = next(p for p in container["ports"] if p["name"] == "metrics")["containerPort"]
    assert f"--metrics-port={port}" in container["args"]
    assert "--metrics-host=0.0.0.0" in container["args"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    for name in CRDS:
        monitor = _documents((DEPLOY / name).read_text())[0]
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["kind"] == "PodMonitor"
        selector = monitor["spec"]["selector"]["matchLabels"]
        assert selector.items() <= template["metadata"]["labels"].items()
        assert [e["port"] for e in monitor["spec"]["podMetricsEndpoints"]] == ["metrics"]


def test_the_broker_examples_access_rule_is_the_one_the_lifecycle_test_runs_under() -> None:
    config = _one(_documents((DEPLOY / "mosquitto" / "mosquitto.yaml").read_text()), "ConfigMap")
    assert config["data"]["acl"] == FLEET_ACL


def test_the_image_gets_what_pip_install_needs() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert dockerfile.startswith("#")
    assert "FROM python:3.11-slim" in dockerfile
    copied = re.findall(r"^COPY (.+) \S+$", dockerfile, flags=re.MULTILINE)
    sources = [source for line in copied for source in line.split()]
    root = DEPLOY.parent
    for source in sources:
        assert (root / source).exists(), source
    assert {"pyproject.toml", "README.md", "vdtu", "tui"} <= set(sources)
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    for source in sources:
        assert f"!{source}" in ignore or f"!{source}/" in ignore, source
    uid = re.search(r"--uid (\d+)", dockerfile)
    assert uid is not None
    assert _job()["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(uid[1])
