"""Typed, validated stack settings: the only module that reads ``pulumi.Config``.

Every key lives under the project namespace as an object (``pgstack:postgres``,
``pgstack:storage``, ...). Each object is validated by a pydantic model with
``extra="forbid"`` and strict types, so a typo or a wrong type fails at preview
time with one message naming the key, the value and the accepted form, before
any resource is registered.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

import pulumi
from croniter import croniter
from kubernetes.utils.quantity import parse_quantity
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

PROJECT = "pgstack"

# Image majors whose data layout and entrypoint behaviour we have checked.
SUPPORTED_PG_MAJORS = (16, 17, 18)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_PG_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_TAG = re.compile(r"^(\d+)(\.\d+)?([-.][A-Za-z0-9_.-]+)?$")


class ConfigError(pulumi.RunError):
    """Invalid stack configuration. RunError makes Pulumi print just the message."""


# ---------------------------------------------------------------- validators


def dns_label(max_len: int) -> AfterValidator:
    def check(value: str) -> str:
        if len(value) > max_len or not _DNS_LABEL.match(value):
            raise ValueError(
                f"a DNS-1123 label: lowercase letters, digits and '-', starting and ending "
                f"with a letter or digit, at most {max_len} characters"
            )
        return value

    return AfterValidator(check)


def _dns_subdomain(value: str) -> str:
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise ValueError("a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', at most 253 characters")
    return value


def _pg_identifier(value: str) -> str:
    if not _PG_IDENTIFIER.match(value):
        raise ValueError("a PostgreSQL identifier: lowercase letters, digits and '_', not starting with a digit, at most 63 characters")
    return value


def quantity(value: str) -> Decimal:
    """Parse a Kubernetes quantity (``1Gi``, ``500m``) with the official client's parser."""
    try:
        parsed = parse_quantity(value)  # type: ignore[no-untyped-call]
    except ValueError:
        raise ValueError("a Kubernetes quantity such as 500m, 1, 512Mi or 1Gi (suffixes Ki Mi Gi Ti, k M G T, m)") from None
    return Decimal(parsed)


def _positive_quantity(value: str) -> str:
    if quantity(value) <= 0:
        raise ValueError("a positive Kubernetes quantity such as 500m, 512Mi or 1Gi")
    return value


def _storage_size(value: str) -> str:
    if quantity(value) < 1024**3 / 10 or quantity(value) % 1 != 0:
        raise ValueError("a whole-byte Kubernetes size of at least 100Mi, such as 1Gi or 20Gi (binary suffixes Mi Gi Ti)")
    return value


def _schedule(value: str) -> str:
    # Kubernetes and Longhorn take five-field cron expressions (or @hourly, @daily, ...).
    if not croniter.is_valid(value) or (not value.startswith("@") and len(value.split()) != 5):
        raise ValueError('a five-field cron schedule such as "0 3 * * *" (03:00 daily) or @daily')
    return value


