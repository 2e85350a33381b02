"""How clients reach the set, and how much of it a drain may take down.

``<name>`` (read-write) selects only the primary pod; ``<name>-ro`` selects the standbys,
never awaited by `pulumi up` (a standby may be cloning or lagging). The PodDisruptionBudget
lets one pod go at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi
import pulumi_kubernetes as k8s

from components.postgres_names import instance_labels, primary_selector, read_only_service, role_labels
from components.provider_annotations import SKIP_AWAIT

if TYPE_CHECKING:
    from components.postgres_args import ServiceType


def client_service_spec(
    selector: dict[str, str], service_type: ServiceType, port: int, node_port: int | None
) -> k8s.core.v1.ServiceSpecArgs:
    return k8s.core.v1.ServiceSpecArgs(
        type=service_type,
        selector=selector,
        ports=[k8s.core.v1.ServicePortArgs(name="postgresql", port=port, target_port="postgresql", node_port=node_port, protocol="TCP")],
    )


def client_services(
    name: str,
    primary_pod: str,
    service_type: ServiceType,
    port: int,
    node_port: int | None,
    replication: bool,
    read_write_annotations: dict[str, str] | None = None,
) -> list[tuple[str, dict[str, str] | None, k8s.core.v1.ServiceSpecArgs]]:
    """(Service name, annotations, spec): the read-write Service, then with replication the read-only one.
    The read-write Service selects only the primary pod, so its endpoint wait waits while the primary is not ready."""
    services: list[tuple[str, dict[str, str] | None, k8s.core.v1.ServiceSpecArgs]] = [
        (name, read_write_annotations, client_service_spec(primary_selector(name, primary_pod), service_type, port, node_port))
    ]
    if replication:
        # No standby may be ready (cloning, lagging, none yet): never make `pulumi up` wait for one.
        ro = client_service_spec(role_labels(name, "standby"), "ClusterIP", port, None)
        services.append((read_only_service(name), {SKIP_AWAIT: "true"}, ro))
    return services


def service_metadata(
    svc_name: str, name: str, namespace: pulumi.Input[str], annotations: dict[str, str] | None
) -> k8s.meta.v1.ObjectMetaArgs:
    return k8s.meta.v1.ObjectMetaArgs(name=svc_name, namespace=namespace, labels=instance_labels(name), annotations=annotations)


def disruption_budget_spec(name: str) -> k8s.policy.v1.PodDisruptionBudgetSpecArgs:
    return k8s.policy.v1.PodDisruptionBudgetSpecArgs(
        max_unavailable=1,
        selector=k8s.meta.v1.LabelSelectorArgs(match_labels=instance_labels(name)),
        # A pod that never becomes ready (a standby that fell off) must not block node drains.
        unhealthy_pod_eviction_policy="AlwaysAllow",
    )
