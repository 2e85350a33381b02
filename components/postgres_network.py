"""Who may talk to the database pods, and where they may talk: the NetworkPolicy rules.

Ingress on the PostgreSQL port from the set's own pods, the dump job and the allowed
clients, and (metrics on) on the metrics port from the named scrapers only; egress to DNS and to
the set's own pods only. Built from the contract types in
components/network_args.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi_kubernetes as k8s

from components.network_args import DnsEgress, NetworkPolicyPeer
from components.postgres_metrics_args import METRICS_PORT, MetricsArgs
from components.postgres_names import CONTAINER_PORT, instance_labels

if TYPE_CHECKING:
    from components.postgres_args import PostgresStatefulSetArgs

Peer = k8s.networking.v1.NetworkPolicyPeerArgs
# With WAL archiving: the base-backup job's pod labels (admitted on 5432) and the S3 endpoint's port (egress).
WalAccess = tuple[dict[str, str] | None, int | None]


def _selector(labels: dict[str, str]) -> k8s.meta.v1.LabelSelectorArgs:
    return k8s.meta.v1.LabelSelectorArgs(match_labels=labels)


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


def metrics_ingress(metrics: MetricsArgs | None) -> list[k8s.networking.v1.NetworkPolicyIngressRuleArgs]:
    """The metrics port from metrics.allow_from only: no rule without metrics or without a scraper named
    (an empty `from` would admit every source)."""
    if metrics is None or not metrics.allow_from:
        return []
    port = [k8s.networking.v1.NetworkPolicyPortArgs(port=METRICS_PORT, protocol="TCP")]
    return [k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=[client_peer(c) for c in metrics.allow_from], ports=port)]


def network_policy_spec(
    name: str,
    allowed_clients: tuple[NetworkPolicyPeer, ...],
    backup_clients: dict[str, str] | None,
    dns: DnsEgress,
    metrics: MetricsArgs | None = None,
    wal: WalAccess = (None, None),
) -> k8s.networking.v1.NetworkPolicySpecArgs:
    """Ingress on the PostgreSQL port from peers and named clients, the dump and base-backup jobs (and on the
    metrics port from the named scrapers); egress to DNS and peers, and with WAL archiving to S3 the endpoint's
    port (object storage lives at addresses nobody can list here: the port only)."""
    wal_clients, wal_port = wal
    peers = Peer(pod_selector=_selector(instance_labels(name)))
    clients = [peers]
    for job in (backup_clients, wal_clients):
        if job is not None:
            clients.append(Peer(pod_selector=_selector(job)))
    clients += [client_peer(c) for c in allowed_clients]
    pg_port = [k8s.networking.v1.NetworkPolicyPortArgs(port=CONTAINER_PORT, protocol="TCP")]
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=_selector(instance_labels(name)),
        policy_types=["Ingress", "Egress"],
        ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=clients, ports=pg_port), *metrics_ingress(metrics)],
        egress=[dns_egress(dns), k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=[peers], ports=pg_port), *s3_egress(wal_port)],
    )


def s3_egress(port: int | None) -> list[k8s.networking.v1.NetworkPolicyEgressRuleArgs]:
    """Egress to an S3 endpoint's port (any address), or nothing without one."""
    if port is None:
        return []
    return [k8s.networking.v1.NetworkPolicyEgressRuleArgs(ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=port, protocol="TCP")])]


def wal_access(args: PostgresStatefulSetArgs) -> WalAccess:
    """The WalAccess of a set: none without archiving."""
    return (args.wal_clients, args.wal.s3.endpoint_port) if args.wal is not None else (None, None)