DnsName = Annotated[str, dns_label(63)]
Schedule = Annotated[str, AfterValidator(_schedule)]
DnsSubdomain = Annotated[str, AfterValidator(_dns_subdomain)]
PgIdentifier = Annotated[str, AfterValidator(_pg_identifier)]
Quantity = Annotated[str, AfterValidator(_positive_quantity)]
StorageSize = Annotated[str, AfterValidator(_storage_size)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# ---------------------------------------------------------------- storage


class LonghornSettings(_Model):
    """Longhorn install (helm.v3.Release) and its cluster-wide default settings."""

    install: bool = Field(
        True,
        description="Install Longhorn from this stack; false when another stack (or a platform team) already installed it",
    )
    chartVersion: str = Field("1.10.1", pattern=r"^\d+\.\d+\.\d+$", description="Pinned Longhorn chart version")
    namespace: DnsName = Field("longhorn-system", description="Namespace for the Longhorn release")
    defaultReplicaCount: int = Field(3, ge=1, le=20, description="Longhorn's default replica count for volumes")
    defaultDataLocality: Literal["disabled", "best-effort", "strict-local"] = "disabled"
    nodeDownPodDeletionPolicy: Literal[
        "do-nothing",
        "delete-statefulset-pod",
        "delete-deployment-pod",
        "delete-both-statefulset-and-deployment-pod",
    ] = Field(
        "delete-both-statefulset-and-deployment-pod",
        description="What Longhorn does with pods on a down node; seed 000's reboot recovers faster when it deletes them",
    )
    deleteAllVolumesOnUninstall: bool = Field(
        False,
        description=(
            "Arm Longhorn's deleting-confirmation-flag: uninstalling the release then deletes EVERY Longhorn volume in the "
            "cluster, whatever the reclaim policy. Off: destroy leaves Longhorn and its volumes installed"
        ),
    )


class StorageSettings(_Model):
    """The StorageClass the database volumes use."""

    className: DnsSubdomain = Field("longhorn-postgres", description="Name of the StorageClass we create")
    existingClass: DnsSubdomain | None = Field(None, description="Use this existing class instead of creating className on Longhorn")
    numberOfReplicas: int = Field(3, ge=1, le=20, description="Longhorn replicas of each database volume")
    dataLocality: Literal["disabled", "best-effort", "strict-local"] = "best-effort"
    reclaimPolicy: Literal["Retain", "Delete"] = Field("Retain", description="Retain keeps the volume when a PVC is deleted")


# ---------------------------------------------------------------- postgres


class ImageSettings(_Model):
    repository: str = Field("docker.io/library/postgres", min_length=1, pattern=r"^[a-z0-9][a-z0-9._/:-]*$")
    tag: str = Field("18.1", description="Image tag; its leading number is the PostgreSQL major")
    digest: str | None = Field(None, description="Pin by digest: sha256:<64 hex>")
    pullPolicy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"

    @model_validator(mode="after")
    def _check(self) -> ImageSettings:
        match = _TAG.match(self.tag)
        if not match or int(match.group(1)) not in SUPPORTED_PG_MAJORS:
            raise _FieldError(
                "tag",
                self.tag,
                f"a postgres image tag whose major is one of {', '.join(map(str, SUPPORTED_PG_MAJORS))}, such as 18.1 or 17",
            )
        if self.digest is not None and not _DIGEST.match(self.digest):
            raise _FieldError("digest", self.digest, "sha256: followed by 64 lowercase hex digits")
        return self

    @property
    def major(self) -> int:
        match = _TAG.match(self.tag)
        assert match is not None
        return int(match.group(1))

    @property
    def reference(self) -> str:
        ref = f"{self.repository}:{self.tag}"
        return f"{ref}@{self.digest}" if self.digest else ref


class ResourceAmounts(_Model):
    cpu: Quantity
    memory: Quantity


class ResourceSettings(_Model):
    requests: ResourceAmounts = ResourceAmounts(cpu="1", memory="1Gi")
    limits: ResourceAmounts = ResourceAmounts(cpu="2", memory="1Gi")

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> ResourceSettings:
        for res in ("cpu", "memory"):
            req, lim = getattr(self.requests, res), getattr(self.limits, res)
            if quantity(lim) < quantity(req):
                raise _FieldError(f"limits.{res}", lim, f"a quantity at least requests.{res} ({req})")
        return self


class ServiceSettings(_Model):
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    port: int = Field(5432, ge=1, le=65535)
    nodePort: int | None = Field(None, ge=30000, le=32767, description="Only with type NodePort")

    @model_validator(mode="after")
    def _node_port_needs_type(self) -> ServiceSettings:
        if self.nodePort is not None and self.type != "NodePort":
            raise _FieldError("nodePort", self.nodePort, "unset unless type is NodePort")
        return self


class ReplicationSettings(_Model):
    enabled: bool = Field(True, description="Stream from pod 0 to the other pods whenever replicas > 1")
    user: PgIdentifier = "replicator"
    maxLagBytes: int = Field(16 * 1024 * 1024, ge=0, description="A standby is ready only within this replay lag")
    podAntiAffinity: Literal["soft", "hard"] = "soft"
    primary: Annotated[str, dns_label(63)] | None = Field(
        None, description="Pod that must be the primary; null means <name>-0. Set only by the promotion runbook"
    )


class ClientPeer(_Model):
    """Who may connect: pods matching podLabels in namespaces matching namespaceLabels
    (null: the database's namespace), or an IP range in cidr."""

    podLabels: dict[str, str] = Field(default_factory=dict)
    namespaceLabels: dict[str, str] | None = None
    cidr: str | None = Field(None, pattern=r"^[0-9a-fA-F:.]+/\d{1,3}$")

    @model_validator(mode="after")
    def _one_kind(self) -> ClientPeer:
        if self.cidr is not None and (self.podLabels or self.namespaceLabels is not None):
            raise _FieldError("cidr", self.cidr, "either cidr or podLabels/namespaceLabels in one entry, not both")
        return self


class NetworkPolicySettings(_Model):
    enabled: bool = Field(True, description="Restrict ingress to peers and allowFrom, egress to DNS and peers")
    allowFrom: list[ClientPeer] = Field(default_factory=lambda: [ClientPeer()], description="Default: any pod in the namespace")


class PostgresSettings(_Model):
    """The PostgreSQL StatefulSet."""

    name: Annotated[str, dns_label(40)] = Field("postgres", description="Base name of the StatefulSet and its services")
    replicas: int = Field(1, ge=1, le=15, description="PostgreSQL pods: 1 primary plus replicas-1 hot standbys")
    image: ImageSettings = ImageSettings()
    storageSize: StorageSize = Field("1Gi", description="Volume size of each pod")
    resources: ResourceSettings = ResourceSettings()
    database: PgIdentifier = Field("app", description="Database created for the application user")
    passwordRotation: int = Field(1, ge=1, description="Bump to generate new passwords; the pods roll and apply them")
    username: PgIdentifier | None = Field("app", description="Application role; null for superuser only")
    service: ServiceSettings = ServiceSettings()
    replication: ReplicationSettings = ReplicationSettings()
    shmSize: Quantity = Field("256Mi", description="Size of the memory-backed /dev/shm")
    networkPolicy: NetworkPolicySettings = NetworkPolicySettings()

    @model_validator(mode="after")
    def _roles_and_primary(self) -> PostgresSettings:
        for key, role in (("username", self.username), ("replication.user", self.replication.user)):
            if role is not None and (role == "postgres" or role.startswith("pg_")):
                raise _FieldError(key, role, "a role name other than postgres (the superuser) and not starting with pg_")
        if self.username is not None and self.username == self.replication.user:
            raise _FieldError("username", self.username, f"a role name different from replication.user ({self.replication.user})")
        primary = self.replication.primary
        if primary is not None:
            pods = [f"{self.name}-0"] + [f"{self.name}-standby-{i}" for i in range(1, self.replicas)]
            if primary not in pods or self.replicas == 1 or not self.replication.enabled:
                raise _FieldError("replication.primary", primary, f"null or one of this set's pods with replication on: {', '.join(pods)}")
        return self


# ---------------------------------------------------------------- backups


class LonghornJob(_Model):
    """A Longhorn RecurringJob for the database volumes: when, and how many to keep per volume."""

    schedule: Schedule
    retain: int = Field(ge=1, le=100, description="Snapshots or backups kept per volume")


class DumpSettings(_Model):
    """The logical backup CronJob: pg_dumpall globals plus pg_dump -Fc per database."""

    schedule: Schedule = "30 2 * * *"
    keep: int = Field(7, ge=0, description="Complete dumps kept by count (0: no count rule)")
    keepDays: int = Field(0, ge=0, description="Complete dumps kept by age in days (0: no age rule)")
    storageSize: StorageSize = Field("5Gi", description="The dumps volume; grows in place like the data volumes")
    s3Remote: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$",
        description="bucket/prefix to copy every dump to with rclone; credentials in pgstack:dumpS3 (secret)",
    )

    @model_validator(mode="after")
    def _some_retention(self) -> DumpSettings:
        if self.keep == 0 and self.keepDays == 0:
            raise _FieldError("keep", 0, "at least 1 in keep or keepDays: with neither, dumps would fill their volume")
        return self


