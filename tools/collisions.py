"""Stack files that would collide on one cluster, found before `pulumi up` does (docs/operations.md#several-stacks-on-one-cluster).

Namespaces, StorageClasses, a Longhorn install and a CloudNativePG operator install are cluster-wide: two
stacks that create the same one on one cluster fail at the second `pulumi up` (pulumi-kubernetes creates, it
does not upsert: AlreadyExists), and Longhorn's chart owns cluster-scoped CRDs and its CSI driver, so a cluster
takes one Longhorn install whatever its namespace; the same goes for the CloudNativePG operator's chart (its
CRDs and webhooks). Which cluster a stack deploys to is known only when its config sets kubernetes:context
(otherwise the kubeconfig's current context at `up` time decides):

    same context, names collide         error: the second `up` is certain to fail
    a context unknown, names collide    warning: they may share a cluster (a copy of dev does, by default)
    different contexts                  nothing: separate clusters never collide
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacks.config import CONFIG_KEYS, PROJECT, ConfigError, parse_settings
from stacks.config.cnpg import CNPG
from tools.stack_files import ROOT, StackFileError, StackFileWarning, stack_config, stacks

CONTEXT_KEY = "kubernetes:context"


@dataclass(frozen=True)
class ClusterNames:
    """The cluster-wide things one stack creates."""

    stack: str
    context: str | None  # kubernetes:context, or None: the kubeconfig's current context decides
    namespaces: frozenset[str]
    storage_class: str | None  # None: the stack uses an existing class, it creates none
    installs_longhorn: bool
    installs_cnpg: bool = False  # the CloudNativePG operator (postgres.engine cloudnative-pg with cnpg.install)


def cluster_names(stack: str, config: dict[str, Any]) -> ClusterNames:
    """What a stack's config (stack_config) creates cluster-wide. Raises ConfigError for invalid settings."""
    raw = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith(f"{PROJECT}:") and k.split(":", 1)[1] in CONFIG_KEYS}
    settings = parse_settings(raw, stack)
    installs = settings.longhorn.install
    operator = settings.postgres.engine == CNPG and settings.cnpg.install
    context = config.get(CONTEXT_KEY)
    namespaces = {settings.namespace, *([settings.longhorn.namespace] if installs else [])}
    return ClusterNames(
        stack=stack,
        context=str(context) if context else None,
        namespaces=frozenset(namespaces | ({settings.cnpg.namespace} if operator else set())),
        storage_class=settings.storage.className if settings.storage.existingClass is None else None,
        installs_longhorn=installs,
        installs_cnpg=operator,
    )


def shared(a: ClusterNames, b: ClusterNames) -> list[str]:
    """What both stacks create, each with the setting that renames it."""
    found = [f"namespace {n} (pgstack:namespace, longhorn.namespace or cnpg.namespace)" for n in sorted(a.namespaces & b.namespaces)]
    if a.storage_class is not None and a.storage_class == b.storage_class:
        found.append(f"StorageClass {a.storage_class} (pgstack:storage.className)")
    if a.installs_longhorn and b.installs_longhorn:
        found.append("a Longhorn install, one per cluster (longhorn.install false on all stacks but one)")
    if a.installs_cnpg and b.installs_cnpg:
        found.append("a CloudNativePG operator install, one per cluster (cnpg.install false on all stacks but one)")
    return found


def clash(a: ClusterNames, b: ClusterNames) -> tuple[str, str] | None:
    """("error" or "warning", one line) when a and b would collide on one cluster; None when they cannot."""
    both = shared(a, b)
    if not both or (a.context and b.context and a.context != b.context):
        return None
    what = "; ".join(both)
    if a.context and a.context == b.context:
        return "error", (
            f"Pulumi.{a.stack}.yaml and Pulumi.{b.stack}.yaml deploy to one cluster ({CONTEXT_KEY} {a.context}) and "
            f"both create {what}: the second `pulumi up` fails with AlreadyExists; rename it in one of them"
        )
    return "warning", (
        f"Pulumi.{a.stack}.yaml and Pulumi.{b.stack}.yaml both create {what}: on one cluster the second `pulumi up` "
        f"fails with AlreadyExists. On separate clusters, set {CONTEXT_KEY} in both stack files to say so; on one, "
        "rename it in one of them (docs/operations.md#several-stacks-on-one-cluster)"
    )


def collisions(stack: str, root: Path = ROOT) -> tuple[list[str], list[str]]:
    """(errors, warnings) for one stack against every other stack file. A file that cannot be read or is
    invalid is skipped: it fails on its own render and its own tests."""
    mine = _quietly(stack, root)
    found: dict[str, list[str]] = {"error": [], "warning": []}
    for other in stacks(root):
        if other == stack:
            continue
        try:
            theirs = _quietly(other, root)
        except (StackFileError, ConfigError):
            continue
        result = clash(mine, theirs)
        if result is not None:
            found[result[0]].append(result[1])
    return found["error"], found["warning"]


def _quietly(stack: str, root: Path) -> ClusterNames:
    """A stack's names, without warning about its ignored keys (its own render and tests warn about them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StackFileWarning)
        return cluster_names(stack, stack_config(stack, root))
