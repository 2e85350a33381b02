"""HeadlessService: the governing Service that gives a StatefulSet's pods stable DNS names."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.headless_service_args import HeadlessServiceArgs
from components.naming import pod_dns, service_dns
from components.outputs import name_of
from components.validation import check_name


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
