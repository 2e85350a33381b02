"""Who may reach the database and where it may go: the NetworkPolicy peers from the settings.

Pure: no resource is created here (stacks/args/__init__.py).
"""

from __future__ import annotations

from components.network_args import DnsEgress, NetworkPolicyPeer
from stacks.config.postgres import ClientPeer
from stacks.config.schema import Settings


def dns_egress_of(settings: Settings) -> DnsEgress:
    dns = settings.postgres.networkPolicy.dns
    return DnsEgress(namespace_labels=dict(dns.namespaceLabels), pod_labels=dict(dns.podLabels), cidrs=tuple(dns.cidrs), any=dns.any)


def peer_of(client: ClientPeer) -> NetworkPolicyPeer:
    return NetworkPolicyPeer(pod_labels=dict(client.podLabels), namespace_labels=client.namespaceLabels, cidr=client.cidr)
