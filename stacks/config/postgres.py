"""The postgres: block: image, resources, services, replication, client network policy, and what the
preview can refuse before a rollout (node capacity)."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    model_validator,
)

from components.network_args import KUBE_DNS_NAMESPACE, KUBE_DNS_PODS
from components.postgres_args import DEFAULT_LIMITS, DEFAULT_REQUESTS, AntiAffinity, PullPolicy, ServiceType
from components.postgres_conf import MAX_REPLICAS, pg_major
from components.postgres_names import pod_name, standby_pod
from components.quantity import quantity
from stacks.config.cnpg import Engine, MigrateFromSettings
from stacks.config.errors import FieldError, such_as
from stacks.config.formats import (
    Cidr,
    CpuQuantity,
    MemoryQuantity,
    Model,
    NamespaceLabels,
    PgIdentifier,
    PodLabels,
    ShmQuantity,
    StorageSize,
    _digest,
    _image_tag,
    _repository,
    _tag_is_text,
    _wal_position,
)
from stacks.config.majors import digest_matches_tag
from stacks.config.names import dns_label, postgres_name

# ---------------------------------------------------------------- postgres


class ImageSettings(Model):
    """The official postgres image (or a copy of it) the pods run."""

    repository: Annotated[str, AfterValidator(_repository)] = "docker.io/library/postgres"
    """Image repository, [registry[:port]/]path in the OCI reference grammar, without scheme, tag or digest."""
    tag: Annotated[str, BeforeValidator(_tag_is_text), AfterValidator(_image_tag)] = "18.6"
    """Image tag, quoted; its leading number is the PostgreSQL major (15 to 18). Debian-based: no -alpine tags."""
    digest: Annotated[str, AfterValidator(_digest)] | None = None
    """Pin the image by digest, sha256:<64 hex digits>; a digest known to belong to another version is refused."""
    pullPolicy: PullPolicy = "IfNotPresent"
    """When the kubelet pulls the image."""

    @model_validator(mode="after")
    def _tag_and_digest_agree(self) -> ImageSettings:
        digest_matches_tag(self.tag, self.digest)
        return self

    @property
    def major(self) -> int:
        major = pg_major(self.tag)
        assert major is not None
        return major

    @property
    def reference(self) -> str:
        ref = f"{self.repository}:{self.tag}"
        return f"{ref}@{self.digest}" if self.digest else ref


class ResourceAmounts(Model):
    # "" until ResourceSettings completes it: an unset field (not in model_fields_set) takes its default there.
    cpu: CpuQuantity = ""
    """CPU, a Kubernetes quantity: cores (2, "1.5") or millicores ("500m")."""
    memory: MemoryQuantity = ""
    """Memory, a Kubernetes quantity in whole bytes ("1Gi", 1073741824)."""


class ResourceSettings(Model):
    """Requests and limits; each of the four fields defaults on its own.

    A field the stack leaves out takes its default, moved only as far as it must to keep
    limits >= requests: a missing limit is max(its default, the request), a missing request is
    min(its default, the limit). So `limits: {memory: 4Gi}` alone gives requests.memory 1Gi,
    and `requests: {cpu: "4"}` alone gives limits.cpu 4. A request above a limit the stack set
    itself is refused as just that (by PostgresStatefulSetArgs, stacks/config/contract.py). The
    defaults are the component's (components/postgres_args.py).
    """

    requests: ResourceAmounts = ResourceAmounts()
    """What the scheduler reserves for the postgres container on its node."""
    limits: ResourceAmounts = ResourceAmounts()
    """The most the postgres container may use; PostgreSQL's memory settings are sized from limits.memory."""

    @model_validator(mode="after")
    def _complete(self) -> ResourceSettings:
        requests: dict[str, str] = {}
        limits: dict[str, str] = {}
        for res in ("cpu", "memory"):
            req = getattr(self.requests, res) if res in self.requests.model_fields_set else None
            lim = getattr(self.limits, res) if res in self.limits.model_fields_set else None
            if req is None:
                req = DEFAULT_REQUESTS[res] if lim is None or quantity(DEFAULT_REQUESTS[res]) <= quantity(lim) else lim
            if lim is None:
                lim = DEFAULT_LIMITS[res] if quantity(DEFAULT_LIMITS[res]) >= quantity(req) else req
            requests[res], limits[res] = req, lim
        # Frozen model: set the completed amounts once, here, while it is being validated.
        object.__setattr__(self, "requests", ResourceAmounts(**requests))
        object.__setattr__(self, "limits", ResourceAmounts(**limits))
        return self


