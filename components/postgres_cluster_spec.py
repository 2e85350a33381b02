"""The CloudNativePG Cluster's spec and NetworkPolicy, by pure functions (components/postgres_cluster.py registers them).

Everything a Cluster says is checked against the operator's CRD at 1.30.0 (tests/components/test_postgres_cluster.py,
../shared/reference/cloudnative-pg-1.30.0/postgresql.cnpg.io_clusters.yaml); the webhook's rules are mirrored in
components/postgres_cluster_args.py. Passwords never appear here: the spec names Secrets.
"""

from __future__ import annotations

from typing import Any

import pulumi_kubernetes as k8s

from components.naming import service_dns
from components.postgres_cluster_args import (
    CLUSTER_LABEL,
    CNPG_METRICS_PORT,
    CNPG_PORT,
    FIXED_PARAMETERS,
    MIGRATION_SOURCE,
    OFFICIAL_IMAGE_UID,
    STATUS_PORT,
    PostgresClusterArgs,
)
from components.postgres_conf import MiB, server_parameters
from components.postgres_names import read_only_service
from components.postgres_network import client_peer, dns_egress
from components.postgres_tls_args import service_hosts

HOSTNAME = "kubernetes.io/hostname"
NetworkPolicyRule = k8s.networking.v1.NetworkPolicyIngressRuleArgs


def cluster_labels(name: str) -> dict[str, str]:
    """The operator's label on every instance pod of the Cluster: the selector of our policies and monitors."""
    return {CLUSTER_LABEL: name}


def rw_service(name: str) -> str:
    return f"{name}-rw"


def ro_service(name: str) -> str:
    """The operator's read-only Service (api/v1/cluster_funcs.go GetServiceReadOnlyName), the StatefulSet engine's name."""
    return read_only_service(name)


def operator_ca_secret(name: str) -> str:
    """The Secret with the CA the operator generates, ca.crt and ca.key (api/v1/cluster_funcs.go:639
    GetServerCASecretName: <name>-ca)."""
    return f"{name}-ca"


def app_secret(name: str) -> str:
    """The kubernetes.io/basic-auth Secret of the application role (bootstrap initdb.secret)."""
    return f"{name}-app-user"


def superuser_secret(name: str) -> str:
    """The kubernetes.io/basic-auth Secret of postgres (superuserSecret)."""
    return f"{name}-superuser-user"


def server_alt_names(name: str, namespace: str, cluster_domain: str) -> list[str]:
    """The names the operator puts in its own server certificate, and that ours must hold: -rw, -r and -ro in the
    four forms (api/v1/cluster_funcs.go:1142-1167 GetClusterAltDNSNames)."""
    return [host for svc in (rw_service(name), f"{name}-r", ro_service(name)) for host in service_hosts(svc, namespace, cluster_domain)]


def _mb(n_bytes: int) -> str:
    return f"{max(n_bytes // MiB, 1)}MB"


