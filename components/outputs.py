"""Pulumi-bound helpers shared by the components: an object's name as an Output, a component's depends_on.

Kept apart from components/naming.py so that the pure name rules import no Pulumi (the tools that only read
stack files, tools/recover.py and tools/verify.py, stay fast)."""

from __future__ import annotations

from typing import Any

import pulumi


def name_of(resource: Any) -> pulumi.Output[str]:
    """A Kubernetes resource's metadata.name as an Output that also carries the dependency on it."""

    def pick(meta: Any) -> str:
        if meta is None or not meta.name:
            raise ValueError(f"{resource} has no metadata.name")
        return str(meta.name)

    out: pulumi.Output[str] = resource.metadata.apply(pick)
    return out


def dependencies_of(opts: pulumi.ResourceOptions | None) -> list[pulumi.Resource]:
    """A component's explicit depends_on, for its children: Pulumi does not pass it down,
    and a child that takes a known string instead of an output still has to wait."""
    deps: Any = opts.depends_on if opts is not None else None
    if deps is None:
        return []
    return [d for d in (deps if isinstance(deps, list | tuple) else [deps]) if isinstance(d, pulumi.Resource)]
