"""deploy/: the Kubernetes manifests checked offline against the Kubernetes schemas
(kubernetes-validate, strict: an unknown field fails too), both file by file and as
``kubectl kustomize`` renders the base (tests/deploy/kustomize.py renders it without kubectl,
which CI lacks; wherever kubectl exists, its rendering is checked to be kubectl's), and
against vdtu itself: the Job's command line is a valid ``vdtu fleet`` command, its exit-status
policy is vdtu's, the shard count is the Job's completions, the scrape settings point at the
port the pods serve, and the broker example's access rule is the one the shard-lifecycle test
runs under."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # no py.typed
import pytest
import yaml

from tests.deploy.kustomize import KustomizeError, render
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
    """What ``kubectl kustomize directory`` puts out (see test_the_renderer_is_kubectls)."""
    return render(directory)


def _kubectl_render(directory: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip(
            "kubectl is not installed (CI has none; Debian's is too old for replacements): "
            "the renderer the other deploy tests use is checked against kubectl wherever it exists"
        )
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
    job = _one(_render(_seven_shards(tmp_path)), "Job")
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


FEATURES_RESOURCES = """\
apiVersion: v1
kind: Pod
metadata:
  name: p
  labels: {a: b, app.kubernetes.io/part-of: other}
spec:
  terminationGracePeriodSeconds: 30
  initContainers:
    - name: init
      image: vdtu@sha256:abc
  containers:
    - name: vdtu
      image: vdtu:old
      args: ["x", "10", "a/b", "c/d", "e"]
    - name: other
      image: vdtu-other:1
    - name: registry
      image: registry.example:5000/vdtu:1
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: c
data:
  num: "5"
"""
FEATURES_KUSTOMIZATION = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
labels:
  - pairs:
      app.kubernetes.io/part-of: vdtu
resources:
  - resources.yaml
images:
  - name: vdtu
    newTag: "2"
replacements:
  - source: {kind: Pod, name: p, fieldPath: spec.terminationGracePeriodSeconds}
    targets:
      - select: {kind: Pod}
        fieldPaths:
          - spec.containers.[name=vdtu].args.1
        options: {delimiter: /, index: 0}
      - select: {kind: Pod, name: p}
        fieldPaths:
          - spec.containers.[name=vdtu].args.2
        options: {delimiter: /, index: 5}
      - select: {kind: Pod}
        fieldPaths:
          - spec.containers.0.args.3
        options: {delimiter: /, index: -1}
  - source: {kind: ConfigMap, name: c, fieldPath: data.num}
    targets:
      - select: {kind: Pod}
        fieldPaths:
          - spec.containers.[name=vdtu].args.4
        options: {delimiter: /}
  - source: {kind: Pod, name: p, fieldPath: metadata.labels}
    targets:
      - select: {kind: ConfigMap}
        fieldPaths:
          - data
"""
"""Every feature the renderer implements, at its edges (a tag or digest replaced, an image
that only looks alike, indexes before, inside and past the delimited parts, an integer into
a string, a mapping copied after the labels were added)."""


def _features(tmp_path: Path) -> Path:
    (tmp_path / "resources.yaml").write_text(FEATURES_RESOURCES)
    (tmp_path / "kustomization.yaml").write_text(FEATURES_KUSTOMIZATION)
    return tmp_path


def _seven_shards(tmp_path: Path) -> Path:
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy)
    job_file = copy / "job.yaml"
    job_file.write_text(job_file.read_text().replace("completions: 20", "completions: 7"))
    return copy


KUSTOMIZATIONS: dict[str, Callable[[Path], Path]] = {
    "base": lambda _: DEPLOY,
    "broker": lambda _: DEPLOY / "mosquitto",
    "base with 7 shards": _seven_shards,
    "every feature": _features,
}


def test_the_renderer_renders_every_feature_as_kubectl_does(tmp_path: Path) -> None:
    """What kubectl kustomize 5.5 put out for FEATURES (checked again below where it exists)."""
    pod = _one(render(_features(tmp_path)), "Pod")
    assert pod["metadata"]["labels"] == {"a": "b", "app.kubernetes.io/part-of": "vdtu"}
    containers = pod["spec"]["containers"]
    assert containers[0]["args"] == ["x", "30", "a/b/30", "30/c/d", "5"]
    assert [c["image"] for c in containers] == [
        "vdtu:2",
        "vdtu-other:1",
        "registry.example:5000/vdtu:1",
    ]
    assert pod["spec"]["initContainers"][0]["image"] == "vdtu:2"
    config = _one(render(tmp_path), "ConfigMap")
    assert config["data"] == pod["metadata"]["labels"]
    assert config["metadata"]["labels"] == {"app.kubernetes.io/part-of": "vdtu"}


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_the_renderer_is_kubectls(name: str, tmp_path: Path) -> None:
    directory = KUSTOMIZATIONS[name](tmp_path)
    expected = _kubectl_render(directory)

    def identity(document: dict[str, Any]) -> tuple[str, str, str, str]:
        metadata = document["metadata"]
        return (document["apiVersion"], document["kind"], metadata.get("namespace", ""),
                metadata["name"])  # fmt: skip

    # kubectl sorts the resources by kind and the keys of each mapping; mappings compare
    # whatever their key order, so only the resources' order is left out
    rendered = sorted(render(directory), key=identity)
    assert rendered == sorted(expected, key=identity)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(kustomization: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = kustomization
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[last] = value

    return edit


UNKNOWN_FEATURES = {
    "namePrefix": _set("namePrefix", "test-"),
    "patches": _set("patches", [{"path": "patch.yaml"}]),
    "labels includeSelectors": _set("labels.0.includeSelectors", True),
    "labels includeTemplates": _set("labels.0.includeTemplates", True),
    "images newName": _set("images.0.newName", "registry.example/vdtu"),
    "images digest": _set("images.0.digest", "sha256:0123"),
    "a directory resource": _set("resources", ["configmap.yaml", "job.yaml", "mosquitto"]),
    "source options": _set("replacements.0.source.options", {"delimiter": "/"}),
    "source namespace": _set("replacements.0.source.namespace", "default"),
    "target reject": _set("replacements.0.targets.0.reject", [{"kind": "Pod"}]),
    "target create": _set("replacements.0.targets.0.options", {"create": True}),
    "a wildcard": _set(
        "replacements.0.targets.0.fieldPaths", ["spec.template.spec.containers.*.image"]
    ),
}
MISSING_FIELDS = {  # kubectl fails on these too
    "a missing target": _set("replacements.0.targets.0.fieldPaths", ["spec.parallelismm"]),
    "a missing source": _set("replacements.0.source.fieldPath", "spec.completionss"),
}


@pytest.mark.parametrize(
    ("feature", "message"),
    [(name, "not implemented") for name in UNKNOWN_FEATURES]
    + [(name, "is missing") for name in MISSING_FIELDS],
)
def test_the_renderer_refuses_what_it_does_not_implement(
    feature: str, message: str, tmp_path: Path
) -> None:
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy)
    kustomization = yaml.safe_load((copy / "kustomization.yaml").read_text())
    render(copy)  # as it is, it renders
    {**UNKNOWN_FEATURES, **MISSING_FIELDS}[feature](kustomization)
    (copy / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    with pytest.raises(KustomizeError, match=message):
        render(copy)