class BackupSettings(_Model):
    """Backups: Longhorn snapshots and off-cluster volume backups, and logical dumps. Each is off when null."""

    snapshots: LonghornJob | None = Field(None, description="Crash-consistent Longhorn snapshots, on the volumes' replicas")
    volumeBackups: LonghornJob | None = Field(None, description="Longhorn backups to the cluster's backup target (off-cluster)")
    dumps: DumpSettings | None = Field(None, description="pg_dump CronJob writing to a PVC of its own (and S3)")


# Namespaces a database must never live in: deleting the stack would delete them.
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class Settings(_Model):
    """Everything a stack can set."""

    namespace: DnsName = "postgres"
    protect: bool = Field(True, description="Pulumi protect on every stateful resource: delete and replace are refused")
    longhorn: LonghornSettings = LonghornSettings()
    storage: StorageSettings = StorageSettings()
    postgres: PostgresSettings = PostgresSettings()
    backup: BackupSettings = BackupSettings()

    @model_validator(mode="after")
    def _storage_class_source(self) -> Settings:
        if self.namespace in SYSTEM_NAMESPACES:
            raise _FieldError("namespace", self.namespace, f"a namespace of its own, not one of {', '.join(SYSTEM_NAMESPACES)}")
        if self.namespace == self.longhorn.namespace:
            raise _FieldError(
                "namespace",
                self.namespace,
                f"a namespace other than longhorn.namespace ({self.longhorn.namespace}): the database namespace is "
                "Pod Security restricted, Longhorn's is privileged",
            )
        if self.longhorn.install and self.storage.existingClass is not None:
            raise _FieldError("storage.existingClass", self.storage.existingClass, "unset while longhorn.install is true")
        longhorn_jobs = [k for k in ("snapshots", "volumeBackups") if getattr(self.backup, k) is not None]
        if longhorn_jobs and self.storage.existingClass is not None:
            raise _FieldError(
                f"backup.{longhorn_jobs[0]}",
                "an object",
                "null with storage.existingClass: Longhorn snapshots and backups need the volumes on Longhorn",
            )
        return self

    @property
    def storage_class(self) -> str:
        return self.storage.existingClass or self.storage.className


