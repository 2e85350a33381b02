"""Generic names: cluster DNS names, Pod Security labels. Pure: no Pulumi import (components/outputs.py has
the Output-bound helpers).

Nothing here knows PostgreSQL; components/postgres_names.py builds the database's names on top.
"""

from __future__ import annotations

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