class ServiceSettings(Model):
    """The client Services: <name> (read-write: the primary) and with replication <name>-ro (read-only: the standbys)."""

    type: ServiceType = "ClusterIP"
    """Kubernetes Service type of the read-write Service (the read-only one is always ClusterIP)."""
    port: int = Field(5432, ge=1, le=65535)
    """Client port of both Services."""
    nodePort: int | None = Field(None, ge=30000, le=32767)
    """Fixed node port of the read-write Service, only with type NodePort; null: Kubernetes picks one."""


class ReplicationSettings(Model):
    """Streaming replication from the primary to the hot standbys."""

    enabled: bool = True
    """Stream from the primary to the other pods whenever replicas > 1."""
    user: PgIdentifier = "replicator"
    """Replication role, a PostgreSQL identifier: not postgres, not pg_*, not username."""
    maxLagBytes: int = Field(16 * 1024 * 1024, ge=0)
    """A standby is ready (in the read-only Service) only within this replay lag, in bytes."""
    podAntiAffinity: AntiAffinity = "soft"
    """Spread of the pods over nodes: soft prefers one pod per node, hard requires it (else a pod stays Pending)."""
    primary: Annotated[str, dns_label(63, (pod_name("postgres", 0), standby_pod("postgres", 1)))] | None = None
    """Pod that must be the primary; null means <name>-0. Set only by the promotion runbook."""
    acceptWalLossUpTo: Annotated[str, AfterValidator(_wal_position)] | None = None
    """Promote primary although a reachable pod's WAL reaches this position X/Y (init.sh's refusal names it): those commits are lost."""


class ClientPeer(Model):
    """Who may connect: pods matching podLabels in namespaces matching namespaceLabels
    (null: the database's namespace), or an IP range in cidr."""

    podLabels: PodLabels = Field(default_factory=dict)
    """Pods with all these labels may connect ({}: every pod of the selected namespaces)."""
    namespaceLabels: NamespaceLabels | None = None
    """Namespaces with all these labels ({}: every namespace); null: the database's namespace."""
    cidr: Cidr | None = None
    """Instead of labels: clients in this IPv4 or IPv6 network, in CIDR form without host bits."""


class DnsSettings(Model):
    """Where the pods may send DNS queries (UDP/TCP 53).

    The DNS pods (default: kube-dns in kube-system; OpenShift: dns-default in openshift-dns),
    plus any cidrs (NodeLocal DNSCache: ["169.254.20.10/32"]); or any: true for port 53 anywhere.
    """

    podLabels: PodLabels = Field(default_factory=lambda: dict(KUBE_DNS_PODS))
    """Labels of the DNS pods (default: kube-dns; OpenShift runs dns-default pods in openshift-dns)."""
    namespaceLabels: NamespaceLabels = Field(default_factory=lambda: dict(KUBE_DNS_NAMESPACE))
    """Labels of the DNS pods' namespace (default: kube-system)."""
    cidrs: list[Cidr] = Field(default_factory=list)
    """Further DNS servers as CIDR networks (NodeLocal DNSCache: ["169.254.20.10/32"])."""
    any: bool = False
    """Port 53 to every address, instead of podLabels, namespaceLabels and cidrs."""


class NetworkPolicySettings(Model):
    """The database pods' NetworkPolicy: who may connect, and where DNS queries may go."""

    enabled: bool = True
    """Restrict ingress to the peers and allowFrom, egress to DNS and the peers."""
    allowFrom: list[ClientPeer] = Field(default_factory=lambda: [ClientPeer()])
    """Who may connect besides the peers, entries of {podLabels, namespaceLabels} or {cidr}; default: any pod of the namespace."""
    dns: DnsSettings = DnsSettings()