# Top-level config keys: each is an object under the project namespace.
CONFIG_KEYS: tuple[str, ...] = tuple(Settings.model_fields)


# ---------------------------------------------------------------- secret config

# Keys Longhorn reads from the backup target's Secret (Longhorn docs, "Set up backup target";
# not in the reference files, which hold the chart and the CRDs).
LONGHORN_CREDENTIAL_KEYS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ENDPOINTS",
    "AWS_CERT",
    "VIRTUAL_HOSTED_STYLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "CIFS_USERNAME",
    "CIFS_PASSWORD",
    "AZBLOB_ACCOUNT_NAME",
    "AZBLOB_ACCOUNT_KEY",
    "AZBLOB_ENDPOINT",
    "AZBLOB_CERT",
)


class BackupTargetSecret(_Model):
    """pgstack:backupTarget (secret): the cluster's Longhorn backup target and its credentials."""

    url: str = Field(pattern=r"^(s3|nfs|cifs|azblob)://\S+$")
    credentials: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_keys(self) -> BackupTargetSecret:
        unknown = sorted(set(self.credentials) - set(LONGHORN_CREDENTIAL_KEYS))
        if unknown:
            raise _FieldError(
                f"credentials.{unknown[0]}", "(hidden)", f"one of the keys Longhorn reads: {', '.join(LONGHORN_CREDENTIAL_KEYS)}"
            )
        if self.url.startswith("s3://") and not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(self.credentials):
            raise _FieldError("credentials", "(hidden)", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for an s3:// target")
        return self


class DumpS3Secret(_Model):
    """pgstack:dumpS3 (secret): where rclone copies the dumps (backup.dumps.s3Remote names the bucket)."""

    provider: str = Field("AWS", pattern=r"^[A-Za-z0-9]+$", description="rclone's S3 provider: AWS, Minio, Ceph, Cloudflare, ...")
    accessKeyId: str = Field(min_length=1)
    secretAccessKey: str = Field(min_length=1)
    endpoint: str | None = Field(None, pattern=r"^(https?://)?[A-Za-z0-9.-]+(:\d+)?/?$")
    region: str | None = Field(None, pattern=r"^[a-z0-9-]+$")


class Secrets(_Model):
    """Secret config: plain here, wrapped in pulumi.Output.secret wherever it leaves the program."""

    backupTarget: BackupTargetSecret | None = None
    dumpS3: DumpS3Secret | None = None


SECRET_KEYS: tuple[str, ...] = tuple(Secrets.model_fields)


# ---------------------------------------------------------------- errors


class _FieldError(ValueError):
    """A cross-field error that knows which key it is about."""

    def __init__(self, key: str, value: Any, accepted: str) -> None:
        super().__init__(accepted)
        self.key, self.value, self.accepted = key, value, accepted


def _describe(err: Any, prefix: str) -> str:
    loc = [str(p) for p in err["loc"]]
    ctx_error = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_error, _FieldError):
        return _line(".".join([*loc, ctx_error.key]), ctx_error.value, ctx_error.accepted, prefix)
    value = err.get("input")
    if err["type"] == "missing":
        return f"{prefix}{'.'.join(loc)}: missing; this key is required here"
    if err["type"] in ("dict_type", "model_type", "model_attributes_type"):
        return _line(".".join(loc), value, "an object (a YAML mapping)", prefix)
    if err["type"] == "extra_forbidden":
        return f"{prefix}{'.'.join(loc)}: unknown key (value {_show(value)}); check the spelling against Pulumi.yaml"
    if isinstance(ctx_error, ValueError):
        accepted = str(ctx_error)
    else:
        accepted = err["msg"].replace("Input should be ", "").replace("String should match pattern", "a string matching")
        if err["type"] in _NUMBER_BOUNDS:
            accepted = f"a number {accepted}"
    return _line(".".join(loc), value, accepted, prefix)


