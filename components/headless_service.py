"""HeadlessService: the governing Service that gives a StatefulSet's pods stable DNS names."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.naming import name_of
from components.postgres_settings import pod_dns, service_dns


@dataclass(frozen=True)
class NamedPort:
    """A Service port; the name lets pods and other Services refer to it."""

    name: str
    port: int
    target_port: str | int | None = None  # defaults to the container port name


@dataclass(frozen=True)
class HeadlessServiceArgs:
    namespace: pulumi.Input[str]
    selector: dict[str, str]
    ports: list[NamedPort]
    # Publish pods before they are ready, so peers (a standby looking for its
    # primary during bootstrap) can resolve them.
    publish_not_ready_addresses: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    cluster_domain: str = "cluster.local"


class HeadlessService(pulumi.ComponentResource):
    """``clusterIP: None`` Service named after the component; outputs its per-pod DNS pattern."""

    service_name: pulumi.Output[str]
    pod_dns_pattern: pulumi.Output[str]
    fqdn: pulumi.Output[str]

    def __init__(self, name: str, args: HeadlessServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pgstack:index:HeadlessService", name, None, opts)
        if not args.ports:
            raise ValueError(f"HeadlessService {name}: at least one port is required")
        self.service = k8s.core.v1.Service(
            name,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=args.namespace, labels=args.labels),
            spec=k8s.core.v1.ServiceSpecArgs(
                cluster_ip="None",
                selector=args.selector,
                publish_not_ready_addresses=args.publish_not_ready_addresses,
                ports=[
                    k8s.core.v1.ServicePortArgs(name=p.name, port=p.port, target_port=p.target_port or p.name, protocol="TCP")
                    for p in args.ports
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.service_name = name_of(self.service)
        self.pod_dns_pattern = pulumi.Output.from_input(args.namespace).apply(lambda ns: pod_dns("<pod>", name, ns, args.cluster_domain))
        # Resolves to every selected pod's address (ready or not, with publish_not_ready_addresses).
        self.fqdn = pulumi.Output.from_input(args.namespace).apply(lambda ns: service_dns(name, ns, args.cluster_domain))
        self.register_outputs({"service_name": self.service_name, "pod_dns_pattern": self.pod_dns_pattern, "fqdn": self.fqdn})