# ---------------------------------------------------------------- rollouts: what the preview can refuse

# A pod that no node can take stays Pending, and the primary's rollout stops at it (stacks/rollout.py,
# docs/operations.md#recover-a-stuck-rollout). The program cannot see the nodes; a stack that states its largest
# node's allocatable resources gets the one check that is sure: the scheduler places a pod only on a node
# whose allocatable amount covers the pod's requests (kubernetes pkg/scheduler/framework/plugins/noderesources
# fit.go, fitsRequest), so a postgres container asking for more than the largest node has never fits. The pod
# asks for a little more (the password sidecar), and other pods use part of a node: passing is no promise.


class NodeCapacity(Model):
    """The allocatable cpu and memory of the largest node the database pods may run on (kubectl get node
    -o jsonpath='{.status.allocatable}'), as the stack states it."""

    cpu: CpuQuantity
    """Allocatable cpu of that node, a Kubernetes quantity."""
    memory: MemoryQuantity
    """Allocatable memory of that node, a Kubernetes quantity in whole bytes."""


def _fits_largest_node(resources: ResourceSettings, node: NodeCapacity | None) -> None:
    if node is None:
        return
    for res in ("cpu", "memory"):
        request, allocatable = getattr(resources.requests, res), getattr(node, res)
        if quantity(request) > quantity(allocatable):
            raise FieldError(
                f"resources.requests.{res}",
                request,
                f"a request at most largestNode.{res} ({allocatable}), {such_as(allocatable)}: the scheduler never places "
                f"a pod on a node whose allocatable {res} is below its request, so the pod would stay Pending and the "
                "rollout would stop at it (or correct largestNode)",
            )


class PostgresSettings(Model):
    """The PostgreSQL database: the StatefulSets, or the CloudNativePG Cluster (engine)."""

    engine: Engine = "statefulset"
    """statefulset (manual promotion) or cloudnative-pg (the operator's Cluster, automatic failover); a live stack never switches."""
    name: Annotated[str, AfterValidator(postgres_name)] = "postgres"
    """Base name of the StatefulSets, Services, Secret, claims and CronJob: a DNS-1035 label of at most 44 characters."""
    replicas: int = Field(1, ge=1, le=MAX_REPLICAS)
    """PostgreSQL pods: 1 primary plus replicas-1 hot standbys."""
    image: ImageSettings = ImageSettings()
    storageSize: StorageSize = "1Gi"
    """Volume of each pod, at least 100Mi, grown in place; WAL gets a quarter of it (at most PostgreSQL's 1GB)."""
    resources: ResourceSettings = ResourceSettings()
    database: PgIdentifier = "app"
    """Database created for, and owned by, the application user: a PostgreSQL identifier."""
    passwordRotation: int = Field(1, ge=1)
    """Bump to generate new passwords; the pods roll and apply them."""
    username: PgIdentifier | None = "app"
    """Application role, a PostgreSQL identifier (not postgres, not pg_*); null: the superuser only."""
    service: ServiceSettings = ServiceSettings()
    replication: ReplicationSettings = ReplicationSettings()
    shmSize: ShmQuantity = "256Mi"
    """Size of the memory-backed /dev/shm, a Kubernetes quantity in whole bytes."""
    networkPolicy: NetworkPolicySettings = NetworkPolicySettings()
    largestNode: NodeCapacity | None = None
    """The largest node's allocatable cpu and memory: a request above it is refused; null: not checked."""
    migrateFrom: MigrateFromSettings | None = None
    """engine cloudnative-pg only: bootstrap the new Cluster by pg_basebackup from this running StatefulSet-engine primary; null: initdb."""

    @model_validator(mode="after")
    def _fits_largest_node(self) -> PostgresSettings:
        _fits_largest_node(self.resources, self.largestNode)
        return self