def wal_parameters(volume_bytes: int) -> dict[str, str]:
    """The WAL budget of an instance's volume, the StatefulSet engine's formula (components/scripts/
    init-wal-sizing.sh volume_settings) from the configured size: PostgreSQL's default max_wal_size 1GB and
    the operator's wal_keep_size 512MB (pkg/postgres/configuration.go:578) would fill a 1Gi volume. Growing
    storageSize changes them; all four take a reload, not a restart."""
    # PostgreSQL needs min_wal_size of two 16MB segments, and the webhook refuses min_wal_size >= max_wal_size
    # (cluster_webhook.go:1247-1256): max_wal_size is at least 64MB, so min_wal_size (>= 32MB) stays below it.
    max_wal = max(min(volume_bytes // 4, 1024 * MiB), 64 * MiB)
    return {
        "max_wal_size": _mb(max_wal),
        "min_wal_size": _mb(max(max_wal // 4, 32 * MiB)),
        "wal_keep_size": _mb(min(volume_bytes // 8, 1024 * MiB)),
        "max_slot_wal_keep_size": _mb(volume_bytes // 4),
    }


def cluster_parameters(args: PostgresClusterArgs) -> dict[str, str]:
    """postgresql.parameters: the StatefulSet engine's server parameters (components/postgres_conf.py) sized from
    the same limits, minus what the operator fixes (FIXED_PARAMETERS: listen_addresses, unix_socket_directories,
    ssl*, ...) and minus replication, which the operator configures itself; plus the WAL budget and the oldest
    TLS protocol."""
    parameters = {k: v for k, v in server_parameters(args.memory_limit_bytes, replication=False).items() if k not in FIXED_PARAMETERS}
    parameters |= wal_parameters(args.storage_bytes)
    if args.tls is not None:
        # Not fixed (the operator's default is TLSv1.3, configuration.go:577): the stack's tls.minProtocol.
        parameters["ssl_min_protocol_version"] = args.tls.min_protocol
    return parameters


def hba_rules(args: PostgresClusterArgs) -> list[str]:
    """User rules, which the operator writes after its fixed rules and before its final `host all all all`
    (pkg/postgres/configuration.go:95-131 hbaTemplateString): tls.required refuses connections without TLS."""
    if args.tls is None or not args.tls.required:
        return []
    return ["hostnossl all all 0.0.0.0/0 reject", "hostnossl all all ::/0 reject"]


def _bootstrap(name: str, args: PostgresClusterArgs) -> dict[str, Any]:
    owner = {"database": args.database, "owner": args.username, "secret": {"name": app_secret(name)}}
    if args.migrate_from is None:
        return {"initdb": owner}
    return {"pg_basebackup": {"source": MIGRATION_SOURCE, **owner}}


def external_clusters(args: PostgresClusterArgs) -> list[dict[str, Any]]:
    """The source of a migration: libpq parameters plus the replication password from a Secret."""
    src = args.migrate_from
    if src is None:
        return []
    params = {"host": src.host, "port": str(src.port), "user": src.user, "dbname": "postgres", "sslmode": src.ssl_mode}
    return [{"name": MIGRATION_SOURCE, "connectionParameters": params, "password": {"name": src.password_secret, "key": src.password_key}}]


# The Barman Cloud plugin's name, as a Cluster names it (cloudnative-pg/plugin-barman-cloud web/docs/usage.md,
# "Configuring WAL Archiving").
BARMAN_CLOUD_PLUGIN = "barman-cloud.cloudnative-pg.io"


def wal_archive_plugins(object_store: str | None) -> list[dict[str, Any]]:
    """spec.plugins: the Barman Cloud plugin as the WAL archiver, writing to that ObjectStore (same usage.md), which
    components/postgres_cluster_wal.py builds from pgstack:backup.wal (the reference files hold no
    barmancloud.cnpg.io CRD to check it against)."""
    if object_store is None:
        return []
    return [{"name": BARMAN_CLOUD_PLUGIN, "isWALArchiver": True, "parameters": {"barmanObjectName": object_store}}]


def certificates(name: str, args: PostgresClusterArgs, tls_secret: str | None) -> dict[str, Any] | None:
    """With cert-manager or an existing Secret (kubernetes.io/tls with ca.crt), the operator serves that
    certificate (serverTLSSecret) and names its CA (serverCASecret, which needs only ca.crt when serverTLSSecret
    is set: the CRD's certificates.serverCASecret description). Otherwise None: the operator's own CA (<name>-ca)."""
    if tls_secret is None:
        return None
    return {"serverTLSSecret": tls_secret, "serverCASecret": tls_secret}


def _affinity(name: str, args: PostgresClusterArgs) -> dict[str, Any]:
    # podAntiAffinityType: preferred or required, nothing else (cluster_webhook.go:2272-2288 validateAntiAffinity).
    kind = "required" if args.anti_affinity == "hard" else "preferred"
    return {"enablePodAntiAffinity": True, "podAntiAffinityType": kind, "topologyKey": HOSTNAME}


def _spread(name: str, args: PostgresClusterArgs) -> list[dict[str, Any]]:
    """The StatefulSet engine's spread (components/postgres_scheduling.py topology_spread) on the operator's label."""
    unsatisfiable = "DoNotSchedule" if args.anti_affinity == "hard" else "ScheduleAnyway"
    selector = {"matchLabels": cluster_labels(name)}
    return [{"maxSkew": 1, "topologyKey": HOSTNAME, "whenUnsatisfiable": unsatisfiable, "labelSelector": selector}]


def cluster_spec(name: str, args: PostgresClusterArgs, tls_secret: str | None = None) -> dict[str, Any]:
    """The Cluster's spec. enablePDB is false with one instance: a lone primary's PDB (minAvailable 1) blocks
    every node drain (cloudnative-pg#2570, #7346)."""
    postgresql: dict[str, Any] = {"parameters": cluster_parameters(args)}
    if hba_rules(args):
        postgresql["pg_hba"] = hba_rules(args)
    spec: dict[str, Any] = {
        "instances": args.instances,
        "imageName": args.image,
        "imagePullPolicy": args.image_pull_policy,
        "postgresUID": OFFICIAL_IMAGE_UID,
        "postgresGID": OFFICIAL_IMAGE_UID,
        "resources": {"requests": dict(args.requests), "limits": dict(args.limits)},
        "storage": {"storageClass": args.storage_class, "size": args.storage_size},
        "affinity": _affinity(name, args),
        "topologySpreadConstraints": _spread(name, args),
        "enablePDB": args.instances > 1,
        "enableSuperuserAccess": True,
        "superuserSecret": {"name": superuser_secret(name)},
        "bootstrap": _bootstrap(name, args),
        "postgresql": postgresql,
    }
    if args.claim_labels:
        spec["inheritedMetadata"] = {"labels": dict(args.claim_labels)}
    if args.migrate_from is not None:
        spec["externalClusters"] = external_clusters(args)
    if args.wal_object_store is not None:
        spec["plugins"] = wal_archive_plugins(args.wal_object_store)
    certs = certificates(name, args, tls_secret)
    if certs is not None:
        spec["certificates"] = certs
    return spec


def _port(port: int) -> list[k8s.networking.v1.NetworkPolicyPortArgs]:
    return [k8s.networking.v1.NetworkPolicyPortArgs(port=port, protocol="TCP")]


def _namespace(name: str) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    selector = k8s.meta.v1.LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": name})
    return k8s.networking.v1.NetworkPolicyPeerArgs(namespace_selector=selector)


def network_policy_spec(name: str, args: PostgresClusterArgs) -> k8s.networking.v1.NetworkPolicySpecArgs:
    """What the StatefulSet engine admits (peers, clients, the dump job, the scrapers), plus the operator's
    namespace on the status port and 5432. Egress: DNS, the peers, and the Kubernetes API, which every instance
    manager watches (its address is the cluster's, unknown here: TCP 443 and 6443 anywhere), plus 5432 anywhere
    while a migration's source is set (the source is another namespace's primary)."""
    own = k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=cluster_labels(name)))
    clients = [own, *(client_peer(c) for c in args.allowed_clients)]
    if args.backup_clients is not None:
        clients.append(
            k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=args.backup_clients))
        )
    operator = _namespace(args.operator_namespace)
    ingress = [
        NetworkPolicyRule(from_=clients, ports=_port(CNPG_PORT)),
        NetworkPolicyRule(from_=[operator], ports=[*_port(STATUS_PORT), *_port(CNPG_PORT)]),
    ]
    if args.metrics is not None and args.metrics.allow_from:
        ingress.append(NetworkPolicyRule(from_=[client_peer(c) for c in args.metrics.allow_from], ports=_port(CNPG_METRICS_PORT)))
    egress = [
        dns_egress(args.dns),
        k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=[own], ports=[*_port(CNPG_PORT), *_port(STATUS_PORT)]),
        k8s.networking.v1.NetworkPolicyEgressRuleArgs(ports=[*_port(443), *_port(6443)]),
    ]
    if args.migrate_from is not None:
        egress.append(k8s.networking.v1.NetworkPolicyEgressRuleArgs(ports=_port(args.migrate_from.port)))
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=cluster_labels(name)),
        policy_types=["Ingress", "Egress"],
        ingress=ingress,
        egress=egress,
    )


def hosts(name: str, namespace: str, cluster_domain: str) -> tuple[str, str]:
    """The read-write and read-only Services' DNS names."""
    return service_dns(rw_service(name), namespace, cluster_domain), service_dns(ro_service(name), namespace, cluster_domain)
