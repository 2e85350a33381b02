"""PostgresClusterArgs: the contract of PostgresCluster (components/postgres_cluster.py), field by field.

The CloudNativePG engine: a ``postgresql.cnpg.io/v1`` Cluster that operator 1.30.0 runs. The rules of the
operator's validating webhook that a stack can break are mirrored here, each with its source
(cloudnative-pg/cloudnative-pg at v1.30.0, internal/webhook/v1/cluster_webhook.go, pkg/postgres/configuration.go),
so a bad value is refused at preview, under its YAML key, instead of by the API server during `pulumi up`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import pulumi

from components.naming import DEFAULT_CLUSTER_DOMAIN
from components.network_args import DnsEgress, NetworkPolicyPeer
from components.postgres_args import (
    ALPINE_TAG,
    DEFAULT_LIMITS,
    DEFAULT_REQUESTS,
    MIN_STORAGE,
    ROLE_EXAMPLES,
    SUPPORTED_PG_MAJORS,
    AntiAffinity,
    PullPolicy,
)
from components.postgres_conf import MAX_REPLICAS, image_major, image_tag
from components.postgres_metrics_args import MetricsArgs
from components.postgres_names import MONITOR_ROLE, SUPERUSER
from components.postgres_tls_args import TlsArgs
from components.quantity import quantity, whole_bytes
from components.validation import check_literals, check_name, check_pg_identifier, check_quantity, check_range, check_resources, fail

CNPG_API = "postgresql.cnpg.io/v1"
# The label the operator puts on every instance pod of a Cluster (pkg/utils/labels_annotations.go:79 ClusterLabelName).
CLUSTER_LABEL = "cnpg.io/cluster"
# The instance manager's status port, which the operator calls (pkg/management/url/url.go:79 StatusPort).
STATUS_PORT = 8000
# Every instance listens on 5432 (pkg/postgres/configuration.go:247 ServerPort, a MandatorySetting), and the
# operator's Services <name>-rw, -ro and -r expose that port, type ClusterIP (pkg/specs/services.go:40-149).
CNPG_PORT = 5432
# The instance manager's built-in exporter (pkg/management/url/url.go:34 PostgresMetricsPort, port name "metrics").
CNPG_METRICS_PORT = 9187
# metadata.name: a DNS-1035 label of at most 50 characters (cluster_webhook.go:1839-1857 validateName).
MAX_CLUSTER_NAME = 50
# The role the operator creates for its standbys (api/v1/cluster_types.go:90 StreamingReplicationUser): ours must differ.
STREAMING_REPLICA = "streaming_replica"
# The official Debian images' postgres user; the operator's default is 26 (api/v1/cluster_types.go:93 DefaultPostgresUID).
OFFICIAL_IMAGE_UID = 999

# Parameters the operator fixes or blocks: a Cluster setting one (to another value than its own) is refused by the
# webhook, "Can't set fixed configuration parameter" (cluster_webhook.go:1093-1102 against
# pkg/postgres/configuration.go:487-556 FixedConfigurationParameters, copied here at v1.30.0).
FIXED_PARAMETERS = frozenset(
    {
        "allow_system_table_mods", "archive_mode", "bonjour", "bonjour_name", "cluster_name", "config_file",
        "data_directory", "data_sync_retry", "event_source", "external_pid_file", "hba_file", "hot_standby",
        "ident_file", "jit_provider", "listen_addresses", "logging_collector", "port", "primary_conninfo",
        "primary_slot_name", "recovery_target", "recovery_target_action", "recovery_target_inclusive",
        "recovery_target_lsn", "recovery_target_name", "recovery_target_time", "recovery_target_timeline",
        "recovery_target_xid", "restore_command", "shared_preload_libraries", "temp_tablespaces",
        "unix_socket_directories", "unix_socket_group", "unix_socket_permissions", "archive_cleanup_command",
        "archive_command", "log_destination", "log_directory", "log_file_mode", "log_filename", "log_rotation_age",
        "log_rotation_size", "log_truncate_on_rotation", "pg_failover_slots.primary_dsn",
        "pg_failover_slots.standby_slot_names", "promote_trigger_file", "recovery_end_command",
        "recovery_min_apply_delay", "restart_after_crash", "ssl", "ssl_ca_file", "ssl_cert_file", "ssl_crl_file",
        "ssl_dh_params_file", "ssl_ecdh_curve", "ssl_key_file", "ssl_passphrase_command",
        "ssl_passphrase_command_supports_reload", "ssl_prefer_server_ciphers", "stats_temp_directory",
        "synchronous_standby_names", "synchronized_standby_slots", "syslog_facility", "syslog_ident",
        "syslog_sequence_numbers", "syslog_split_messages",
    }
)  # fmt: skip
# A parameter name the webhook accepts (cluster_webhook.go:1040 postgresParameterNameRegex).
PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?")
# An image tag the operator reads a major from: the major, optionally .minor..., then [-._]anything
# (docs/src/container_images.md "Image Tag Requirements"; cluster_webhook.go:771-808 validateImageName refuses
# latest and a digest without a tag).
CNPG_TAG = re.compile(r"[0-9]+(\.[0-9]+)*([-._][A-Za-z0-9_.-]+)?")

SslMode = Literal["prefer", "require"]
# The external cluster pg_basebackup copies from (bootstrap.pg_basebackup.source).
MIGRATION_SOURCE = "statefulset-primary"


@dataclass(frozen=True)
class MigrateFrom:
    """The running primary of a StatefulSet-engine stack that a new Cluster clones with pg_basebackup
    (bootstrap.pg_basebackup through externalClusters; docs/operations.md#move-to-cloudnative-pg)."""

    host: str
    """The source primary's host, such as postgres-0.postgres-hl.postgres.svc.cluster.local (a DNS subdomain)."""
    password_secret: str
    """A Secret in this Cluster's namespace holding the replication role's password (copied from the source's
    <name>-credentials)."""
    port: int = 5432
    """The source's port."""
    user: str = "replicator"
    """The source's replication role (its postgres.replication.user)."""
    password_key: str = "replication-password"
    """The password's key in password_secret."""
    ssl_mode: SslMode = "prefer"
    """libpq sslmode of the copy: prefer, or require when the source serves TLS."""

    def __post_init__(self) -> None:
        check_literals(self)
        check_name(self, "host", self.host, "subdomain")
        check_name(self, "password_secret", self.password_secret, "subdomain")
        check_range(self, "port", self.port, 1, 65535)
        check_pg_identifier(self, "user", self.user)
        if not re.fullmatch(r"[-._a-zA-Z0-9]+", self.password_key):
            accepted = "a Secret key: letters, digits, '-', '_' and '.'"
            fail(self, "password_key", self.password_key, accepted, examples=("replication-password",))


# backup.wal.s3Remote's form (issue 20: bucket/prefix, no scheme), as the StatefulSet engine's archive takes it.
_S3_REMOTE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")
_S3_URL = re.compile(r"https?://[^\s/]+(/\S*)?")


@dataclass(frozen=True)
class BarmanS3:
    """Where the plugin archives WAL and base backups, and the Secret holding the S3 account."""

    remote: str
    """The bucket and prefix, such as 'backups/orders-db-wal' (the plugin writes s3://<remote>/<cluster>/...)."""
    credentials_secret: str
    """A Secret in the Cluster's namespace with the account's keys."""
    endpoint: str | None = None
    """An S3-compatible endpoint URL (http or https), or None for AWS."""
    access_key_key: str = "access_key_id"
    """The Secret's key with the access key id (pgstack:dumpS3's field names by default)."""
    secret_key_key: str = "secret_access_key"
    """The Secret's key with the secret access key."""

    def __post_init__(self) -> None:
        if not _S3_REMOTE.fullmatch(self.remote) or "//" in self.remote:
            fail(self, "remote", self.remote, "bucket/prefix without a scheme, such as 'backups/orders-db-wal'")
        check_name(self, "credentials_secret", self.credentials_secret, "subdomain")
        if self.endpoint is not None and not _S3_URL.fullmatch(self.endpoint):
            fail(self, "endpoint", self.endpoint, "an http(s) URL such as 'https://s3.example.com:9000'")


@dataclass(frozen=True)
class PostgresClusterArgs:
    """A CloudNativePG Cluster: its image, size, roles, scheduling, TLS, client access and safety switches."""

    namespace: str
    """Namespace of every object (a DNS-1123 label), known: it is part of the hosts and the certificate's names."""
    storage_class: str
    """StorageClass of the instances' claims (a known string)."""
    image: str
    """The official (Debian) postgres image; its tag starts with the major, which the operator reads (no latest)."""
    image_pull_policy: PullPolicy = "IfNotPresent"
    """Always, IfNotPresent or Never (the webhook accepts these only: cluster_webhook.go:812-827)."""
    instances: int = 1
    """Instances, 1 to 15: one primary, the others hot standbys the operator fails over to."""
    storage_size: str = "1Gi"
    """Each instance's volume, a quantity in whole bytes; the operator expands the claims in place."""
    requests: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_REQUESTS))
    """The postgres container's requests: "cpu" and/or "memory" quantities, each at most its limit."""
    limits: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    """limits["memory"] is required: shared_buffers and effective_cache_size are sized from it."""
    database: str = "app"
    """The application database bootstrap creates, owned by username."""
    username: str | None = "app"
    """The application role (the Cluster's initdb owner): the operator always creates one, so None is refused."""
    password_rotation: int = 1
    """Bump (>= 1) for new passwords; the operator's instance manager applies them from the Secrets."""
    anti_affinity: AntiAffinity = "soft"
    """soft: podAntiAffinityType preferred; hard: required (an instance stays Pending without a free node)."""
    protect: bool = True
    """Pulumi protect on the Cluster, its Secrets and passwords' Secret."""
    claim_labels: dict[str, str] = field(default_factory=dict)
    """Labels on every object the operator makes for the Cluster, claims included (Longhorn recurring-job groups)."""
    backup_clients: dict[str, str] | None = None
    """Labels of pods in the namespace that may connect besides allowed_clients: the dump job."""
    network_policy: bool = True
    """Create the NetworkPolicy (ingress from peers, clients and the operator; egress to DNS, peers and the API)."""
    dns: DnsEgress = field(default_factory=DnsEgress)
    """Where the instances may send DNS queries."""
    allowed_clients: tuple[NetworkPolicyPeer, ...] = ()
    """Who may connect on 5432 besides the instances and backup_clients."""
    metrics: MetricsArgs | None = None
    """Who may scrape the operator's exporter (port 9187), and whether a PodMonitor is wanted; None: no scrapers."""
    tls: TlsArgs | None = None
    """The server certificate's source: None or generated, the operator's own CA; cert-manager or an existing
    Secret, certificates.serverTLSSecret. The operator always runs TLS."""
    migrate_from: MigrateFrom | None = None
    """Bootstrap by pg_basebackup from this running primary instead of initdb."""
    wal_object_store: str | None = None
    """The Barman Cloud plugin's ObjectStore (barmancloud.cnpg.io/v1, in this namespace) that archives WAL and base
    backups (pgstack:backup.wal under this engine); None: no archive. The plugin must be installed beside the
    operator (not done by CnpgOperator)."""
    wal_s3: BarmanS3 | None = None
    """Register the ObjectStore wal_object_store names, archiving to this S3 bucket/prefix; None: it exists already."""
    wal_backup_schedule: str | None = None
    """Base backups through the plugin to the ObjectStore on this schedule (a ScheduledBackup; robfig/cron with a
    leading seconds field, or a macro such as @daily); None: none scheduled."""
    wal_s3_keys: pulumi.Input[dict[str, str]] | None = None
    """The S3 account's keys (wal_s3's access_key_key and secret_key_key) for the Secret wal_s3.credentials_secret,
    registered here (protected like the credentials); None: that Secret exists already."""
    adopt: bool = False
    """Take over the live Cluster of this name (Pulumi's import: it was retained when a stack forgot it) instead of
    creating it, which would fail with AlreadyExists (pulumi-kubernetes >= 4.29 creates with Create)."""
    operator_namespace: str = "cnpg-system"
    """The operator's namespace: the NetworkPolicy admits it on the status port and 5432."""
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
    """The cluster's DNS domain, in the hosts and the certificate's names (the operator's default, cluster.local)."""

    def __post_init__(self) -> None:
        check_literals(self)
        check_name(self, "namespace", self.namespace)
        check_name(self, "operator_namespace", self.operator_namespace)
        check_name(self, "storage_class", self.storage_class, "subdomain")
        check_name(self, "cluster_domain", self.cluster_domain, "subdomain")
        self._check_image()
        check_range(self, "instances", self.instances, 1, MAX_REPLICAS)
        check_range(self, "password_rotation", self.password_rotation, 1)
        # cluster_webhook.go:1712-1737 validateStorageConfigurationSize: a size the API server's grammar parses.
        check_quantity(self, "storage_size", self.storage_size, whole=True, minimum=MIN_STORAGE)
        check_resources(self, "requests", self.requests)
        check_resources(self, "limits", self.limits, required=("memory",))
        for key in set(self.requests) & set(self.limits):
            if quantity(self.requests[key]) > quantity(self.limits[key]):
                fail(self, f"limits[{key!r}]", self.limits[key], f"a limit at least requests[{key!r}] ({self.requests[key]})")
        check_pg_identifier(self, "database", self.database)
        self._check_owner()
        if self.wal_object_store is not None:
            check_name(self, "wal_object_store", self.wal_object_store, "subdomain")
        if self.wal_s3 is not None and self.wal_object_store is None:
            fail(self, "wal_s3", self.wal_s3.remote, "None while wal_object_store is None: the ObjectStore needs its name")

    def _check_image(self) -> None:
        tag = image_tag(self.image) or ""
        supported = ", ".join(map(str, SUPPORTED_PG_MAJORS))
        if image_major(self.image) not in SUPPORTED_PG_MAJORS or not CNPG_TAG.fullmatch(tag):
            fail(
                self,
                "image",
                self.image,
                f"a reference whose tag starts with the PostgreSQL major ({supported}), then [-._]suffix at most",
                examples=("postgres:18.1", "postgres:18.1-trixie"),
                why="the operator reads the major from the tag, refuses latest and a bare digest (cluster_webhook.go:771-808)",
            )
        if ALPINE_TAG.search(tag):
            fail(
                self,
                "image",
                self.image,
                "a Debian-based tag",
                examples=("postgres:18.1",),
                why=f"the Cluster runs the official image's postgres user, uid {OFFICIAL_IMAGE_UID} (postgresUID/postgresGID)",
            )

    def _check_owner(self) -> None:
        if self.username is None:
            fail(
                self,
                "username",
                None,
                "an application role: the operator always creates the database's owner (bootstrap initdb)",
                examples=ROLE_EXAMPLES,
            )
            return
        check_pg_identifier(self, "username", self.username)
        reserved = (SUPERUSER, MONITOR_ROLE, STREAMING_REPLICA)
        if self.username in reserved or self.username.startswith(("pg_", "cnpg_")):
            accepted = f"a role name other than {', '.join(reserved)}, not starting with pg_ or cnpg_ (the operator's roles)"
            fail(self, "username", self.username, accepted, examples=ROLE_EXAMPLES)

    def check_component_name(self, name: str) -> None:
        """The Cluster's name: a DNS-1035 label of at most 50 characters (cluster_webhook.go:1839-1857)."""
        check_name(self, "<component name>", name, "dns1035", max_len=MAX_CLUSTER_NAME)

    @property
    def memory_limit_bytes(self) -> int:
        return whole_bytes(self.limits["memory"])

    @property
    def storage_bytes(self) -> int:
        return whole_bytes(self.storage_size)
