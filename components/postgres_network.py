"""Who may talk to the database pods, and where they may talk: the NetworkPolicy rules.

Ingress on the PostgreSQL port from the set's own pods, the dump job and the allowed
clients; egress to DNS and to the set's own pods only.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pulumi_kubernetes as k8s

from components.postgres_names import CONTAINER_PORT, instance_labels
from components.validation import fail

Peer = k8s.networking.v1.NetworkPolicyPeerArgs


def _selector(labels: dict[str, str]) -> k8s.meta.v1.LabelSelectorArgs:
    return k8s.meta.v1.LabelSelectorArgs(match_labels=labels)


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
                fail(self, "cidr", self.cidr, "either cidr or pod_labels/namespace_labels in one peer, not both")
            _check_cidr(self, "cidr", self.cidr)


@dataclass(frozen=True)
class DnsEgress:
    """Where the pods may send DNS queries (UDP and TCP 53).

    The default is the usual cluster DNS: pods labelled k8s-app=kube-dns in kube-system.
    Other clusters need other peers: OpenShift runs dns-default in openshift-dns (selectors);
    NodeLocal DNSCache listens on a link-local address (cidrs=("169.254.20.10/32",), added to the
    selected pods). any=True allows port 53 to every address (simplest, least strict).
    """

    namespace_labels: dict[str, str] = field(default_factory=lambda: {"kubernetes.io/metadata.name": "kube-system"})
    """Namespaces of the DNS pods."""
    pod_labels: dict[str, str] = field(default_factory=lambda: {"k8s-app": "kube-dns"})
    """The DNS pods."""
    cidrs: tuple[str, ...] = ()
    """Extra DNS addresses (NodeLocal DNSCache), as networks with a prefix."""
    any: bool = False
    """Port 53 to every address; the selectors and cidrs are then unused, so cidrs must be empty."""

    def __post_init__(self) -> None:
        if self.any and self.cidrs:
            fail(self, "cidrs", self.cidrs, "empty when any is True (any allows every address)")
        for i, cidr in enumerate(self.cidrs):
            _check_cidr(self, f"cidrs[{i}]", cidr)


def dns_egress(dns: DnsEgress) -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    """Egress to the cluster's DNS, UDP and TCP 53."""
    peers: list[Peer] | None
    if dns.any:
        peers = None  # no `to`: port 53 to every address
    else:
        peers = [Peer(namespace_selector=_selector(dns.namespace_labels), pod_selector=_selector(dns.pod_labels))]
        peers += [Peer(ip_block=k8s.networking.v1.IPBlockArgs(cidr=c)) for c in dns.cidrs]
    return k8s.networking.v1.NetworkPolicyEgressRuleArgs(
        to=peers, ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=53, protocol=p) for p in ("UDP", "TCP")]
    )


def client_peer(client: NetworkPolicyPeer) -> Peer:
    if client.cidr:
        return Peer(ip_block=k8s.networking.v1.IPBlockArgs(cidr=client.cidr))
    namespaces = None if client.namespace_labels is None else _selector(client.namespace_labels)
    return Peer(pod_selector=_selector(client.pod_labels), namespace_selector=namespaces)


def network_policy_spec(
    name: str, allowed_clients: tuple[NetworkPolicyPeer, ...], backup_clients: dict[str, str] | None, dns: DnsEgress
) -> k8s.networking.v1.NetworkPolicySpecArgs:
    """Ingress on the PostgreSQL port from peers and named clients; egress to DNS and peers only."""
    peers = Peer(pod_selector=_selector(instance_labels(name)))
    clients = [peers]
    if backup_clients is not None:
        clients.append(Peer(pod_selector=_selector(backup_clients)))
    clients += [client_peer(c) for c in allowed_clients]
    pg_port = [k8s.networking.v1.NetworkPolicyPortArgs(port=CONTAINER_PORT, protocol="TCP")]
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=_selector(instance_labels(name)),
        policy_types=["Ingress", "Egress"],
        ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=clients, ports=pg_port)],
        egress=[dns_egress(dns), k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=[peers], ports=pg_port)],
    )
