"""HeadlessService: the governing Service that gives a StatefulSet's pods stable DNS names."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.naming import DEFAULT_CLUSTER_DOMAIN, pod_dns, service_dns
from components.outputs import name_of
from components.validation import check_name, check_port_name, check_range, fail


@dataclass(frozen=True)
class NamedPort:
    """A Service port; the name lets pods and other Services refer to it."""

    name: str
    """An IANA service name (at most 15 lowercase letters, digits and '-'), such as "postgresql"."""
    port: int
    """The Service port, 1 to 65535."""
    target_port: str | int | None = None
    """The container port (number or name); None: the container port named like this port."""

    def __post_init__(self) -> None:
        check_port_name(self, "name", self.name)
        check_range(self, "port", self.port, 1, 65535)
        if isinstance(self.target_port, int):
            check_range(self, "target_port", self.target_port, 1, 65535)
        elif self.target_port is not None:
            check_port_name(self, "target_port", self.target_port)


@dataclass(frozen=True)
class HeadlessServiceArgs:
    namespace: pulumi.Input[str]
    """Namespace of the Service and of the pods it governs (a DNS-1123 label)."""
    selector: dict[str, str]
    """Labels of the pods it resolves to; not empty (an empty selector would match every pod)."""
    ports: list[NamedPort]
    """At least one port, with distinct names."""
    publish_not_ready_addresses: bool = False
    """Publish pods before they are ready, so peers (a standby looking for its primary during
    bootstrap) can resolve them."""
    labels: dict[str, str] = field(default_factory=dict)
    """Labels of the Service itself."""
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
    """The cluster's DNS domain, used in the DNS outputs."""

    def __post_init__(self) -> None:
        check_name(self, "namespace", self.namespace)
        check_name(self, "cluster_domain", self.cluster_domain, "subdomain")
        if not self.selector:
            fail(self, "selector", self.selector, "at least one label: an empty selector matches every pod in the namespace")
        if not self.ports:
            fail(self, "ports", self.ports, "at least one port")
        names = [p.name for p in self.ports]
        for i, port_name in enumerate(names):
            if port_name in names[:i]:
                fail(self, f"ports[{i}].name", port_name, "a name no other port of the Service has")


class HeadlessService(pulumi.ComponentResource):
    """``clusterIP: None`` Service named after the component; outputs its per-pod DNS pattern."""

    service_name: pulumi.Output[str]
    pod_dns_pattern: pulumi.Output[str]
    fqdn: pulumi.Output[str]

    def __init__(self, name: str, args: HeadlessServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        check_name(args, "<component name>", name, "dns1035")
        super().__init__("pgstack:index:HeadlessService", name, None, opts)
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
