"""What a config change does to each stateful object: in place, replaced, or refused.

Compares two mock runs of the program (before and after the change) by URN and applies
the rules the engine and the cluster apply to a live stack:

- pulumi-kubernetes replaces an object when a field of its kind's forceNew list changes
  (provider/pkg/provider/diff.go, forceNewProperties; metadata.name and namespace for
  every kind), or a field named in the replace_on_changes option;
- pulumi-random replaces a RandomPassword when any input changes (every argument of the
  random_password resource forces a new one);
- pulumi-kubernetes deletes a replaced object before creating it again when its name is fixed
  (provider/pkg/provider/provider.go:1647-1660, every object here). The engine then re-diffs every
  resource whose inputs property-depend on it, transitively, with those whole top-level inputs
  unknown, and replaces (or, when protected, refuses) the ones that diff says must go
  (pulumi/pulumi pkg/resource/deploy/step_generator.go:2046-2121 and calculateDependentReplacements,
  3268-3414). The dependencies are the before-run's registrations (the engine reads the old
  snapshot's graph, step_generator.go:3384-3405);
- Secret and ConfigMap content is replace-only unless the provider's enableSecretMutable /
  enableConfigMapMutable is on (diff.go:23-37), read from the run's kubernetes:* config;
  a Patch resource is replaced only for metadata.name and namespace (provider.go:1558-1566);
- `protect` refuses both a delete and a replacement; retain_on_delete turns a delete into
  "forgotten" (the object stays in the cluster);
- Kubernetes itself refuses what the provider would send as an update or an apply to a
  bound PersistentVolumeClaim: any spec change but resources.requests, and any shrink.

docs/operations.md#changing-a-live-stack is this module's table, checked by tests/tools/test_changes.py.
"""

from __future__ import annotations

from typing import Any

from components.quantity import quantity
from tools.mock_run import Registered, Run
from tools.mock_run import plain as _plain

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
    # policy/v1 PodDisruptionBudget: nothing (diff.go lists `.spec` for policy/v1beta1 only).
    # With the provider's default enableSecretMutable=false, Secret content is replace-only;
    # with it on, only `.type` (diff.go core v1 Secret).
    "Secret": ("type", "stringData", "data"),
    "ConfigMap": ("binaryData", "data"),
}
MUTABLE_FLAGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Secret": ("kubernetes:enableSecretMutable", ("type",)),
    "ConfigMap": ("kubernetes:enableConfigMapMutable", ()),
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
# pulumi-random resources: any input change replaces them (keepers included), create-before-delete.
RANDOM_KINDS = ("RandomPassword", "RandomId")


def shown(resource: Registered) -> bool:
    """Stateful objects, and the protected RandomIds that exist to refuse a change (stacks/rollout.py's
    data-major marker, the destroy guard): their refusal is the change's effect."""
    return kind_of(resource) in STATEFUL_KINDS or (kind_of(resource) == "RandomId" and resource.options.protect)


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


def _flag_on(config: dict[str, Any], key: str) -> bool:
    return str(config.get(key, "false")).lower() == "true"


def force_new(resource: Registered, config: dict[str, Any]) -> tuple[str, ...]:
    """The paths whose change replaces this object, under the provider config of the run."""
    if resource.type.endswith("Patch"):
        return METADATA_FORCE_NEW + tuple(resource.options.replace_on_changes)
    kind = kind_of(resource)
    paths = PROVIDER_FORCE_NEW.get(kind, ())
    if kind in MUTABLE_FLAGS and _flag_on(config, MUTABLE_FLAGS[kind][0]):
        paths = MUTABLE_FLAGS[kind][1]
    return paths + METADATA_FORCE_NEW + tuple(resource.options.replace_on_changes)


