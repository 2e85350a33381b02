"""PostgresCluster: PostgreSQL run by the CloudNativePG operator, a ``postgresql.cnpg.io/v1`` Cluster.

The operator makes the pods, claims, Services (<name>-rw, -ro, -r), replication, failover and its CA. This
component generates the passwords (into Secrets: the Cluster names them, never holds them), the server
certificate when cert-manager issues it, the scripts the logical dump job runs, the NetworkPolicy, and the
Cluster itself: protected and retained on delete, because deleting a Cluster makes the operator delete its
claims (their owner reference is the Cluster), and with them the data.
What goes into them is built by components/postgres_cluster_spec.py; the arguments are postgres_cluster_args.py.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.outputs import dependencies_of, name_of
from components.postgres_cluster_args import CNPG_API, CNPG_PORT, PostgresClusterArgs
from components.postgres_cluster_spec import (
    app_secret,
    cluster_labels,
    cluster_spec,
    hosts,
    network_policy_spec,
    operator_ca_secret,
    server_alt_names,
    superuser_secret,
)
from components.postgres_cluster_wal import OBJECT_STORE_API, object_store_spec, scheduled_backup_spec
from components.postgres_names import SUPERUSER, credentials_secret, instance_labels, scripts_config_map
from components.postgres_pod import script_files
from components.postgres_statefulset import PASSWORD_SPECIALS
from components.postgres_tls import CERTIFICATE_API, certificate_spec


class PostgresCluster(pulumi.ComponentResource):
    """A CloudNativePG Cluster with generated passwords, the dump job's scripts and a NetworkPolicy."""

    host: pulumi.Output[str]
    read_only_host: pulumi.Output[str | None]
    port: pulumi.Output[int]
    database: pulumi.Output[str]
    user: pulumi.Output[str]
    secret_name: pulumi.Output[str]
    connection_uri: pulumi.Output[str]

    def __init__(self, name: str, args: PostgresClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        args.check_component_name(name)
        super().__init__("pgstack:index:PostgresCluster", name, None, opts)
        self._name, self._args = name, args
        passwords = self._credentials()
        self._objects()
        self._cluster(dependencies_of(opts))
        self._base_backups()
        self._outputs(passwords)

    def _password(self, role: str) -> pulumi.Output[str]:
        pw = random.RandomPassword(
            f"{self._name}-{role}-password",
            length=32,
            special=True,
            override_special=PASSWORD_SPECIALS,
            min_special=2,
            keepers={"rotation": str(self._args.password_rotation)},
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Mocks (and old providers) do not mark result secret; never rely on it.
        return pulumi.Output.secret(pw.result)

    def _credentials(self) -> dict[str, pulumi.Output[str]]:
        """The passwords, each in the Secrets that read it: the basic-auth pair the operator applies to its role
        (bootstrap initdb.secret, superuserSecret), and <name>-credentials with the keys the dump job's scripts read
        (the StatefulSet engine's layout: the stack's secretName output names it)."""
        name, args = self._name, self._args
        assert args.username is not None  # PostgresClusterArgs refuses None
        guarded = pulumi.ResourceOptions(parent=self, protect=args.protect)
        passwords = {"postgres-password": self._password("superuser"), "password": self._password("app")}

        def secret(resource: str, secret_name: str, kind: str, data: dict[str, pulumi.Input[str]]) -> k8s.core.v1.Secret:
            meta = k8s.meta.v1.ObjectMetaArgs(name=secret_name, namespace=args.namespace, labels=instance_labels(name))
            return k8s.core.v1.Secret(resource, metadata=meta, type=kind, string_data=data, opts=guarded)

        self.secret = secret(f"{name}-credentials", credentials_secret(name), "Opaque", dict(passwords))
        basic_auth = "kubernetes.io/basic-auth"
        app: dict[str, pulumi.Input[str]] = {"username": args.username, "password": passwords["password"]}
        superuser: dict[str, pulumi.Input[str]] = {"username": SUPERUSER, "password": passwords["postgres-password"]}
        self.app_secret = secret(f"{name}-app-user", app_secret(name), basic_auth, app)
        self.superuser_secret = secret(f"{name}-superuser-user", superuser_secret(name), basic_auth, superuser)
        return passwords

    def _objects(self) -> None:
        """The scripts the dump job runs (the StatefulSet engine's ConfigMap), the cert-manager Certificate, and the
        Barman Cloud ObjectStore of the WAL archive."""
        name, args = self._name, self._args
        child = pulumi.ResourceOptions(parent=self)
        meta = k8s.meta.v1.ObjectMetaArgs(name=scripts_config_map(name), namespace=args.namespace, labels=instance_labels(name))
        self.scripts = k8s.core.v1.ConfigMap(f"{name}-scripts", metadata=meta, data=script_files(), opts=child)
        self.certificate: k8s.apiextensions.CustomResource | None = None
        tls = args.tls
        if tls is not None and tls.issuer is not None:
            dns_names = server_alt_names(name, args.namespace, args.cluster_domain)
            self.certificate = k8s.apiextensions.CustomResource(
                f"{name}-certificate",
                api_version=CERTIFICATE_API,
                kind="Certificate",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=args.namespace, labels=instance_labels(name)),
                spec=certificate_spec(name, dns_names, tls, tls.issuer),
                opts=child,
            )
        self.object_store: k8s.apiextensions.CustomResource | None = None
        if args.wal_s3 is not None and args.wal_s3_keys is not None:
            self.wal_s3_secret = k8s.core.v1.Secret(
                f"{name}-wal-s3",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=args.wal_s3.credentials_secret, namespace=args.namespace, labels=instance_labels(name)
                ),
                type="Opaque",
                string_data=pulumi.Output.secret(args.wal_s3_keys),
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
            )
        if args.wal_s3 is not None and args.wal_object_store is not None:
            # The plugin reads it when it archives: it need not exist before the Cluster.
            self.object_store = k8s.apiextensions.CustomResource(
                f"{name}-wal-store",
                api_version=OBJECT_STORE_API,
                kind="ObjectStore",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=args.wal_object_store, namespace=args.namespace, labels=instance_labels(name)),
                spec=object_store_spec(args.wal_s3),
                opts=child,
            )

    @property
    def tls_secret(self) -> str | None:
        """The Secret the server's certificate comes from when it is not the operator's: cert-manager's or existing."""
        tls = self._args.tls
        return tls.secret_name(self._name) if tls is not None and (tls.issuer is not None or tls.existing_secret) else None

    @property
    def ca_secret(self) -> str:
        """The Secret whose ca.crt verifies the server (the dump job mounts only that key)."""
        return self.tls_secret or operator_ca_secret(self._name)

    def _cluster(self, outer: list[pulumi.Resource]) -> None:
        name, args = self._name, self._args
        depends = [*outer, self.secret, self.app_secret, self.superuser_secret, *([self.certificate] if self.certificate else [])]
        self.cluster = k8s.apiextensions.CustomResource(
            name,
            api_version=CNPG_API,
            kind="Cluster",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=args.namespace, labels=instance_labels(name)),
            spec=cluster_spec(name, args, self.tls_secret),
            # Deleting a Cluster deletes its claims and the data (the operator owns them): protect refuses it, and
            # retain_on_delete keeps the live Cluster when the stack forgets it (destroy with protect off, engine
            # switch): the runbook adopts it, docs/operations.md#move-to-cloudnative-pg.
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                retain_on_delete=True,
                depends_on=depends,
                # A namespaced object's import id is <namespace>/<name> (pulumi-kubernetes provider/pkg/provider/util.go parseFqName).
                import_=f"{args.namespace}/{name}" if args.adopt else None,
            ),
        )
        meta = k8s.meta.v1.ObjectMetaArgs(name=name, namespace=args.namespace, labels=instance_labels(name))
        self.network_policy = (
            k8s.networking.v1.NetworkPolicy(
                f"{name}-netpol", metadata=meta, spec=network_policy_spec(name, args), opts=pulumi.ResourceOptions(parent=self)
            )
            if args.network_policy
            else None
        )

    def _base_backups(self) -> None:
        """Base backups through the Barman Cloud plugin, on the WAL archive's schedule (a ScheduledBackup)."""
        name, args = self._name, self._args
        if args.wal_object_store is not None and args.wal_backup_schedule is not None:
            # Names the Cluster by name: it is created after it (depends_on), never property-depends on it.
            self.scheduled_backup = k8s.apiextensions.CustomResource(
                f"{name}-wal-backups",
                api_version=CNPG_API,
                kind="ScheduledBackup",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=args.wal_object_store, namespace=args.namespace, labels=instance_labels(name)),
                spec=scheduled_backup_spec(name, args.wal_backup_schedule),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cluster]),
            )

    def _outputs(self, passwords: dict[str, pulumi.Output[str]]) -> None:
        name, args = self._name, self._args
        rw, ro = hosts(name, args.namespace, args.cluster_domain)
        # For the dump job: the namespace, the instance pods' label (its egress), and where to read from, the
        # standbys' Service first (empty with one instance: the dump then tries the next), then the primary's.
        self.namespace = pulumi.Output.from_input(args.namespace)
        self.pod_labels = cluster_labels(name)
        self.replica_hosts: list[pulumi.Output[str]] = [pulumi.Output.from_input(ro), pulumi.Output.from_input(rw)]
        self.host = pulumi.Output.from_input(rw)
        self.read_only_host = pulumi.Output.from_input(ro if args.instances > 1 else None)
        self.port = pulumi.Output.from_input(CNPG_PORT)
        assert args.username is not None
        self.database = pulumi.Output.from_input(args.database)
        self.user = pulumi.Output.from_input(args.username)
        self.secret_name = name_of(self.secret)
        # With tls.enabled the stack's clients verify the server's name and CA, as on the StatefulSet engine.
        query = "?sslmode=verify-full" if args.tls is not None else ""
        uri = pulumi.Output.format(
            "postgresql://{0}:{1}@{2}:{3}/{4}{5}", args.username, passwords["password"], rw, CNPG_PORT, args.database, query
        )
        self.connection_uri = pulumi.Output.secret(uri)
        outputs = ("host", "read_only_host", "port", "database", "user", "secret_name", "connection_uri")
        self.register_outputs({key: getattr(self, key) for key in outputs})
