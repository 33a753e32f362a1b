"""A renderer of the kustomize features deploy/'s kustomizations use, so the deploy tests need
no kubectl (CI has none, and Debian's is too old for ``replacements``).

It implements, as ``kubectl kustomize`` (kustomize v5) does, and nothing more:

- ``resources``: YAML files inside the kustomization's directory, in order, several documents
  each; two resources with the same kind, name and namespace fail.
- ``labels: - pairs:`` (without includeSelectors or includeTemplates): added to each resource's
  ``metadata.labels`` only, not to selectors nor to pod templates.
- ``images`` with ``name`` and ``newTag``: the image of every item of a ``containers`` or
  ``initContainers`` list anywhere in a resource, when its name (the image without its tag and
  digest) is ``name``, gets the tag ``newTag`` (its digest dropped).
- ``replacements`` whose source has ``kind``, ``name`` and ``fieldPath`` and whose targets
  have ``select`` (``kind``, ``name``), ``fieldPaths`` and ``options`` (``delimiter`` and
  ``index``). A field path's parts are map keys, list indexes and ``[key=value]`` list item
  selectors; a path that does not exist fails, for the source as for a target. With a
  delimiter, the target (a scalar) is split on it and part ``index`` is replaced by the
  source's value (index < 0: put before the first part; past the last: put after it), and the
  result is a string; without, the target becomes a copy of the source.

Transformers run in kustomize's order: labels, then images, then replacements. The resources
come out in the order of ``resources`` (kustomize sorts them by kind; nothing here depends on
the order). Any other field or option of a kustomization raises KustomizeError, so that a
feature this does not implement is never silently mis-rendered. The deploy tests check this
renderer's output against ``kubectl kustomize`` wherever kubectl exists."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION = "kustomization.yaml"
API_VERSION = "kustomize.config.k8s.io/v1beta1"
FIELDS = {"apiVersion", "kind", "resources", "labels", "images", "replacements"}


class KustomizeError(Exception):
    """A kustomization this renderer cannot render (or kustomize would refuse)."""


def render(directory: Path) -> list[dict[str, Any]]:
    """The resources ``kubectl kustomize directory`` puts out, as parsed YAML documents."""
    kustomization = _mapping(
        yaml.safe_load((directory / KUSTOMIZATION).read_text()), KUSTOMIZATION, FIELDS
    )
    if kustomization.get("apiVersion", API_VERSION) != API_VERSION:
        raise KustomizeError(f"apiVersion {kustomization['apiVersion']!r} is not {API_VERSION}")
    if kustomization.get("kind", "Kustomization") != "Kustomization":
        raise KustomizeError(f"kind {kustomization['kind']!r} is not Kustomization")
    resources = _resources(directory, _list(kustomization.get("resources", []), "resources"))
    for entry in _list(kustomization.get("labels", []), "labels"):
        _labels(resources, _mapping(entry, "labels[]", {"pairs"}))
    for entry in _list(kustomization.get("images", []), "images"):
        _images(resources, _mapping(entry, "images[]", {"name", "newTag"}))
    for entry in _list(kustomization.get("replacements", []), "replacements"):
        _replacement(resources, _mapping(entry, "replacements[]", {"source", "targets"}))
    return resources


def _mapping(value: Any, where: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise KustomizeError(f"{where} is not a mapping: {value!r}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise KustomizeError(f"{where}: {', '.join(map(str, unknown))} not implemented")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise KustomizeError(f"{where} is not a list: {value!r}")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise KustomizeError(f"{where} is not a non-empty string: {value!r}")
    return value


def _resources(directory: Path, entries: list[Any]) -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str, str]] = set()
    root = directory.resolve()
    for entry in entries:
        path = (directory / _string(entry, "resources[]")).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise KustomizeError(
                f"resource {entry!r} is not a file in {directory}: directories, URLs and files"
                " elsewhere not implemented"
            )
        for document in yaml.safe_load_all(path.read_text()):
            if document is None:  # an empty document (a trailing ---)
                continue
            if not isinstance(document, dict) or document.get("kind") in (None, "List"):
                raise KustomizeError(f"{entry}: a document is not one resource: {document!r}")
            metadata = document.get("metadata")
            if not isinstance(metadata, dict):
                raise KustomizeError(f"{entry}: a resource without metadata: {document!r}")
            group = _string(document.get("apiVersion"), f"{entry}: apiVersion").rpartition("/")[0]
            name = _string(metadata.get("name"), f"{entry}: metadata.name")
            namespace = str(metadata.get("namespace", ""))
            key = (group, _string(document["kind"], f"{entry}: kind"), namespace, name)
            if key in seen:
                raise KustomizeError(f"{entry}: resource {key} is already registered")
            seen.add(key)
            resources.append(document)
    return resources


def _labels(resources: list[dict[str, Any]], entry: dict[str, Any]) -> None:
    pairs = entry.get("pairs")
    if not isinstance(pairs, dict) or not pairs:
        raise KustomizeError(f"labels[].pairs is not a mapping of labels: {pairs!r}")
    for name, value in pairs.items():
        _string(name, "a label's name")
        _string(value, f"label {name}")
    for resource in resources:
        metadata = resource.setdefault("metadata", {})
        if metadata.get("labels") is None:
            metadata["labels"] = {}
        metadata["labels"].update(pairs)


def _image_name(image: str) -> str:
    """The image without its tag and digest (a registry's port is not a tag)."""
    without_digest = image.partition("@")[0]
    slash = without_digest.rfind("/")
    colon = without_digest.find(":", slash + 1)
    return without_digest if colon < 0 else without_digest[:colon]


def _images(resources: list[dict[str, Any]], entry: dict[str, Any]) -> None:
    name = _string(entry.get("name"), "images[].name")
    tag = _string(entry.get("newTag"), f"images[{name}].newTag")

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("containers", "initContainers") and isinstance(value, list):
                    for container in value:
                        image = container.get("image") if isinstance(container, dict) else None
                        if isinstance(image, str) and _image_name(image) == name:
                            container["image"] = f"{name}:{tag}"
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(resources)


def _selected(resources: list[dict[str, Any]], select: dict[str, Any]) -> list[dict[str, Any]]:
    for key in ("kind", "name"):
        if key in select:
            _string(select[key], f"select.{key}")
    return [
        resource
        for resource in resources
        if select.get("kind", resource["kind"]) == resource["kind"]
        and select.get("name", resource["metadata"].get("name")) == resource["metadata"].get("name")
    ]


PART = re.compile(r"\[[^\]]*\]|[^.\[]+")
SELECTOR = re.compile(r"\[([^=\]]+)=([^\]]*)\]")


def _parts(field_path: str) -> list[str]:
    """``a.b.[name=x].c.2`` as ``a``, ``b``, ``[name=x]``, ``c``, ``2``."""
    parts = PART.findall(field_path)
    if ".".join(parts) != field_path:
        raise KustomizeError(f"field path {field_path!r} not implemented")
    return list(parts)


def _lookup(resource: dict[str, Any], field_path: str) -> tuple[Any, Any]:
    """The container (a mapping or a list) holding the field, and the field's key or index."""
    parts = _parts(_string(field_path, "fieldPath"))
    node: Any = resource
    for number, part in enumerate(parts):
        selector = SELECTOR.fullmatch(part)
        key: Any
        if isinstance(node, dict) and not part.startswith("["):
            key = part
            found = key in node
        elif isinstance(node, list) and part.isdigit():
            key = int(part)
            found = key < len(node)
        elif isinstance(node, list) and selector is not None:
            matches = [
                index
                for index, item in enumerate(node)
                if isinstance(item, dict)
                and selector[1] in item
                and _scalar_text(item[selector[1]], field_path) == selector[2]
            ]
            if len(matches) > 1:
                raise KustomizeError(f"{field_path}: {part} matches {len(matches)} items")
            found = bool(matches)
            key = matches[0] if matches else None
        else:
            raise KustomizeError(f"{field_path}: {part!r} on {type(node).__name__} not implemented")
        if not found:
            name = f"{resource['kind']}/{resource['metadata'].get('name')}"
            raise KustomizeError(f"{field_path} is missing in {name}")
        if number == len(parts) - 1:
            return node, key
        node = node[key]
    raise AssertionError("unreachable")


def _scalar_text(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int):
        return str(value)
    raise KustomizeError(f"{where}: {value!r} is not a string or an integer (not implemented)")


def _replacement(resources: list[dict[str, Any]], entry: dict[str, Any]) -> None:
    source = _mapping(entry.get("source"), "replacements[].source", {"kind", "name", "fieldPath"})
    found = _selected(resources, source)
    if len(found) != 1:
        raise KustomizeError(f"replacement source {source} matches {len(found)} resources")
    holder, key = _lookup(found[0], source.get("fieldPath", ""))
    value = holder[key]
    targets = _list(entry.get("targets"), "replacements[].targets")
    if not targets:
        raise KustomizeError("a replacement without targets")
    for entry_target in targets:
        target = _mapping(entry_target, "targets[]", {"select", "fieldPaths", "options"})
        select = _mapping(target.get("select"), "targets[].select", {"kind", "name"})
        options = _mapping(target.get("options", {}), "targets[].options", {"delimiter", "index"})
        delimiter = options.get("delimiter")
        if options:
            delimiter = _string(delimiter, "targets[].options.delimiter")
        index = options.get("index", 0)
        if not isinstance(index, int) or isinstance(index, bool):
            raise KustomizeError(f"targets[].options.index {index!r} is not an integer")
        field_paths = _list(target.get("fieldPaths"), "targets[].fieldPaths")
        if not field_paths:
            raise KustomizeError("targets[].fieldPaths is empty (not implemented)")
        for resource in _selected(resources, select):
            for field_path in field_paths:
                into, at = _lookup(resource, field_path)
                if delimiter is None:
                    into[at] = copy.deepcopy(value)
                    continue
                parts = _scalar_text(into[at], field_path).split(delimiter)
                text = _scalar_text(value, str(source))
                if index < 0:
                    parts.insert(0, text)
                elif index >= len(parts):
                    parts.append(text)
                else:
                    parts[index] = text
                into[at] = delimiter.join(parts)
