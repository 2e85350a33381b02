"""PostgresStatefulSet: PostgreSQL with a volume per pod, generated passwords and streaming replication.

Pod 0 (StatefulSet ``<name>``) is the primary. With replication on, the standbys run in a
second StatefulSet ``<name>-standby`` whose ordinals start at 1 (components/postgres_names.py),
so the read-write and read-only Services can tell the roles apart with plain label selectors,
and scaling the standbys never touches the primary's StatefulSet.

This module only registers resources. What goes into them is built by pure functions:
postgres_pod (containers, env, probes), postgres_scheduling, postgres_workload (StatefulSet
and claim specs), postgres_services, postgres_network; the arguments are postgres_args.
Resource names, types and parents are the stack's identity (tests/components/test_urns.py).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.headless_service import HeadlessService
from components.headless_service_args import HeadlessServiceArgs, NamedPort
from components.naming import service_dns
from components.outputs import dependencies_of, name_of
from components.postgres_args import PostgresStatefulSetArgs
from components.postgres_conf import TLS_MOUNT, data_layout, server_parameters, tls_parameters
from components.postgres_names import (
    CONTAINER_PORT,
    SUPERUSER,
    Role,
    claim_name,
    credentials_secret,
    headless_service,
    instance_labels,
    pod_host,
    pod_names,
    primary_pod_name,
    read_only_service,
    role_labels,
    scripts_config_map,
    set_holding,
    statefulsets,
    wal_s3_secret,
)
from components.postgres_network import network_policy_spec, wal_access
from components.postgres_pod import SCRIPTS_MOUNT, PodObjects, checksum, pod_spec, postgres_env, script_files
from components.postgres_services import client_services, disruption_budget_spec, service_metadata
from components.postgres_tls import PostgresTls, TlsSite
from components.postgres_workload import claim_metadata, claim_spec, read_write_await, statefulset_metadata, statefulset_spec
from components.wal_pod import archive_parameters

# RFC 3986 unreserved characters: safe in connection URIs and pgpass files unescaped.
PASSWORD_SPECIALS = "-_.~"


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
    ca_certificate: pulumi.Output[str | None]

    def __init__(self, name: str, args: PostgresStatefulSetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        args.check_component_name(name)
        super().__init__("pgstack:index:PostgresStatefulSet", name, None, opts)
        self._name, self._args = name, args
        passwords = self._credentials()
        self._pod_objects()
        self._tls()
        self._wal_secret()
        self._workload(passwords, dependencies_of(opts))
        self._access()
        self._outputs(passwords)

    def _credentials(self) -> dict[str, pulumi.Output[str]]:
        """Passwords generated here and stored only in the Secret (Secret keys as the scripts read them).

        The Secret holds the truth and is protected like the StatefulSets; its content updates in
        place (kubernetes:enableSecretMutable in Pulumi.yaml). The RandomPasswords are not protected:
        replacing one (passwordRotation, `pulumi up --replace`) only rotates a password, and
        pulumi-random replaces create-before-delete, so nothing is deleted first."""
        name, args = self._name, self._args
        guarded = pulumi.ResourceOptions(parent=self, protect=args.protect)
        generated = pulumi.ResourceOptions(parent=self)

        def password(role: str) -> pulumi.Output[str]:
            pw = random.RandomPassword(
                f"{name}-{role}-password",
                length=32,
                special=True,
                override_special=PASSWORD_SPECIALS,
                min_special=2,
                keepers={"rotation": str(args.password_rotation)},
                opts=generated,
            )
            # Mocks (and old providers) do not mark result secret; never rely on it.
            return pulumi.Output.secret(pw.result)

        passwords = {"postgres-password": password("superuser")}
        if args.username:
            passwords["password"] = password("app")
        if args.replication:
            passwords["replication-password"] = password("replication")
        meta = k8s.meta.v1.ObjectMetaArgs(name=credentials_secret(name), namespace=args.namespace, labels=instance_labels(name))
        self.secret = k8s.core.v1.Secret(f"{name}-credentials", metadata=meta, type="Opaque", string_data=passwords, opts=guarded)
        return passwords

    def _pod_objects(self) -> None:
        """The scripts ConfigMap, the ServiceAccount (no token) and the governing headless Service."""
        name, args = self._name, self._args
        child = pulumi.ResourceOptions(parent=self)
        labels = instance_labels(name)
        # Read once: the ConfigMap's data and the pod template's scripts checksum.
        self._script_files = script_files()
        self.scripts = k8s.core.v1.ConfigMap(
            f"{name}-scripts",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=scripts_config_map(name), namespace=args.namespace, labels=labels),
            data=self._script_files,
            opts=child,
        )
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=args.namespace, labels=labels),
            automount_service_account_token=False,
            opts=child,
        )
        hl = HeadlessServiceArgs(
            namespace=args.namespace,
            selector=labels,
            ports=[NamedPort("postgresql", CONTAINER_PORT)],
            publish_not_ready_addresses=True,
            labels=labels,
            cluster_domain=args.cluster_domain,
        )
        self.headless = HeadlessService(headless_service(name), hl, opts=child)

    def _tls(self) -> None:
        """The TLS Secret's source (components/postgres_tls.py), a child of this set: new URNs only."""
        name, args = self._name, self._args
        self.tls: PostgresTls | None = None
        if args.tls is None:
            return
        if not isinstance(args.namespace, str):
            raise ValueError(f"{name}: TLS needs the namespace as a known string: it is part of the certificate's names")
        site = TlsSite(name, args.namespace, args.cluster_domain, args.protect)
        self.tls = PostgresTls(f"{name}-tls", site, args.tls, opts=pulumi.ResourceOptions(parent=self))

    def _wal_secret(self) -> None:
        """rclone's remote WAL (the S3 account) for archive_command and the base-backup job, read through secretKeyRef."""
        name, args = self._name, self._args
        meta = k8s.meta.v1.ObjectMetaArgs(name=wal_s3_secret(name), namespace=args.namespace, labels=instance_labels(name))
        credentials: pulumi.Output[dict[str, str]] | None = pulumi.Output.secret(args.wal.s3.credentials) if args.wal else None
        # Protected like the credentials Secret (production-protect: a Secret holds state); its content updates in place.
        guarded = pulumi.ResourceOptions(parent=self, protect=args.protect)
        self.wal_secret = (
            k8s.core.v1.Secret(f"{name}-wal-s3", metadata=meta, type="Opaque", string_data=credentials, opts=guarded)
            if credentials
            else None
        )

    def _template_annotations(self, passwords: dict[str, pulumi.Output[str]]) -> pulumi.Output[dict[str, str]]:
        """Pods roll when a password or a script changes: POSTGRES_PASSWORD only acts at initdb, so the
        sidecar applies new passwords, and restarts pick up new scripts. The digest is one-way; it is
        unsecret so that the diff shows the template changed."""
        secret_sum = pulumi.Output.unsecret(pulumi.Output.all(*[passwords[k] for k in sorted(passwords)]).apply(lambda vs: checksum(*vs)))
        scripts_sum = checksum(*(f"{k}={v}" for k, v in self._script_files.items()))
        return secret_sum.apply(lambda s: {"checksum/secret": s, "checksum/scripts": scripts_sum})

    def _workload(self, passwords: dict[str, pulumi.Output[str]], outer: list[pulumi.Resource]) -> None:
        """One claim per pod, owned here rather than by the StatefulSet templates, then the StatefulSets:
        the primary's, and with replication the standbys' (ordinals from 1)."""
        name, args = self._name, self._args
        layout = data_layout(args.image_major)
        primary = primary_pod_name(name, args.primary_pod)
        primary_host = pulumi.Output.from_input(args.namespace).apply(lambda ns: pod_host(name, primary, ns, args.cluster_domain))
        env = postgres_env(name, args, layout, primary_host, self.headless.fqdn)
        parameters = server_parameters(args.memory_limit_bytes, args.replication)
        if args.tls is not None:
            parameters |= tls_parameters(TLS_MOUNT, args.tls.min_protocol)
        if args.wal is not None:
            parameters |= archive_parameters(SCRIPTS_MOUNT, args.wal.archive_timeout)
        # Known names, not outputs: a replaced ConfigMap or Secret (delete-before-replace, fixed name)
        # must never drag the StatefulSets along (pulumi/pulumi pkg/resource/deploy/step_generator.go
        # calculateDependentReplacements re-diffs only inputs that property-depend on it); depends_on orders them.
        # The TLS Secret too, and it stays out of the checksums: the sidecar reloads a renewed certificate.
        tls_secret = args.tls.secret_name(name) if args.tls is not None else None
        wal_secret = wal_s3_secret(name) if self.wal_secret is not None else None
        objects = PodObjects(name, scripts_config_map(name), credentials_secret(name), tls_secret, wal_secret)
        annotations = self._template_annotations(passwords)
        self._claims(outer)
        depends = [*outer, self.secret, self.scripts, self.service_account, self.headless, *self.claims, *([self.tls] if self.tls else [])]
        depends += [self.wal_secret] if self.wal_secret else []
        self.statefulsets: list[k8s.apps.v1.StatefulSet] = []
        # Each set's pod template as sent, by role: the stack fingerprints the primary's (stacks/rollout.py).
        self.templates: dict[str, k8s.core.v1.PodTemplateSpecArgs] = {}
        for sts, role, replicas, first in self._rollout_order():
            template = k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels=role_labels(name, role), annotations=annotations),
                spec=pod_spec(name, args, env, layout, parameters, objects),
            )
            self.templates[role] = template
            spec = statefulset_spec(name, role, 0 if args.hold else replicas, first, args, headless_service(name), template)
            opts = pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                # One pod at a time across both sets: the set that runs the primary updates first, and
                # the other set's update starts once `pulumi up` has awaited it (when it is: postgres_workload).
                depends_on=[*depends, *self.statefulsets],
                # volumeClaimTemplates is immutable (a change replaces the StatefulSet, every pod down at
                # once); the claims carry size changes and always exist before the template applies.
                ignore_changes=["spec.volumeClaimTemplates"],
            )
            metadata = statefulset_metadata(sts, role, name, args)
            self.statefulsets.append(k8s.apps.v1.StatefulSet(sts, metadata=metadata, spec=spec, opts=opts))

    def _rollout_order(self) -> list[tuple[str, Role, int, int]]:
        """The StatefulSets, the one that runs the configured primary first."""
        name, args = self._name, self._args
        holding = set_holding(name, args.replicas, args.replication, args.primary_pod)
        return sorted(statefulsets(name, args.replicas, args.replication), key=lambda s: s[0] != holding)

    def _claims(self, outer: list[pulumi.Resource]) -> None:
        """The claims apply with server-side apply (an upsert) before the sets scale up, so a new standby
        gets the current size; a size change expands them in place. Scale-down and destroy forget them.
        The class name is a known string, so the wait for namespace and storage is passed down explicitly."""
        name, args = self._name, self._args
        self.claims = [
            k8s.core.v1.PersistentVolumeClaimPatch(
                f"{name}-{claim_name(pod)}",
                metadata=claim_metadata(name, pod, args),
                spec=claim_spec(args),
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True, depends_on=outer),
            )
            for pod in ([] if args.hold else pod_names(name, args.replicas, args.replication))
        ]

    def _access(self) -> None:
        """Client Services, the PodDisruptionBudget and (optionally) the NetworkPolicy."""
        name, args = self._name, self._args
        child = pulumi.ResourceOptions(parent=self)
        primary = primary_pod_name(name, args.primary_pod)
        # The endpoint wait starts once the sets are applied (and the primary's set awaited), never while
        # storage is still being installed on a first `up`.
        after_sets = pulumi.ResourceOptions(parent=self, depends_on=list(self.statefulsets))
        rw_await = read_write_await(name, primary, args.hold)
        services = [
            k8s.core.v1.Service(svc, metadata=service_metadata(svc, name, args.namespace, annotations), spec=spec, opts=after_sets)
            for svc, annotations, spec in client_services(
                name, primary, args.service_type, args.service_port, args.node_port, args.replication, rw_await
            )
        ]
        self.rw_service, self.ro_service = services[0], (services[1] if len(services) > 1 else None)
        meta = k8s.meta.v1.ObjectMetaArgs(name=name, namespace=args.namespace, labels=instance_labels(name))
        self.pdb = k8s.policy.v1.PodDisruptionBudget(f"{name}-pdb", metadata=meta, spec=disruption_budget_spec(name), opts=child)
        self.network_policy = (
            k8s.networking.v1.NetworkPolicy(
                f"{name}-netpol",
                metadata=meta,
                spec=network_policy_spec(name, args.allowed_clients, args.backup_clients, args.dns, args.metrics, wal_access(args)),
                opts=child,
            )
            if args.network_policy
            else None
        )

    def _outputs(self, passwords: dict[str, pulumi.Output[str]]) -> None:
        name, args = self._name, self._args
        ns = pulumi.Output.from_input(args.namespace)
        self.headless_service_name = self.headless.service_name
        self.host = ns.apply(lambda n: service_dns(name, n, args.cluster_domain))
        ro_host = ns.apply(lambda n: service_dns(read_only_service(name), n, args.cluster_domain))
        self.read_only_host = ro_host.apply(lambda h: h if args.has_standbys else None)
        # For the dump job: the namespace, the pods' labels (its egress), and where to read from,
        # the standbys' Service first when there is one, then the primary.
        self.namespace = ns
        self.wal = args.wal
        self.pod_labels = instance_labels(name)
        self.replica_hosts: list[pulumi.Output[str]] = [ro_host, self.host] if args.replication else [self.host]
        self.port = pulumi.Output.from_input(args.service_port)
        self.database = pulumi.Output.from_input(args.database if args.username else SUPERUSER)
        self.user = pulumi.Output.from_input(args.username or SUPERUSER)
        self.secret_name = name_of(self.secret)
        user_pw = passwords["password"] if args.username else passwords["postgres-password"]
        # With TLS a client verifies the server's name and CA (sslrootcert: the caCertificate output, or ca.crt).
        query = "?sslmode=verify-full" if args.tls is not None else ""
        uri = pulumi.Output.format(
            "postgresql://{0}:{1}@{2}:{3}/{4}{5}", self.user, user_pw, self.host, args.service_port, self.database, query
        )
        self.connection_uri = pulumi.Output.secret(uri)
        self.ca_certificate = self.tls.ca_certificate if self.tls is not None else pulumi.Output.from_input(None)
        outputs = ("headless_service_name", "host", "read_only_host", "port", "database", "user", "secret_name", "connection_uri")
        self.register_outputs({key: getattr(self, key) for key in (*outputs, "ca_certificate")})
