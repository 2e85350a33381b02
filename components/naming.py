"""Generic names: Kubernetes object names as Outputs, cluster DNS names, Pod Security labels.

Nothing here knows PostgreSQL; components/postgres_names.py builds the database's names on top.
"""

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


DEFAULT_CLUSTER_DOMAIN = "cluster.local"


def service_dns(service: str, namespace: str, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN) -> str:
    """A Service's cluster DNS name; for a headless Service it resolves to every selected pod."""
    return f"{service}.{namespace}.svc.{cluster_domain}"


def pod_dns(pod: str, service: str, namespace: str, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN) -> str:
    """The stable DNS name a headless Service gives one StatefulSet pod."""
    return f"{pod}.{service_dns(service, namespace, cluster_domain)}"


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
