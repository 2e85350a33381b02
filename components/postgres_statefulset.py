"""PostgresStatefulSet: PostgreSQL with a volume per pod, generated passwords and streaming replication.

Pod 0 (StatefulSet ``<name>``) is the primary. With replication on, the standbys
run in a second StatefulSet ``<name>-standby`` whose ordinals start at 1, so the
read-write and read-only Services can tell the roles apart with plain label
selectors, and scaling the standbys never touches the primary's StatefulSet.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.headless_service import HeadlessService, HeadlessServiceArgs, NamedPort
from components.naming import dependencies_of, name_of
from components.postgres_settings import (
    SOCKET_DIR,
    DataLayout,
    data_layout,
    pod_dns,
    pod_names,
    postgres_args,
    server_settings,
    service_dns,
)

SCRIPTS_DIR = Path(__file__).parent / "scripts"

# The official Debian-based image runs PostgreSQL as postgres, uid/gid 999.
POSTGRES_UID = 999
CONTAINER_PORT = 5432
SUPERUSER = "postgres"
# RFC 3986 unreserved characters: safe in connection URIs and pgpass files unescaped.
PASSWORD_SPECIALS = "-_.~"

SCRIPTS_MOUNT = "/scripts"
DATA_VOLUME = "data"

# pulumi-kubernetes await annotations (provider/pkg/metadata/annotations.go). `pulumi up`
# waits until every replica of a StatefulSet is ready and a Service has ready endpoints.
SKIP_AWAIT = "pulumi.com/skipAwait"
TIMEOUT_SECONDS = "pulumi.com/timeoutSeconds"
# The primary is awaited long enough for the 15-minute startup probe (crash recovery) plus init.
PRIMARY_AWAIT_SECONDS = 20 * 60
# Server-side apply takes the size field over from the StatefulSet controller, which created the claim.
PATCH_FORCE = "pulumi.com/patchForce"
SECRETS_MOUNT = "/etc/postgresql/secrets"


@dataclass(frozen=True)
class NetworkPolicyPeer:
    """Clients allowed to reach PostgreSQL.

    Either pods matching both selectors (an empty selector matches all; namespace_labels
    None means the database's own namespace), or an IP block such as a load balancer's range.
    """

    pod_labels: dict[str, str] = field(default_factory=dict)
    namespace_labels: dict[str, str] | None = None
    cidr: str | None = None


@dataclass(frozen=True)
class DnsEgress:
    """Where the pods may send DNS queries (UDP and TCP 53).

    The default is the usual cluster DNS: pods labelled k8s-app=kube-dns in kube-system.
    Other clusters need other peers: OpenShift runs dns-default in openshift-dns (selectors);
    NodeLocal DNSCache listens on a link-local address (cidrs=("169.254.20.10/32",), added to the
    selected pods). any=True allows port 53 to every address (simplest, least strict).
    """

    namespace_labels: dict[str, str] = field(default_factory=lambda: {"kubernetes.io/metadata.name": "kube-system"})
    pod_labels: dict[str, str] = field(default_factory=lambda: {"k8s-app": "kube-dns"})
    cidrs: tuple[str, ...] = ()
    any: bool = False


@dataclass(frozen=True)
class PostgresStatefulSetArgs:
    namespace: pulumi.Input[str]
    storage_class: pulumi.Input[str]
    image: str
    image_major: int
    image_pull_policy: str = "IfNotPresent"
    replicas: int = 1
    storage_size: str = "1Gi"
    storage_bytes: int = 1024**3
    requests: dict[str, str] = field(default_factory=lambda: {"cpu": "1", "memory": "1Gi"})
    limits: dict[str, str] = field(default_factory=lambda: {"cpu": "2", "memory": "1Gi"})
    memory_limit_bytes: int = 1024**3
    database: str = "app"
    username: str | None = "app"
    service_type: str = "ClusterIP"
    service_port: int = 5432
    node_port: int | None = None
    replication: bool = True
    replication_user: str = "replicator"
    max_lag_bytes: int = 16 * 1024 * 1024
    anti_affinity: str = "soft"
    shm_size: str = "256Mi"
    cluster_domain: str = "cluster.local"
    # The pod that must be the primary; None means <name>-0. Changed only by the
    # promotion runbook (README), after a standby has been promoted by hand.
    primary_pod: str | None = None
    # Bump to generate new passwords for every role (RandomPassword keepers).
    password_rotation: int = 1
    # Pulumi protect on the passwords, the Secret and the StatefulSets.
    protect: bool = True
    # Extra labels on every data claim (Longhorn recurring-job groups: snapshots and backups).
    claim_labels: dict[str, str] = field(default_factory=dict)
    # Pods (labels, in the database namespace) that may connect besides allowed_clients: the dump job.
    backup_clients: dict[str, str] | None = None
    network_policy: bool = True
    # Default: any pod in the database's namespace may connect.
    allowed_clients: tuple[NetworkPolicyPeer, ...] = (NetworkPolicyPeer(),)
    dns: DnsEgress = DnsEgress()

    def primary_pod_name(self, name: str) -> str:
        return self.primary_pod or f"{name}-0"

    @property
    def replicating(self) -> bool:
        """Replication is configured (role, settings, standby StatefulSet) whenever it is on,
        even with no standby yet, so scaling the standbys never touches the primary."""
        return self.replication

    @property
    def has_standbys(self) -> bool:
        return self.replication and self.replicas > 1


def script_files() -> dict[str, str]:
    """The container scripts shipped to every pod through a ConfigMap."""
    return {p.name: p.read_text() for p in sorted(SCRIPTS_DIR.glob("*.sh"))}


def checksum(*parts: str) -> str:
    """Stable digest used in pod-template annotations so pods roll when inputs change."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


# checkov checks that do not apply, with the reason; rendered as checkov.io/skipN annotations
# and listed in the README.
SKIP_HIGH_UID = (
    "CKV_K8S_40",
    "the official image runs PostgreSQL as uid 999; initdb and peer authentication need the running uid in the image's /etc/passwd",
)
SKIP_PULL_ALWAYS = (
    "CKV_K8S_15",
    "the image is pinned by digest, so IfNotPresent runs exactly that image; Always would make every restart depend on the registry",
)


SKIP_SIDECAR_READINESS = (
    "CKV_K8S_9",
    "the password-sync sidecar has no readiness probe on purpose: pod readiness is the database's, and a sidecar problem "
    "must not take the primary out of its Service; its liveness probe restarts a stuck loop",
)


def checkov_skips(image: str, pull_policy: str, sidecar: bool = False) -> dict[str, str]:
    """Skip annotations; the pull-policy skip holds only for a digest-pinned image, the readiness one
    only for a workload with the password sidecar."""
    skips = [SKIP_HIGH_UID] + ([SKIP_SIDECAR_READINESS] if sidecar else [])
    if "@sha256:" in image and pull_policy == "IfNotPresent":
        skips.append(SKIP_PULL_ALWAYS)
    return {f"checkov.io/skip{i}": f"{check}={reason}" for i, (check, reason) in enumerate(skips, start=1)}


def container_security() -> k8s.core.v1.SecurityContextArgs:
    """The restricted Pod Security profile for a container running as the image's postgres user."""
    return k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        run_as_user=POSTGRES_UID,
        run_as_group=POSTGRES_UID,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def pod_security_context() -> k8s.core.v1.PodSecurityContextArgs:
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=POSTGRES_UID,
        run_as_group=POSTGRES_UID,
        fs_group=POSTGRES_UID,
        fs_group_change_policy="OnRootMismatch",
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def dns_egress(dns: DnsEgress) -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    """Egress to the cluster's DNS, UDP and TCP 53."""
    peers: list[k8s.networking.v1.NetworkPolicyPeerArgs] | None
    if dns.any:
        peers = None  # no `to`: port 53 to every address
    else:
        peers = [
            k8s.networking.v1.NetworkPolicyPeerArgs(
                namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dns.namespace_labels),
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dns.pod_labels),
            )
        ] + [k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=c)) for c in dns.cidrs]
    return k8s.networking.v1.NetworkPolicyEgressRuleArgs(
        to=peers, ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=53, protocol=p) for p in ("UDP", "TCP")]
    )