def effect(old: Registered | None, new: Registered | None, config: dict[str, Any] | None = None) -> str | None:
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
    if kind in RANDOM_KINDS:
        replaced = True
    elif kind == "Release":
        replaced = any(_under(p, ["name", "namespace"]) for p in paths)
    else:
        replaced = any(_under(p, force_new(new, config or {})) for p in paths)
    if replaced:
        return REFUSED_PROTECT if old.options.protect else REPLACED
    if any(_under(p, API_IMMUTABLE.get(kind, ())) for p in paths):
        return REFUSED_K8S
    if kind == "StatefulSet" and any(_under(p, ["spec.template"]) for p in paths):
        return ROLLS
    return IN_PLACE


def deleted_before_replaced(old: Registered, new: Registered | None) -> bool:
    """A Kubernetes object replaced under the same name and namespace is deleted first
    (provider.go:1647-1660); pulumi-random replaces create-before-delete (no DeleteBeforeReplace in
    pulumi-random provider/resources.go), unless the delete_before_replace option says otherwise."""
    if old.options.delete_before_replace:
        return True
    if new is None or not old.type.startswith("kubernetes:") or kind_of(old) == "Release":
        return False
    meta = ("metadata", "name"), ("metadata", "namespace")
    return all(_get(_plain(old.inputs), p) == _get(_plain(new.inputs), p) for p in meta)


def _dragged(resource: Registered, unknown: set[str], config: dict[str, Any]) -> bool:
    """Would the provider replace this resource with these whole top-level inputs unknown?

    The provider turns an unknown input into a non-map value (pulumi sdk/go/common/resource/properties.go:628,
    MapRepl of a Computed; provider.go:3069), so the merge patch against the old object deletes every field
    under it (provider.go:2851-2864), and each deleted forceNew path is a replace (provider.go:3281-3357,
    openapi/match.go:29): a replace exactly when a forceNew path lies under an unknown input."""
    if kind_of(resource) in RANDOM_KINDS:
        return True
    return any(path.split(".", 1)[0] in unknown for path in force_new(resource, config))


def dependent_replacements(before: Run, roots: set[str], config: dict[str, Any]) -> list[str]:
    """URNs the engine replaces along with the delete-before-replace roots: every custom resource
    whose inputs property-depend on one in the replace set, re-diffed with those inputs unknown,
    transitively, in dependency (registration) order (step_generator.go calculateDependentReplacements)."""
    replace_set, dragged = set(roots), []
    for resource in before.resources:
        if resource.urn in replace_set or resource.type.startswith("pgstack:"):
            continue  # components never require replacement
        unknown = {key for key, deps in resource.property_dependencies.items() if replace_set.intersection(deps)}
        if unknown and _dragged(resource, unknown, config):
            replace_set.add(resource.urn)
            dragged.append(resource.urn)
    return dragged


def classify(before: Run, after: Run, replace: tuple[str, ...] = ()) -> dict[str, str]:
    """Label -> effect for every stateful object the change touches. ``replace`` names URNs
    replaced whatever their diff (`pulumi up --replace <urn>`)."""
    old = {r.urn: r for r in before.resources}
    new = {r.urn: r for r in after.resources}
    effects: dict[str, str | None] = {urn: effect(old.get(urn), new.get(urn), after.config) for urn in old.keys() | new.keys()}
    for urn in replace:
        effects[urn] = REFUSED_PROTECT if old[urn].options.protect else REPLACED
    roots = {
        urn
        for urn, result in effects.items()
        if urn in old and urn in new and result in (REPLACED, REFUSED_PROTECT) and deleted_before_replaced(old[urn], new[urn])
    }
    for urn in dependent_replacements(before, roots, after.config):
        # A protected dependent fails the whole update (step_generator.go:2110-2121).
        effects[urn] = REFUSED_PROTECT if old[urn].options.protect else REPLACED
    out: dict[str, str] = {}
    for urn in sorted(effects):
        resource = new.get(urn) or old[urn]
        result = effects[urn]
        if result is not None and shown(resource):
            out[label(resource)] = result
    return out
