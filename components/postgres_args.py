"""PostgresStatefulSetArgs: the contract of PostgresStatefulSet, field by field.

Every field is checked at construction (``__post_init__``, components/validation.py): a wrong
value raises one ValueError naming the field, the value and the accepted form, before any
resource is registered. ``pulumi.Input`` fields holding Outputs are not checked (no value yet).
Nothing here is derived twice: the major comes from the image's tag, the memory the server parameters
are sized from from ``limits["memory"]``, the claim size only from ``storage_size``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

import pulumi

from components.naming import DEFAULT_CLUSTER_DOMAIN
from components.network_args import DnsEgress, NetworkPolicyPeer
from components.postgres_conf import MAX_REPLICAS, image_tag
from components.postgres_conf import image_major as major_of  # the property below has the same name
from components.postgres_metrics_args import MetricsArgs
from components.postgres_names import MONITOR_ROLE, SUPERUSER, name_too_long, pod_names
from components.postgres_tls_args import TlsArgs
from components.quantity import quantity, whole_bytes
from components.validation import (
    WAL_POSITION_RE,
    check_literals,
    check_name,
    check_pg_identifier,
    check_quantity,
    check_range,
    check_resources,
    fail,
)
from components.wal_archive_args import WalArchiveArgs

PullPolicy = Literal["Always", "IfNotPresent", "Never"]
ServiceType = Literal["ClusterIP", "NodePort", "LoadBalancer"]
AntiAffinity = Literal["soft", "hard"]

# Image majors whose data layout and entrypoint behaviour we have checked: 15-17 keep PGDATA under
# /var/lib/postgresql/data, 18 moved it (components/postgres_conf.data_layout), and
# tests/components/scripts/test_majors.py runs init.sh on a real server of each. (stacks/config/majors.py
# refuses the older ones with their end-of-life dates.)
SUPPORTED_PG_MAJORS = (15, 16, 17, 18)
# The pods run PostgreSQL as pod_security.POSTGRES_UID, the official Debian images' postgres user (docker-library/postgres
# */trixie/Dockerfile: useradd --uid=999); the Alpine images' postgres is 70 (*/alpine*/Dockerfile: adduser -u 70).
ALPINE_UID = 70
ALPINE_TAG = re.compile(r"(^|[-.])alpine", re.IGNORECASE)
# The smallest volume, inclusive: init.sh's WAL budget needs room beside the data (the dumps volume too).
MIN_STORAGE = "100Mi"
# Role names the messages suggest (neither is reserved, and they differ from each other's defaults).
ROLE_EXAMPLES = ("orders", "billing_app")
# The container's resources when the caller gives none (stacks/config/ completes a stack's partial
# resources from these too).
DEFAULT_REQUESTS: Mapping[str, str] = MappingProxyType({"cpu": "1", "memory": "1Gi"})
DEFAULT_LIMITS: Mapping[str, str] = MappingProxyType({"cpu": "2", "memory": "1Gi"})


@dataclass(frozen=True)
class PostgresStatefulSetArgs:
    """A PostgreSQL set: its image, size, roles, replication, client access and safety switches."""

    namespace: pulumi.Input[str]
    """Namespace of every object (a DNS-1123 label)."""
    storage_class: pulumi.Input[str]
    """StorageClass of the data claims. Pass a known string: a replaced class must not make the StatefulSets' claim templates unknown."""
    image: str
    """The official (Debian) postgres image, ``[registry/]repository:tag[@sha256:digest]``. The tag's
    leading number is the major (18.1 -> 18), which selects the data layout; a reference without it is refused."""
    image_pull_policy: PullPolicy = "IfNotPresent"
    """Always, IfNotPresent or Never; with a digest-pinned image IfNotPresent runs exactly that image."""
    replicas: int = 1
    """Pods, 1 to 15: with replication one primary plus replicas-1 hot standbys."""
    storage_size: str = "1Gi"
    """Each pod's data volume, a quantity in whole bytes; growing it expands the claims in place."""
    requests: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_REQUESTS))
    """Container requests: "cpu" and/or "memory" quantities, each at most its limit."""
    limits: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    """Container limits; "memory" is required: shared_buffers and effective_cache_size are sized from it."""
    database: str = "app"
    """The application database (a PostgreSQL identifier), created with the application role."""
    username: str | None = "app"
    """The application role, a PostgreSQL identifier other than postgres and not starting with pg_;
    None: the superuser only (the outputs then name postgres)."""
    service_type: ServiceType = "ClusterIP"
    """The read-write Service: ClusterIP, NodePort or LoadBalancer (the read-only one is always ClusterIP)."""
    service_port: int = 5432
    """The client Services' port, 1 to 65535."""
    node_port: int | None = None
    """The NodePort (30000 to 32767), only with service_type NodePort; None lets Kubernetes pick."""
    replication: bool = True
    """Streaming replication; configured even with one pod, so adding standbys never touches the primary."""
    replication_user: str = "replicator"
    """The replication role, a PostgreSQL identifier other than username and postgres, not starting with pg_."""
    max_lag_bytes: int = 16 * 1024 * 1024
    """A standby is ready only while its replay lag is at most this (bytes, >= 0)."""
    anti_affinity: AntiAffinity = "soft"
    """One pod per node: soft (preferred) or hard (required; pods stay Pending without a free node)."""
    shm_size: str = "256Mi"
    """The memory-backed /dev/shm, a quantity in whole bytes."""
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
    """The cluster's DNS domain, used in every host name."""
    primary_pod: str | None = None
    """The pod that must be the primary; None means <name>-0. Set only by the promotion runbook
    (docs/operations.md#lose-the-primary-node)."""
    accept_wal_loss_up_to: str | None = None
    """A WAL position (X/Y): the promotion proceeds although a peer's WAL reaches up to here past the
    promoted data's (the commits in between are lost); None: refused (docs/operations.md#the-wal-check)."""
    password_rotation: int = 1
    """Bump (>= 1) to generate new passwords for every role (RandomPassword keepers)."""
    protect: bool = True
    """Pulumi protect on the passwords, the Secret and the StatefulSets."""
    hold: bool = False
    """Hold the database for a volume restore: both StatefulSets at 0 pods, no data claim applied (a claim
    bound to a restored volume is adopted once hold is off), and the read-write Service not awaited."""
    claim_labels: dict[str, str] = field(default_factory=dict)
    """Extra labels on every data claim (Longhorn recurring-job groups: snapshots and backups)."""
    backup_clients: dict[str, str] | None = None
    """Labels of pods in the namespace that may connect besides allowed_clients: the dump job."""
    network_policy: bool = True
    """Create the NetworkPolicy (ingress from peers and clients, egress to DNS and peers)."""
    allowed_clients: tuple[NetworkPolicyPeer, ...] = (NetworkPolicyPeer(),)
    """Who may connect; the default is any pod in the database's namespace."""
    dns: DnsEgress = field(default_factory=DnsEgress)
    """Where the pods may send DNS queries."""
    metrics: MetricsArgs | None = None
    """The postgres_exporter sidecar and who may scrape it; None: no metrics."""
    tls: TlsArgs | None = None
    """TLS on every connection (components/postgres_tls.py); None: off."""
    wal: WalArchiveArgs | None = None
    """Continuous WAL archiving from the primary (components/wal_archive_args.py); None: off."""
    wal_clients: dict[str, str] | None = None
    """Labels of the base-backup job's pods, admitted on the PostgreSQL port (with wal)."""

    def __post_init__(self) -> None:
        check_literals(self)
        check_name(self, "namespace", self.namespace)
        check_name(self, "storage_class", self.storage_class, "subdomain")
        check_name(self, "cluster_domain", self.cluster_domain, "subdomain")
        self._check_image()
        check_range(self, "replicas", self.replicas, 1, MAX_REPLICAS)
        check_range(self, "max_lag_bytes", self.max_lag_bytes, 0)
        check_range(self, "password_rotation", self.password_rotation, 1)
        check_quantity(self, "storage_size", self.storage_size, whole=True, minimum=MIN_STORAGE)
        check_quantity(self, "shm_size", self.shm_size, whole=True)
        self._check_resources()
        self._check_roles()
        self._check_service()
        if self.primary_pod is not None and not self.replication:
            fail(
                self,
                "primary_pod",
                self.primary_pod,
                "None while replication is False (every pod is its own database)",
                refs=("replication",),
            )
        if self.accept_wal_loss_up_to is not None and not WAL_POSITION_RE.fullmatch(self.accept_wal_loss_up_to):
            fail(
                self,
                "accept_wal_loss_up_to",
                self.accept_wal_loss_up_to,
                "None or a WAL position X/Y in upper-case hex, such as '0/3000148'",
            )

    def _check_image(self) -> None:
        """A major the pods support, in the Debian variant (the pods run as its postgres user's uid)."""
        supported = ", ".join(map(str, SUPPORTED_PG_MAJORS[:-1])) + f" or {SUPPORTED_PG_MAJORS[-1]}"
        if major_of(self.image) not in SUPPORTED_PG_MAJORS:
            fail(
                self,
                "image",
                self.image,
                f"a reference whose tag starts with the PostgreSQL major ({supported})",
                examples=("postgres:18.1", "postgres:17.6@sha256:<digest>"),
            )
        if ALPINE_TAG.search(image_tag(self.image) or ""):
            fail(
                self,
                "image",
                self.image,
                "a Debian-based tag",
                examples=("postgres:18.1", "postgres:18.1-trixie"),
                why=f"the Alpine variants run PostgreSQL as uid {ALPINE_UID}, and these pods run as the Debian images' "
                "postgres user (components/pod_security.py POSTGRES_UID), so the data directory's owner would not match",
            )

    def _check_resources(self) -> None:
        check_resources(self, "requests", self.requests)
        check_resources(self, "limits", self.limits, required=("memory",))
        for key in set(self.requests) & set(self.limits):
            if quantity(self.requests[key]) > quantity(self.limits[key]):
                request = f"requests[{key!r}]"
                fail(
                    self,
                    f"limits[{key!r}]",
                    self.limits[key],
                    f"a limit at least {request} ({self.requests[key]})",
                    examples=(self.requests[key],),
                    why=f"Kubernetes refuses a container whose request is above its limit (or lower {request})",
                    refs=(request,),
                )

    def _check_roles(self) -> None:
        check_pg_identifier(self, "database", self.database)
        self._check_role("replication_user", self.replication_user)
        if self.username is not None:
            self._check_role("username", self.username)
            if self.username == self.replication_user:
                fail(
                    self,
                    "username",
                    self.username,
                    f"a role other than replication_user ({self.replication_user})",
                    examples=ROLE_EXAMPLES,
                    refs=("replication_user",),
                )

    def _check_role(self, field: str, role: str) -> None:
        """A role the pods create: the superuser's name and PostgreSQL's pg_ prefix are reserved, and
        the pods' own check (pod-config.sh) would stop the init container on them."""
        check_pg_identifier(self, field, role)
        if role == MONITOR_ROLE:
            accepted = f"a role name other than {MONITOR_ROLE} (reserved: the metrics exporter's role)"
            fail(self, field, role, accepted, examples=ROLE_EXAMPLES)
        if role == SUPERUSER or role.startswith("pg_"):
            accepted = f"a role name other than {SUPERUSER} (the superuser) and not starting with pg_ (reserved)"
            fail(self, field, role, accepted, examples=ROLE_EXAMPLES)

    def _check_service(self) -> None:
        check_range(self, "service_port", self.service_port, 1, 65535)
        if self.node_port is not None:
            if self.service_type != "NodePort":
                fail(self, "node_port", self.node_port, "None unless service_type is 'NodePort'", refs=("service_type",))
            check_range(self, "node_port", self.node_port, 30000, 32767)

    def check_component_name(self, name: str) -> None:
        """The checks that need the component's name, run before it registers anything: the name is
        the Services' names (a DNS-1035 label), and primary_pod must be one of the set's pods.
        Every name made from it must fit its kind's limit, for MAX_REPLICAS pods (postgres_names.name_too_long)."""
        check_name(self, "<component name>", name, "dns1035")
        too_long = name_too_long(name, MAX_REPLICAS)
        if too_long:
            fail(self, "<component name>", name, too_long)
        pods = pod_names(name, self.replicas, self.replication)
        if self.primary_pod is not None and (self.primary_pod not in pods or self.replicas == 1):
            fail(self, "primary_pod", self.primary_pod, f"None or one of this set's pods with replication on: {', '.join(pods)}")

    @property
    def image_major(self) -> int:
        """The PostgreSQL major, read from the image's tag (checked at construction)."""
        major = major_of(self.image)
        assert major is not None
        return major

    @property
    def memory_limit_bytes(self) -> int:
        """The memory limit in bytes: what the server parameters are sized from."""
        return whole_bytes(self.limits["memory"])

    @property
    def has_standbys(self) -> bool:
        return self.replication and self.replicas > 1
