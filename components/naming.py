"""Small helpers shared by the components and the stack."""

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


def pod_security_labels(level: str) -> dict[str, str]:
    """Pod Security admission labels enforcing, auditing and warning at one level."""
    return {f"pod-security.kubernetes.io/{mode}": level for mode in ("enforce", "audit", "warn")}


def dependencies_of(opts: pulumi.ResourceOptions | None) -> list[pulumi.Resource]:
    """A component's explicit depends_on, for its children: Pulumi does not pass it down,
    and a child that takes a known string instead of an output still has to wait."""
    deps: Any = opts.depends_on if opts is not None else None
    if deps is None:
        return []
    return [d for d in (deps if isinstance(deps, list | tuple) else [deps]) if isinstance(d, pulumi.Resource)]
