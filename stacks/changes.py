"""What a config change does to each stateful object: in place, replaced, or refused.

Compares two mock runs of the program (before and after the change) by URN and applies
the rules the engine and the cluster apply to a live stack:

- pulumi-kubernetes replaces an object when a field of its kind's forceNew list changes
  (provider/pkg/provider/diff.go, forceNewProperties; metadata.name and namespace for
  every kind), or a field named in the replace_on_changes option;
- pulumi-random replaces a RandomPassword when any input changes (every argument of the
  random_password resource forces a new one);
- `protect` refuses both a delete and a replacement; retain_on_delete turns a delete into
  "forgotten" (the object stays in the cluster);
- Kubernetes itself refuses what the provider would send as an update or an apply to a
  bound PersistentVolumeClaim: any spec change but resources.requests, and any shrink.

README "Changing a live stack" is this module's table, checked by tests/stacks/test_changes.py.
"""

from __future__ import annotations

from typing import Any

from components.quantity import quantity
from stacks.mock_run import Registered, Run
from stacks.mock_run import plain as _plain

# forceNew paths per kind, from pulumi-kubernetes provider/pkg/provider/diff.go.
PROVIDER_FORCE_NEW: dict[str, tuple[str, ...]] = {
    "StatefulSet": (
        "spec.podManagementPolicy",
        "spec.revisionHistoryLimit",
        "spec.selector",
        "spec.serviceName",
        "spec.volumeClaimTemplates",
    ),
    "StorageClass": ("parameters", "provisioner"),
    "PersistentVolumeClaim": ("spec.accessModes", "spec.selector", "spec.storageClassName", "spec.volumeName"),
    "PodDisruptionBudget": ("spec",),
    # With the provider's default enableSecretMutable=false, Secret content is replace-only.
    "Secret": ("type", "stringData", "data"),
    "ConfigMap": ("binaryData", "data"),
}
METADATA_FORCE_NEW = ("metadata.name", "metadata.namespace")
# Fields the API server refuses to update that the provider does not replace on its own:
# unless replace_on_changes names them, an edit fails `pulumi up`.
API_IMMUTABLE: dict[str, tuple[str, ...]] = {"StorageClass": ("reclaimPolicy", "volumeBindingMode")}

IN_PLACE = "in place"
ROLLS = "in place, pods roll"
REPLACED = "replaced"
CREATED = "created"
DELETED = "deleted"
FORGOTTEN = "forgotten, kept in the cluster"
REFUSED_PROTECT = "refused: protected"
REFUSED_K8S = "refused by Kubernetes"
NEW_CLAIM = "new empty claim (the old one is left behind)"

# The objects whose fate decides the data's: the rest (Services, ConfigMap, policies) is
# recreated freely.
STATEFUL_KINDS = ("Namespace", "StatefulSet", "Secret", "RandomPassword", "StorageClass", "PersistentVolumeClaim", "Release")


def kind_of(resource: Registered) -> str:
    return resource.type.rsplit(":", 1)[-1].removesuffix("Patch")


def label(resource: Registered) -> str:
    return f"{kind_of(resource)} {resource.name}"


def changed_paths(old: Any, new: Any, prefix: str = "") -> set[str]:
    """Dotted paths whose values differ (lists compared whole, as the provider does for these kinds)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: set[str] = set()
        for key in old.keys() | new.keys():
            out |= changed_paths(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return set() if old == new else {prefix.rstrip(".")}


def _under(path: str, roots: tuple[str, ...] | list[str]) -> bool:
    return any(path == r or path.startswith(r + ".") for r in roots)


def _claim_refusal(old: dict[str, Any], new: dict[str, Any], paths: set[str]) -> bool:
    """A bound claim accepts only resources.requests changes, and never a smaller size."""
    if any(not _under(p, ["spec.resources.requests", "metadata.labels", "metadata.annotations"]) for p in paths):
        return True
    size = ("spec", "resources", "requests", "storage")
    before, after = _get(old, size), _get(new, size)
    return before is not None and after is not None and quantity(after) < quantity(before)


def _get(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def effect(old: Registered | None, new: Registered | None) -> str | None:
    """The effect of going from old to new for one URN; None when nothing changes."""
    if old is None:
        return CREATED
    if new is None:
        if old.options.protect:
            return REFUSED_PROTECT
        return FORGOTTEN if old.options.retain_on_delete else DELETED
    before, after = _plain(old.inputs), _plain(new.inputs)
    paths = {p for p in changed_paths(before, after) if not _under(p, list(new.options.ignore_changes))}
    if not paths:
        return None
    kind = kind_of(new)
    if kind == "PersistentVolumeClaim":
        # A claim Patch under another name or namespace applies a new claim (retain_on_delete
        # leaves the old one); in place, a bound claim only takes a larger size.
        if any(_under(p, METADATA_FORCE_NEW) for p in paths):
            return NEW_CLAIM
        return REFUSED_K8S if _claim_refusal(before, after, paths) else IN_PLACE
    if kind == "RandomPassword":
        replaced = True
    elif kind == "Release":
        replaced = any(_under(p, ["name", "namespace"]) for p in paths)
    else:
        force = PROVIDER_FORCE_NEW.get(kind, ()) + METADATA_FORCE_NEW + tuple(new.options.replace_on_changes)
        replaced = any(_under(p, force) for p in paths)
    if replaced:
        return REFUSED_PROTECT if old.options.protect else REPLACED
    if any(_under(p, API_IMMUTABLE.get(kind, ())) for p in paths):
        return REFUSED_K8S
    if kind == "StatefulSet" and any(_under(p, ["spec.template"]) for p in paths):
        return ROLLS
    return IN_PLACE


def classify(before: Run, after: Run) -> dict[str, str]:
    """Label -> effect for every stateful object the change touches."""
    old = {r.urn: r for r in before.resources}
    new = {r.urn: r for r in after.resources}
    out: dict[str, str] = {}
    for urn in sorted(old.keys() | new.keys()):
        resource = new.get(urn) or old[urn]
        if kind_of(resource) not in STATEFUL_KINDS:
            continue
        result = effect(old.get(urn), new.get(urn))
        if result is not None:
            out[label(resource)] = result
    return out
