"""The network contract shared by the database's and the dump job's Args: who may connect, and
where the pods may send DNS queries. Checked at construction like every Args; the NetworkPolicy
rules built from them are components/postgres_network.py.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from components.validation import fail

# The usual cluster DNS: pods labelled k8s-app=kube-dns in kube-system (DnsEgress's default).
KUBE_DNS_NAMESPACE: Mapping[str, str] = MappingProxyType({"kubernetes.io/metadata.name": "kube-system"})
KUBE_DNS_PODS: Mapping[str, str] = MappingProxyType({"k8s-app": "kube-dns"})


def _check_cidr(owner: object, name: str, cidr: str) -> None:
    try:
        ipaddress.ip_network(cidr, strict=True)
    except ValueError:
        fail(owner, name, cidr, "an IPv4 or IPv6 network address with its prefix, such as '10.0.0.0/8' or 'fd00::/8'")


@dataclass(frozen=True)
class NetworkPolicyPeer:
    """Clients allowed to reach PostgreSQL: pods matching both selectors, or an IP block."""

    pod_labels: dict[str, str] = field(default_factory=dict)
    """Pods with these labels (empty: every pod in the selected namespaces)."""
    namespace_labels: dict[str, str] | None = None
    """Namespaces with these labels; None: the database's own namespace."""
    cidr: str | None = None
    """An IP network instead of pods (a load balancer's range), such as 10.0.0.0/8; not with labels."""

    def __post_init__(self) -> None:
        if self.cidr is not None:
            if self.pod_labels or self.namespace_labels is not None:
                fail(
                    self,
                    "cidr",
                    self.cidr,
                    "either cidr or pod_labels/namespace_labels in one peer, not both",
                    refs=("pod_labels", "namespace_labels"),
                )
            _check_cidr(self, "cidr", self.cidr)


@dataclass(frozen=True)
class DnsEgress:
    """Where the pods may send DNS queries (UDP and TCP 53).

    The default is the usual cluster DNS: pods labelled k8s-app=kube-dns in kube-system.
    Other clusters need other peers: OpenShift runs dns-default in openshift-dns (selectors);
    NodeLocal DNSCache listens on a link-local address (cidrs=("169.254.20.10/32",), added to the
    selected pods). any=True allows port 53 to every address (simplest, least strict).
    """

    namespace_labels: dict[str, str] = field(default_factory=lambda: dict(KUBE_DNS_NAMESPACE))
    """Namespaces of the DNS pods."""
    pod_labels: dict[str, str] = field(default_factory=lambda: dict(KUBE_DNS_PODS))
    """The DNS pods."""
    cidrs: tuple[str, ...] = ()
    """Extra DNS addresses (NodeLocal DNSCache), as networks with a prefix."""
    any: bool = False
    """Port 53 to every address; the selectors and cidrs are then unused, so they must be left as they are
    (cidrs empty, the selectors the defaults): one of the two would be silently ignored."""

    def __post_init__(self) -> None:
        others = self.cidrs or self.pod_labels != KUBE_DNS_PODS or self.namespace_labels != KUBE_DNS_NAMESPACE
        if self.any and others:
            fail(
                self,
                "any",
                self.any,
                "False when cidrs, pod_labels or namespace_labels are set",
                examples=(False,),
                why="any allows every address, and would leave them unused",
                refs=("cidrs", "pod_labels", "namespace_labels"),
            )
        for i, cidr in enumerate(self.cidrs):
            _check_cidr(self, f"cidrs[{i}]", cidr)
