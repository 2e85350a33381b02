"""HeadlessServiceArgs: the contract of HeadlessService (components/headless_service.py), field by field."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from components.naming import DEFAULT_CLUSTER_DOMAIN
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