def await_annotations(role: str) -> dict[str, str]:
    """What `pulumi up` waits for: the primary, with time for crash recovery; never a standby,
    which may legitimately be cloning or catching up (or be scaled to zero)."""
    if role == "primary":
        return {TIMEOUT_SECONDS: str(PRIMARY_AWAIT_SECONDS)}
    return {SKIP_AWAIT: "true"}


def instance_labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "postgresql", "app.kubernetes.io/instance": name}


def role_labels(name: str, role: str) -> dict[str, str]:
    return instance_labels(name) | {"app.kubernetes.io/component": role}


def primary_selector(name: str, primary_pod: str) -> dict[str, str]:
    """Read-write Service: only the primary pod (pod 0 unless the promotion runbook moved it)."""
    return instance_labels(name) | {"statefulset.kubernetes.io/pod-name": primary_pod}


class PostgresStatefulSet(pulumi.ComponentResource):
    """PostgreSQL StatefulSet(s), credentials Secret, scripts, Services and a PodDisruptionBudget."""

    headless_service_name: pulumi.Output[str]
    host: pulumi.Output[str]
    read_only_host: pulumi.Output[str | None]
    port: pulumi.Output[int]
    database: pulumi.Output[str]
    user: pulumi.Output[str]
    secret_name: pulumi.Output[str]
    connection_uri: pulumi.Output[str]

    def __init__(self, name: str, args: PostgresStatefulSetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pgstack:index:PostgresStatefulSet", name, None, opts)
        self._name, self._args = name, args
        child = pulumi.ResourceOptions(parent=self)
        # The credentials of retained data, and the objects whose deletion takes pods down.
        guarded = pulumi.ResourceOptions(parent=self, protect=args.protect)
        layout = data_layout(args.image_major)

        # ---- credentials: generated here, stored only in the Secret
        def password(role: str) -> pulumi.Output[str]:
            pw = random.RandomPassword(
                f"{name}-{role}-password",
                length=32,
                special=True,
                override_special=PASSWORD_SPECIALS,
                min_special=2,
                keepers={"rotation": str(args.password_rotation)},
                opts=guarded,
            )
            # Mocks (and old providers) do not mark result secret; never rely on it.
            return pulumi.Output.secret(pw.result)

        passwords: dict[str, pulumi.Output[str]] = {"postgres-password": password("superuser")}
        if args.username:
            passwords["password"] = password("app")
        if args.replicating:
            passwords["replication-password"] = password("replication")

        self.secret = k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{name}-credentials", namespace=args.namespace, labels=instance_labels(name)),
            type="Opaque",
            string_data=passwords,
            opts=guarded,
        )
        scripts = script_files()
        self.scripts = k8s.core.v1.ConfigMap(
            f"{name}-scripts",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{name}-scripts", namespace=args.namespace, labels=instance_labels(name)),
            data=scripts,
            opts=child,
        )
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=args.namespace, labels=instance_labels(name)),
            automount_service_account_token=False,
            opts=child,
        )
        self.headless = HeadlessService(
            f"{name}-hl",
            HeadlessServiceArgs(
                namespace=args.namespace,
                selector=instance_labels(name),
                ports=[NamedPort("postgresql", CONTAINER_PORT)],
                publish_not_ready_addresses=True,
                labels=instance_labels(name),
                cluster_domain=args.cluster_domain,
            ),
            opts=child,
        )

        # Pods roll when a password or a script changes: POSTGRES_PASSWORD only acts at
        # initdb, so the sidecar applies the new passwords, and restarts pick up new scripts.
        # The digest is one-way; unsecret it so the diff shows that the template changed.
        secret_sum = pulumi.Output.unsecret(pulumi.Output.all(*[passwords[k] for k in sorted(passwords)]).apply(lambda vs: checksum(*vs)))
        scripts_sum = checksum(*(f"{k}={v}" for k, v in scripts.items()))
        annotations = secret_sum.apply(lambda s: {"checksum/secret": s, "checksum/scripts": scripts_sum})

        primary_pod = args.primary_pod_name(name)
        primary_host = pulumi.Output.from_input(args.namespace).apply(
            lambda ns: pod_dns(primary_pod, f"{name}-hl", ns, args.cluster_domain)
        )
        settings = server_settings(args.memory_limit_bytes, args.replicating)

        # ---- one claim per pod, owned here rather than by the StatefulSet templates
        # The class name is a known string (a replaced class must not replace the sets), so the
        # wait for the namespace and storage the component depends on is passed down explicitly.
        outer = dependencies_of(opts)
        self.claims = [self._claim(pod, outer) for pod in pod_names(name, args.replicas, args.replication)]
        depends = pulumi.ResourceOptions(
            parent=self,
            protect=args.protect,
            depends_on=[*outer, self.secret, self.scripts, self.headless, *self.claims],
            # volumeClaimTemplates is immutable (a change replaces the StatefulSet, every pod
            # down at once). The claims above carry size changes; the template only ever
            # applies to a claim that does not exist, and the claims always exist first.
            ignore_changes=["spec.volumeClaimTemplates"],
        )

        primary_replicas = 1 if args.replicating else args.replicas
        # The StatefulSets: the primary's, then (with replication) the standbys', ordinals from 1.
        self.statefulsets = [self._statefulset(name, "primary", primary_replicas, 0, layout, settings, primary_host, annotations, depends)]
        if args.replicating:
            self.statefulsets.append(
                self._statefulset(f"{name}-standby", "standby", args.replicas - 1, 1, layout, settings, primary_host, annotations, depends)
            )

        # ---- client Services
        self.rw_service = self._client_service(name, primary_selector(name, primary_pod), args.service_type, args.node_port)
        self.ro_service = (
            # No standby may be ready (cloning, lagging, none yet): never make `pulumi up` wait for one.
            self._client_service(f"{name}-ro", role_labels(name, "standby"), "ClusterIP", None, {SKIP_AWAIT: "true"})
            if args.replicating
            else None
        )
        self.pdb = k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=args.namespace, labels=instance_labels(name)),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=instance_labels(name)),
                # A pod that never becomes ready (a standby that fell off) must not block node drains.
                unhealthy_pod_eviction_policy="AlwaysAllow",
            ),
            opts=child,
        )

        self.network_policy = self._network_policy() if args.network_policy else None

        # ---- outputs
        ns = pulumi.Output.from_input(args.namespace)
        self.headless_service_name = self.headless.service_name
        self.host = ns.apply(lambda n: service_dns(name, n, args.cluster_domain))
        ro_host = ns.apply(lambda n: service_dns(f"{name}-ro", n, args.cluster_domain))
        self.read_only_host = ro_host.apply(lambda h: h if args.has_standbys else None)
        # Read-only clients (the dump job): the standbys' Service first when there is one, then the primary.
        self.namespace = ns
        self.pod_labels = instance_labels(name)
        self.replica_hosts: list[pulumi.Output[str]] = [ro_host, self.host] if args.replicating else [self.host]
        self.port = pulumi.Output.from_input(args.service_port)
        self.database = pulumi.Output.from_input(args.database if args.username else SUPERUSER)
        self.user = pulumi.Output.from_input(args.username or SUPERUSER)
        self.secret_name = name_of(self.secret)
        user_pw = passwords["password"] if args.username else passwords["postgres-password"]
        self.connection_uri = pulumi.Output.secret(
            pulumi.Output.format("postgresql://{0}:{1}@{2}:{3}/{4}", self.user, user_pw, self.host, args.service_port, self.database)
        )
        self.register_outputs(
            {
                "headless_service_name": self.headless_service_name,
                "host": self.host,
                "read_only_host": self.read_only_host,
                "port": self.port,
                "database": self.database,
                "user": self.user,
                "secret_name": self.secret_name,
                "connection_uri": self.connection_uri,
            }
        )

    # ------------------------------------------------------------------ pieces

    def _claim(self, pod: str, after: list[pulumi.Resource]) -> k8s.core.v1.PersistentVolumeClaimPatch:
        """The data claim of one pod, applied with server-side apply (an upsert).

        It creates the claim before the StatefulSet scales up, so a new standby gets the
        current size, and expands existing claims in place when the size grows (only
        resources.requests of a bound claim may change; Kubernetes refuses a shrink or a
        new class). retain_on_delete: scaling down or destroying never deletes a claim.
        """
        a, name = self._args, self._name
        claim = f"{DATA_VOLUME}-{pod}"
        return k8s.core.v1.PersistentVolumeClaimPatch(
            f"{name}-{claim}",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                name=claim, namespace=a.namespace, labels=instance_labels(name) | a.claim_labels, annotations={PATCH_FORCE: "true"}
            ),
            spec=k8s.core.v1.PersistentVolumeClaimSpecPatchArgs(
                access_modes=["ReadWriteOnce"],
                storage_class_name=a.storage_class,
                resources=k8s.core.v1.VolumeResourceRequirementsPatchArgs(requests={"storage": a.storage_size}),
            ),
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True, depends_on=after),
        )

    def _env(self, primary_host: pulumi.Output[str], layout: DataLayout) -> list[k8s.core.v1.EnvVarArgs]:
        a = self._args
        plain = {
            "PGDATA": layout.pgdata,
            "DATA_MOUNT": layout.mount_path,
            "PGPORT": str(CONTAINER_PORT),
            "PG_SOCKET_DIR": SOCKET_DIR,
            "REPLICATION_ENABLED": "true" if a.replicating else "false",
            "PRIMARY_PORT": str(CONTAINER_PORT),
            "REPLICATION_USER": a.replication_user,
            "SECRETS_DIR": SECRETS_MOUNT,
            "POSTGRES_PASSWORD_FILE": f"{SECRETS_MOUNT}/postgres-password",
            "APP_USER": a.username or "",
            "APP_DATABASE": a.database if a.username else "",
            "READINESS_MAX_LAG_BYTES": str(a.max_lag_bytes),
        }
        env = [
            k8s.core.v1.EnvVarArgs(
                name=var,
                value_from=k8s.core.v1.EnvVarSourceArgs(field_ref=k8s.core.v1.ObjectFieldSelectorArgs(field_path=f"metadata.{field}")),
            )
            for var, field in (("POD_NAME", "name"), ("POD_NAMESPACE", "namespace"))
        ] + [
            k8s.core.v1.EnvVarArgs(name="PRIMARY_HOST", value=primary_host),
            # Every pod's address, ready or not: a primary with an empty volume looks for peers holding data.
            k8s.core.v1.EnvVarArgs(name="PEERS_HOST", value=self.headless.fqdn),
            k8s.core.v1.EnvVarArgs(name="PRIMARY_POD", value=a.primary_pod_name(self._name)),
        ]
        return env + [k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in plain.items()]

    def _mounts(self, mount_path: str, with_data: bool) -> list[k8s.core.v1.VolumeMountArgs]:
        mounts = [
            k8s.core.v1.VolumeMountArgs(name="scripts", mount_path=SCRIPTS_MOUNT, read_only=True),
            k8s.core.v1.VolumeMountArgs(name="secrets", mount_path=SECRETS_MOUNT, read_only=True),
            k8s.core.v1.VolumeMountArgs(name="run", mount_path=SOCKET_DIR),
            k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
        ]
        if with_data:
            mounts.append(k8s.core.v1.VolumeMountArgs(name=DATA_VOLUME, mount_path=mount_path))
        return mounts

    def _affinity(self) -> k8s.core.v1.AffinityArgs:
        term = k8s.core.v1.PodAffinityTermArgs(
            label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=instance_labels(self._name)),
            topology_key="kubernetes.io/hostname",
        )
        if self._args.anti_affinity == "hard":
            anti = k8s.core.v1.PodAntiAffinityArgs(required_during_scheduling_ignored_during_execution=[term])
        else:
            anti = k8s.core.v1.PodAntiAffinityArgs(
                preferred_during_scheduling_ignored_during_execution=[
                    k8s.core.v1.WeightedPodAffinityTermArgs(weight=100, pod_affinity_term=term)
                ]
            )
        return k8s.core.v1.AffinityArgs(pod_anti_affinity=anti)

    def _statefulset(
        self,
        sts_name: str,
        role: str,
        replicas: int,
        first_ordinal: int,
        layout: DataLayout,
        settings: dict[str, str],
        primary_host: pulumi.Output[str],
        annotations: pulumi.Output[dict[str, str]],
        opts: pulumi.ResourceOptions,
    ) -> k8s.apps.v1.StatefulSet:
        a, name = self._args, self._name
        mount_path, pgdata = layout.mount_path, layout.pgdata
        labels = role_labels(name, role)
        env = self._env(primary_host, layout)
        pg_isready = ["pg_isready", "--host", SOCKET_DIR, "--port", str(CONTAINER_PORT), "--quiet"]
        small = k8s.core.v1.ResourceRequirementsArgs(requests={"cpu": "50m", "memory": "64Mi"}, limits={"cpu": "500m", "memory": "128Mi"})

        def container(name: str, command: list[str], **spec: Any) -> k8s.core.v1.ContainerArgs:
            """Every container runs the same image, environment and locked-down security context."""
            return k8s.core.v1.ContainerArgs(
                name=name,
                image=a.image,
                image_pull_policy=a.image_pull_policy,
                command=command,
                env=env,
                security_context=container_security(),
                **spec,
            )

        argv = postgres_args(settings)
        pg_resources = k8s.core.v1.ResourceRequirementsArgs(requests=a.requests, limits=a.limits)
        init = container(
            "init", [f"{SCRIPTS_MOUNT}/init.sh"], volume_mounts=self._mounts(mount_path, with_data=True), resources=pg_resources
        )
        postgres = container(
            "postgres",
            argv[:1],
            args=argv[1:],
            ports=[k8s.core.v1.ContainerPortArgs(name="postgresql", container_port=CONTAINER_PORT, protocol="TCP")],
            resources=pg_resources,
            volume_mounts=[*self._mounts(mount_path, with_data=True), k8s.core.v1.VolumeMountArgs(name="shm", mount_path="/dev/shm")],
            # Crash recovery after a node reboot can take minutes: the startup probe
            # allows 15 minutes before liveness starts counting.
            startup_probe=k8s.core.v1.ProbeArgs(
                exec_=k8s.core.v1.ExecActionArgs(command=pg_isready), period_seconds=10, timeout_seconds=5, failure_threshold=90
            ),
            liveness_probe=k8s.core.v1.ProbeArgs(
                exec_=k8s.core.v1.ExecActionArgs(command=pg_isready), period_seconds=10, timeout_seconds=5, failure_threshold=6
            ),
            readiness_probe=k8s.core.v1.ProbeArgs(
                exec_=k8s.core.v1.ExecActionArgs(command=[f"{SCRIPTS_MOUNT}/readiness.sh"]),
                period_seconds=5,
                timeout_seconds=5,
                failure_threshold=3,
            ),
            # Kubernetes sends SIGTERM (smart shutdown waits for every client); ask for a fast one.
            lifecycle=k8s.core.v1.LifecycleArgs(
                pre_stop=k8s.core.v1.LifecycleHandlerArgs(
                    exec_=k8s.core.v1.ExecActionArgs(command=["pg_ctl", "stop", "-D", pgdata, "-m", "fast", "-w", "-t", "50"])
                )
            ),
        )
        sync = container(
            "password-sync",
            [f"{SCRIPTS_MOUNT}/sync-passwords.sh"],
            resources=small,
            # The loop leaves a heartbeat after every pass; a stuck or failing loop gets restarted.
            liveness_probe=k8s.core.v1.ProbeArgs(
                exec_=k8s.core.v1.ExecActionArgs(command=[f"{SCRIPTS_MOUNT}/sync-passwords.sh", "--alive"]),
                initial_delay_seconds=30,
                period_seconds=30,
                timeout_seconds=5,
                failure_threshold=3,
            ),
            # No readiness probe: pod readiness is the database's. A sidecar problem must never
            # take the primary out of its Service; liveness still restarts a stuck loop.
            volume_mounts=self._mounts(mount_path, with_data=False),
        )
        volumes = [
            k8s.core.v1.VolumeArgs(
                name="scripts",
                config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=name_of(self.scripts), default_mode=0o555),
            ),
            k8s.core.v1.VolumeArgs(
                name="secrets",
                secret=k8s.core.v1.SecretVolumeSourceArgs(secret_name=name_of(self.secret), default_mode=0o440),
            ),
            k8s.core.v1.VolumeArgs(name="run", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="16Mi")),
            k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="256Mi")),
            k8s.core.v1.VolumeArgs(name="shm", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(medium="Memory", size_limit=a.shm_size)),
        ]
        spread = k8s.core.v1.TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key="kubernetes.io/hostname",
            when_unsatisfiable="DoNotSchedule" if a.anti_affinity == "hard" else "ScheduleAnyway",
            label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=instance_labels(name)),
        )
        pod_spec = k8s.core.v1.PodSpecArgs(
            service_account_name=name_of(self.service_account),
            automount_service_account_token=False,
            enable_service_links=False,
            termination_grace_period_seconds=60,
            security_context=pod_security_context(),
            affinity=self._affinity(),
            topology_spread_constraints=[spread],
            init_containers=[init],
            containers=[postgres, sync],
            volumes=volumes,
        )
        spec = k8s.apps.v1.StatefulSetSpecArgs(
            replicas=replicas,
            service_name=self.headless.service_name,
            pod_management_policy="OrderedReady",
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
            ordinals=k8s.apps.v1.StatefulSetOrdinalsArgs(start=first_ordinal) if first_ordinal else None,
            update_strategy=k8s.apps.v1.StatefulSetUpdateStrategyArgs(type="RollingUpdate"),
            # Explicit: volumes outlive scale-down and deletion (seed 001's scale to zero).
            persistent_volume_claim_retention_policy=k8s.apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicyArgs(
                when_deleted="Retain", when_scaled="Retain"
            ),
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels, annotations=annotations),
                spec=pod_spec,
            ),
            volume_claim_templates=[
                k8s.core.v1.PersistentVolumeClaimArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(name=DATA_VOLUME, labels=instance_labels(name)),
                    spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                        access_modes=["ReadWriteOnce"],
                        storage_class_name=a.storage_class,
                        resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": a.storage_size}),
                    ),
                )
            ],
        )
        return k8s.apps.v1.StatefulSet(
            sts_name,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=sts_name,
                namespace=a.namespace,
                labels=labels,
                annotations=checkov_skips(a.image, a.image_pull_policy, sidecar=True) | await_annotations(role),
            ),
            spec=spec,
            opts=opts,
        )

    def _network_policy(self) -> k8s.networking.v1.NetworkPolicy:
        """Ingress on the PostgreSQL port from peers and named clients; egress to DNS and peers only."""
        a, name = self._args, self._name
        peers = k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=instance_labels(name)))
        clients = [peers]
        if a.backup_clients is not None:
            clients.append(
                k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=a.backup_clients))
            )
        for c in a.allowed_clients:
            if c.cidr:
                clients.append(k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=c.cidr)))
                continue
            clients.append(
                k8s.networking.v1.NetworkPolicyPeerArgs(
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=c.pod_labels),
                    namespace_selector=None
                    if c.namespace_labels is None
                    else k8s.meta.v1.LabelSelectorArgs(match_labels=c.namespace_labels),
                )
            )
        pg_port = [k8s.networking.v1.NetworkPolicyPortArgs(port=CONTAINER_PORT, protocol="TCP")]
        dns = dns_egress(a.dns)
        return k8s.networking.v1.NetworkPolicy(
            f"{name}-netpol",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=a.namespace, labels=instance_labels(name)),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=instance_labels(name)),
                policy_types=["Ingress", "Egress"],
                ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=clients, ports=pg_port)],
                egress=[dns, k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=[peers], ports=pg_port)],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _client_service(
        self, svc_name: str, selector: dict[str, str], svc_type: str, node_port: int | None, annotations: dict[str, str] | None = None
    ) -> k8s.core.v1.Service:
        return k8s.core.v1.Service(
            svc_name,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=svc_name, namespace=self._args.namespace, labels=instance_labels(self._name), annotations=annotations
            ),
            spec=k8s.core.v1.ServiceSpecArgs(
                type=svc_type,
                selector=selector,
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        name="postgresql", port=self._args.service_port, target_port="postgresql", node_port=node_port, protocol="TCP"
                    )
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