_NUMBER_BOUNDS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _line(key: str, value: Any, accepted: str, prefix: str) -> str:
    return f"{prefix}{key}: got {_show(value)}; expected {accepted}"


def _show(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, dict) else "an object"


def parse_settings(raw: dict[str, Any]) -> Settings:
    """Validate raw config objects (top-level key -> value) into Settings or raise ConfigError."""
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        lines = [_describe(err, f"{PROJECT}:") for err in exc.errors()]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


def parse_secrets(raw: dict[str, Any], settings: Settings) -> Secrets:
    """Validate secret config without ever echoing a value: errors name the key and the form only."""
    try:
        secrets = Secrets.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            ctx_error = (err.get("ctx") or {}).get("error")
            key = ".".join([*map(str, err["loc"]), *([ctx_error.key] if isinstance(ctx_error, _FieldError) else [])])
            accepted = ctx_error.accepted if isinstance(ctx_error, _FieldError) else err["msg"].replace("Input should be ", "")
            lines.append(f"{PROJECT}:{key}: invalid (value hidden: secret); expected {accepted}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
    if secrets.backupTarget is not None and not settings.longhorn.install:
        raise ConfigError(
            f"invalid configuration:\n  {PROJECT}:backupTarget: set on a stack that does not install Longhorn; expected it "
            "on the stack with longhorn.install true (the backup target is the cluster's)"
        )
    dumps = settings.backup.dumps
    wants_s3 = dumps is not None and dumps.s3Remote is not None
    if wants_s3 != (secrets.dumpS3 is not None):
        raise ConfigError(
            f"invalid configuration:\n  {PROJECT}:dumpS3: {'missing' if wants_s3 else 'set'} while backup.dumps.s3Remote is "
            f"{'set' if wants_s3 else 'unset'}; expected both or neither"
        )
    return secrets


def load_secrets(settings: Settings) -> Secrets:
    """Read the secret keys; each must have been set with `pulumi config set --secret`."""
    raw: dict[str, Any] = {}
    for key in SECRET_KEYS:
        full = f"{PROJECT}:{key}"
        text = pulumi.runtime.get_config(full)
        if text is None:
            continue
        if not pulumi.runtime.is_config_secret(full):
            raise ConfigError(
                f"invalid configuration:\n  {full}: stored in plain text; expected a secret: "
                f"pulumi config set --secret --path '{key}.<field>' <value>"
            )
        try:
            raw[key] = json.loads(text)
        except json.JSONDecodeError:
            raise ConfigError(f"invalid configuration:\n  {full}: not an object; expected a YAML mapping (value hidden: secret)") from None
    return parse_secrets(raw, settings)


def load_settings() -> Settings:
    """Read every top-level key from the stack's config and validate it."""
    config = pulumi.Config(PROJECT)
    known = set(pulumi.runtime.config.CONFIG.get()) | set(pulumi.runtime.get_config_env())
    allowed = set(CONFIG_KEYS) | set(SECRET_KEYS)
    unknown = sorted(k for k in known if k.startswith(f"{PROJECT}:") and k.split(":", 1)[1] not in allowed)
    if unknown:
        raise ConfigError(f"invalid configuration:\n  {unknown[0]}: unknown key; expected one of {', '.join(sorted(allowed))}")
    raw: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        text = config.get(key)
        if text is None:
            continue
        try:
            raw[key] = json.loads(text)
        except json.JSONDecodeError:
            raw[key] = text  # a bare string such as the namespace name
    return parse_settings(raw)
