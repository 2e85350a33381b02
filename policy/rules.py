"""The pgstack policy rules: what `pulumi preview --policy-pack policy` refuses or warns about.

Every rule is a pulumi_policy ResourceValidationPolicy whose validate function reads
`args.props` (the resource's inputs, camelCase as the engine sends them) through the
unknown-checking proxy the policy runtime wraps them in. The pack itself is built in
`__main__.py`; tests import this module only (building a PolicyPack starts a gRPC server).

Production-only rules read the policy config key `productionStacks` (default ["prod"]),
set per policy the pulumi-policy way (`pulumi preview --policy-pack-config <file>`). The repository's
list is policy/config.json: bin/up, bin/policy (offline.py) and the workflows pass it, and deploy.yml
holds the stacks it lists for approval.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

STATEFULSET = "kubernetes:apps/v1:StatefulSet"
CRONJOB = "kubernetes:batch/v1:CronJob"
# Every workload kind whose pods we could run; this program registers StatefulSets and CronJobs.
POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    STATEFULSET: ("spec", "template", "spec"),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    CRONJOB: ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:core/v1:Pod": ("spec",),
}
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
STORAGECLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
CLAIM_TYPES = ("kubernetes:core/v1:PersistentVolumeClaim", "kubernetes:core/v1:PersistentVolumeClaimPatch")
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
NAMESPACE = "kubernetes:core/v1:Namespace"
SECRET = "kubernetes:core/v1:Secret"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
# The CloudNativePG engine's database (components/postgres_cluster.py): the operator builds its pods from this spec,
# so each pod rule below reads the Cluster's equivalent field, or says why it has none.
CLUSTER = "kubernetes:postgresql.cnpg.io/v1:Cluster"
LONGHORN_PROVISIONER = "driver.longhorn.io"

# What `pgstack:protect` guards (Pulumi.yaml): losing any of these loses data or access to it.
# Not the RandomPasswords: the Secret holds the passwords, and replacing a RandomPassword (a rotation,
# create-before-delete) only makes a new one that the pods apply (docs/operations.md#changing-a-live-stack).
STATEFUL_TYPES = (STATEFULSET, CLUSTER, SECRET, STORAGECLASS, NAMESPACE, HELM_RELEASE)

DEFAULT_PRODUCTION_STACKS = ["prod"]
PRODUCTION_SCHEMA = PolicyConfigSchema(
    properties={
        "productionStacks": {
            "type": "array",
            "items": {"type": "string"},
            "default": DEFAULT_PRODUCTION_STACKS,
            "description": "Stacks held to the production rules (protect, image digest, Longhorn replicas >= 2, TLS, WAL archiving).",
        },
    },
)

# ------------------------------------------------------------------ helpers


def _get(obj: Any, *path: str | int) -> Any:
    """obj[path...] or None; an unknown value (preview) raises UnknownValueError as the runtime expects."""
    for key in path:
        if isinstance(key, int):
            if not isinstance(obj, Sequence) or isinstance(obj, str) or key >= len(obj):
                return None
        elif not isinstance(obj, Mapping) or key not in obj:
            return None
        obj = obj[key]
    return obj


def _items(obj: Any) -> list[Any]:
    """A list input as a list; absent or not a list: empty."""
    if isinstance(obj, Sequence) and not isinstance(obj, str):
        return [obj[i] for i in range(len(obj))]
    return []


def _strings(obj: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every (path, string) under obj, skipping values unknown during preview."""
    if isinstance(obj, str):
        yield path, obj
    elif isinstance(obj, Mapping):
        for key in list(obj):
            try:
                value = obj[key]
            except UnknownValueError:
                continue
            yield from _strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(obj, Sequence):
        for i in range(len(obj)):
            try:
                value = obj[i]
            except UnknownValueError:
                continue
            yield from _strings(value, f"{path}[{i}]")


def pod_spec(args: ResourceValidationArgs) -> Any:
    path = POD_TEMPLATE_PATHS.get(args.resource_type)
    return None if path is None else _get(args.props, *path)


def containers(spec: Any) -> list[Any]:
    """Init, regular and ephemeral containers of a pod spec."""
    return [c for key in ("initContainers", "containers", "ephemeralContainers") for c in _items(_get(spec, key))]


def stack_of(urn: str) -> str:
    """urn:pulumi:<stack>::<project>::<type>::<name> -> <stack>."""
    return urn.split("::", 1)[0].removeprefix("urn:pulumi:")


def is_production(args: ResourceValidationArgs) -> bool:
    stacks = args.get_config().get("productionStacks", DEFAULT_PRODUCTION_STACKS)
    return stack_of(args.urn) in list(stacks)


def _as_int(value: Any) -> int | None:
    try:
        return int(float(str(value)))
    except ValueError:
        return None


def _true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


# ------------------------------------------------------------------ mandatory rules

# A pg_hba line whose method is trust (written literally or echoed by a script), initdb's --auth flags, -A trust.
HBA_TRUST = re.compile(r"\b(?:local|host|hostssl|hostnossl|hostgssenc|hostnogssenc)[ \t]+[^\n#]*?(?<![\w-])trust(?![\w-])")
INITDB_TRUST = re.compile(r"--auth(?:-host|-local)?[= ]trust\b|(?:^|\s)-A\s*trust\b")
HOST_AUTH_TRUST = re.compile(r"POSTGRES_HOST_AUTH_METHOD\s*[=:]\s*[\"']?trust\b", re.IGNORECASE)


def no_trust_auth(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every string of every resource: a Cluster's spec.postgresql.pg_hba lines are read like a script's."""
    if args.resource_type == RANDOM_PASSWORD:
        return
    for container in containers(pod_spec(args)):
        for env in _items(_get(container, "env")):
            if _get(env, "name") == "POSTGRES_HOST_AUTH_METHOD" and str(_get(env, "value")).strip().lower() == "trust":
                report_violation(
                    f"container {_get(container, 'name')}: POSTGRES_HOST_AUTH_METHOD=trust lets anyone log in without a password"
                )
    for path, text in _strings(args.props):
        if HOST_AUTH_TRUST.search(text) or INITDB_TRUST.search(text) or HBA_TRUST.search(text):
            report_violation(f"{path}: a trust authentication line; use scram-sha-256 (or peer for local sockets)")


PASSWORD_NAME = re.compile(r"pass(?:word|wd)|pgpass|(?:^|_)PASS(?:$|_)", re.IGNORECASE)
# Env names that hold a path to a password, not a password.
PATH_SUFFIXES = ("_FILE", "_DIR", "_PATH")
# ConfigMap keys that are scripts (sync-passwords.sh): their text is checked for assignments instead.
SCRIPT_KEY = re.compile(r"\.(?:sh|bash|py|sql)$")


def _env_holders(args: ResourceValidationArgs) -> list[Any]:
    """What holds env vars: each container of a pod template, or a Cluster's spec (spec.env reaches every instance)."""
    if args.resource_type == CLUSTER:
        return [{"name": f"Cluster {args.name}", "env": _get(args.props, "spec", "env")}]
    return containers(pod_spec(args))


def passwords_from_secrets(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for container in _env_holders(args):
        for env in _items(_get(container, "env")):
            name = str(_get(env, "name") or "")
            if PASSWORD_NAME.search(name) and not name.endswith(PATH_SUFFIXES) and _get(env, "value") is not None:
                report_violation(
                    f"container {_get(container, 'name')}: env {name} is a literal; read it from a Secret "
                    "(valueFrom.secretKeyRef, or a mounted file with *_FILE)"
                )
    if args.resource_type == CONFIGMAP:
        for key in ("data", "binaryData"):
            for name in list(_get(args.props, key) or {}):
                if PASSWORD_NAME.search(name) and not SCRIPT_KEY.search(name):
                    report_violation(f"ConfigMap key {key}.{name}: passwords belong in a Secret, never a ConfigMap")
        for path, text in _strings(_get(args.props, "data")):
            if re.search(r"\bPG(?:PASSWORD|_PASSWORD)\s*=|POSTGRES_PASSWORD\s*=\s*\S", text):
                report_violation(f"ConfigMap {path}: assigns a PostgreSQL password; passwords belong in a Secret")


def _claim_names(args: ResourceValidationArgs, spec: Any) -> set[str]:
    names = {str(_get(t, "metadata", "name")) for t in _items(_get(args.props, "spec", "volumeClaimTemplates"))}
    names |= {str(_get(v, "name")) for v in _items(_get(spec, "volumes")) if _get(v, "persistentVolumeClaim") is not None}
    return names


def pgdata_subdirectory(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """A Cluster has no equivalent: the operator fixes PGDATA at /var/lib/postgresql/data/pgdata, inside the volume
    it mounts at /var/lib/postgresql/data (cloudnative-pg v1.30.0 pkg/specs/pods.go:85 PgDataPath)."""
    spec = pod_spec(args)
    claims = _claim_names(args, spec)
    for container in containers(spec):
        pgdata = next((_get(e, "value") for e in _items(_get(container, "env")) if _get(e, "name") == "PGDATA"), None)
        if not isinstance(pgdata, str):
            continue
        pgdata = pgdata.rstrip("/")
        mounts = [(str(_get(m, "name")), str(_get(m, "mountPath")).rstrip("/")) for m in _items(_get(container, "volumeMounts"))]
        name = _get(container, "name")
        if any(path == pgdata for _, path in mounts):
            report_violation(f"container {name}: PGDATA {pgdata} is a mount point; initdb refuses a volume root (lost+found)")
        data_mounts = [path for volume, path in mounts if volume in claims]
        if data_mounts and not any(pgdata.startswith(path + "/") for path in data_mounts):
            report_violation(
                f"container {name}: PGDATA {pgdata} is not inside its data volume ({', '.join(data_mounts)}): the data would not persist"
            )


def requests_and_limits(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """A Cluster's spec.resources are its postgres container's."""
    holders = containers(pod_spec(args))
    if args.resource_type == CLUSTER:
        holders = [{"name": f"Cluster {args.name}", "resources": _get(args.props, "spec", "resources")}]
    for container in holders:
        for kind in ("requests", "limits"):
            given = _get(container, "resources", kind) or {}
            missing = [r for r in ("cpu", "memory") if r not in given]
            if missing:
                report_violation(f"container {_get(container, 'name')}: resources.{kind} lacks {', '.join(missing)}")


def claim_templates_have_class(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == STATEFULSET:
        for template in _items(_get(args.props, "spec", "volumeClaimTemplates")):
            if not _get(template, "spec", "storageClassName"):
                report_violation(
                    f"volumeClaimTemplate {_get(template, 'metadata', 'name')}: no storageClassName, so the cluster default "
                    "class (reclaim policy Delete, unknown replication) would hold the database"
                )
    elif args.resource_type in CLAIM_TYPES and not _get(args.props, "spec", "storageClassName"):
        report_violation("PersistentVolumeClaim without storageClassName: the cluster default class would hold the data")
    elif args.resource_type == CLUSTER:
        for key in ("storage", "walStorage"):
            given = _get(args.props, "spec", key)
            if (key == "storage" or given is not None) and not _get(given, "storageClass"):
                report_violation(f"Cluster spec.{key} has no storageClass, so the cluster default class would hold the database")


def pvc_retention_retain(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """A Cluster has no retention field: it owns its claims, and deleting it deletes them. What guards them is the
    Cluster's own fate: protect (production-protect, and stateful-unguarded's warning: it is in STATEFUL_TYPES) and
    retain-on-delete, which the program always sets but the analyzer cannot see (pulumi-policy 1.21.0
    PolicyResourceOptions carries protect, not retainOnDelete)."""
    if args.resource_type != STATEFULSET:
        return
    policy = _get(args.props, "spec", "persistentVolumeClaimRetentionPolicy") or {}
    for when in ("whenDeleted", "whenScaled"):
        # Kubernetes defaults both to Retain; only an explicit Delete is refused.
        if when in policy and policy[when] != "Retain":
            report_violation(
                f"persistentVolumeClaimRetentionPolicy.{when} is {policy[when]}: deleting or scaling down would delete the volumes"
            )


def storage_class_retain(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == STORAGECLASS and _get(args.props, "reclaimPolicy") != "Retain":
        report_violation(
            f"StorageClass reclaimPolicy is {_get(args.props, 'reclaimPolicy') or 'unset (Delete)'}: "
            "a deleted claim would delete the database volume; use Retain"
        )


def spread_when_replicated(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == CLUSTER:
        # The operator's anti-affinity is on unless enablePodAntiAffinity is false (api/v1 AffinityConfiguration).
        instances = _as_int(_get(args.props, "spec", "instances") or 1) or 0
        spread = _items(_get(args.props, "spec", "topologySpreadConstraints"))
        if instances > 1 and _get(args.props, "spec", "affinity", "enablePodAntiAffinity") is False and not spread:
            report_violation(f"{instances} instances with enablePodAntiAffinity false and no topologySpreadConstraints")
        return
    if args.resource_type not in (STATEFULSET, "kubernetes:apps/v1:Deployment"):
        return
    replicas = _as_int(_get(args.props, "spec", "replicas") or 1) or 0
    spec = pod_spec(args)
    if replicas > 1 and not _get(spec, "affinity", "podAntiAffinity") and not _items(_get(spec, "topologySpreadConstraints")):
        report_violation(f"{replicas} pods without podAntiAffinity or topologySpreadConstraints: one node failure can take them all")


ALLOWED_CAPABILITIES = {"NET_BIND_SERVICE"}


def _cluster_security(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """The operator's pods meet the restricted profile (its default container context: seccomp RuntimeDefault, drop ALL,
    not privileged, runAsNonRoot, read-only root, no privilege escalation: cloudnative-pg v1.30.0
    pkg/specs/containers.go:63-80) unless the Cluster overrides their security contexts (spec.securityContext,
    spec.podSecurityContext, merged over those defaults) or runs postgres as root (postgresUID 0)."""
    sc = _get(args.props, "spec", "securityContext") or {}
    pod = _get(args.props, "spec", "podSecurityContext") or {}
    if _true(_get(sc, "privileged")) or _true(_get(sc, "allowPrivilegeEscalation")):
        report_violation(f"Cluster {args.name}: spec.securityContext allows privilege")
    if _get(pod, "runAsNonRoot") is False or 0 in (_as_int(_get(pod, "runAsUser")), _as_int(_get(args.props, "spec", "postgresUID"))):
        report_violation(f"Cluster {args.name}: its pods would run as root")


def restricted_security_context(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Pod Security Standards, restricted profile (kubernetes.io/docs/concepts/security/pod-security-standards)."""
    if args.resource_type == CLUSTER:
        _cluster_security(args, report_violation)
        return
    spec = pod_spec(args)
    if spec is None:
        return
    pod = _get(spec, "securityContext") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if _true(_get(spec, key)):
            report_violation(f"pod spec sets {key}")
    for volume in _items(_get(spec, "volumes")):
        if _get(volume, "hostPath") is not None:
            report_violation(f"volume {_get(volume, 'name')} is a hostPath")
    for container in containers(spec):
        name = _get(container, "name")
        sc = _get(container, "securityContext") or {}
        if _true(_get(sc, "privileged")):
            report_violation(f"container {name}: privileged")
        if _get(sc, "allowPrivilegeEscalation") is not False:
            report_violation(f"container {name}: allowPrivilegeEscalation must be false")
        drop = [str(c) for c in _items(_get(sc, "capabilities", "drop"))]
        if "ALL" not in drop:
            report_violation(f"container {name}: capabilities.drop must include ALL")
        added = {str(c) for c in _items(_get(sc, "capabilities", "add"))} - ALLOWED_CAPABILITIES
        if added:
            report_violation(f"container {name}: capabilities.add {sorted(added)} (only NET_BIND_SERVICE is allowed)")
        non_root = _get(sc, "runAsNonRoot")
        if non_root is not True and not (non_root is None and _get(pod, "runAsNonRoot") is True):
            report_violation(f"container {name}: runAsNonRoot must be true (container or pod)")
        user = _get(sc, "runAsUser") if _get(sc, "runAsUser") is not None else _get(pod, "runAsUser")
        if user is not None and _as_int(user) == 0:
            report_violation(f"container {name}: runAsUser 0")
        seccomp = _get(sc, "seccompProfile", "type") or _get(pod, "seccompProfile", "type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            report_violation(f"container {name}: seccompProfile.type must be RuntimeDefault or Localhost (container or pod)")
        for port in _items(_get(container, "ports")):
            if _as_int(_get(port, "hostPort") or 0):
                report_violation(f"container {name}: hostPort {_get(port, 'hostPort')}")


def _is_longhorn_release(args: ResourceValidationArgs) -> bool:
    return args.resource_type == HELM_RELEASE and _get(args.props, "chart") == "longhorn"


def uninstall_confirmation(stack: str, namespace: str, release: str) -> str:
    """The sentence an armed release must carry as its description; stacks/config/runbooks.py uninstall_confirmation
    builds the same one for longhorn.uninstallConfirmation (tests/policy pins that they agree)."""
    return f"{stack}: no other stack uses {namespace}/{release}; delete every Longhorn volume in this cluster"


def longhorn_uninstall_disarmed(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every stack: an armed uninstall deletes every Longhorn volume in the cluster, other stacks' included."""
    if not _is_longhorn_release(args):
        return
    flag = _get(args.props, "values", "defaultSettings", "deletingConfirmationFlag")
    if not _true(flag):
        return
    if args.opts.protect or is_production(args):
        report_violation(
            "Longhorn defaultSettings.deletingConfirmationFlag is true in a protected stack: uninstalling the release "
            "would delete every Longhorn volume in the cluster"
        )
    expected = uninstall_confirmation(stack_of(args.urn), str(_get(args.props, "namespace")), str(_get(args.props, "name")))
    if _get(args.props, "description") != expected:
        report_violation(
            "Longhorn defaultSettings.deletingConfirmationFlag is true without this stack's confirmation: uninstalling "
            "the release would delete every Longhorn volume in the cluster, other stacks' included. Once no other stack "
            f"uses it, set pgstack:longhorn.uninstallConfirmation to {expected!r} (the release's description)"
        )


# ------------------------------------------------------------------ production rules


def production_longhorn_replicas(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if not is_production(args):
        return
    if args.resource_type == STORAGECLASS and _get(args.props, "provisioner") == LONGHORN_PROVISIONER:
        count = _as_int(_get(args.props, "parameters", "numberOfReplicas"))
        if count is None or count < 2:
            report_violation(f"Longhorn StorageClass numberOfReplicas is {count}: production needs at least 2 copies of each volume")
    if _is_longhorn_release(args):
        for path in (("defaultSettings", "defaultReplicaCount"), ("persistence", "defaultClassReplicaCount")):
            value = _get(args.props, "values", *path)
            if value is not None and (_as_int(value) or 0) < 2:
                report_violation(f"Longhorn values.{'.'.join(path)} is {value}: production needs at least 2")


def production_protect(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if is_production(args) and args.resource_type in STATEFUL_TYPES and not args.opts.protect:
        report_violation(f"{args.resource_type} {args.name} holds state and is not protected (pgstack:protect true)")


DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def production_image_digest(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if not is_production(args):
        return
    if args.resource_type == CLUSTER and not DIGEST.search(str(_get(args.props, "spec", "imageName"))):
        image = _get(args.props, "spec", "imageName")
        report_violation(f"Cluster {args.name}: imageName {image} is not pinned by digest (pgstack:postgres.image.digest)")
    for container in containers(pod_spec(args)):
        image = str(_get(container, "image"))
        if not DIGEST.search(image):
            report_violation(f"container {_get(container, 'name')}: image {image} is not pinned by digest (pgstack:postgres.image.digest)")


def _env_value(container: Any, name: str) -> Any:
    for var in _items(_get(container, "env")):
        if _get(var, "name") == name:
            return _get(var, "value")
    return None


# The pg_hba lines of a Cluster that refuse connections without TLS (components/postgres_cluster_spec.py hba_rules).
NO_TLS_REJECTED = ("hostnossl all all 0.0.0.0/0 reject", "hostnossl all all ::/0 reject")


def production_tls(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """The database server serves TLS (ssl=on on its command line: components/postgres_conf.py tls_parameters) and
    refuses connections without it (TLS_REQUIRED, which the pods turn into hostnossl ... reject): pgstack:tls.
    A Cluster always serves TLS (ssl is the operator's, pkg/postgres/configuration.go MandatorySettings); it refuses
    connections without it through its pg_hba lines."""
    if is_production(args) and args.resource_type == CLUSTER:
        hba = [" ".join(str(line).split()) for line in _items(_get(args.props, "spec", "postgresql", "pg_hba"))]
        if not all(line in hba for line in NO_TLS_REJECTED):
            report_violation("the Cluster accepts connections without TLS: production needs pgstack:tls.required true")
        return
    if not is_production(args) or args.resource_type != STATEFULSET:
        return
    for container in containers(pod_spec(args)):
        if _get(container, "name") != "postgres":
            continue
        if "ssl=on" not in [str(a) for a in _items(_get(container, "args"))]:
            report_violation("the postgres server runs without TLS (ssl=on): production needs pgstack:tls.enabled true")
        if not _true(_env_value(container, "TLS_REQUIRED")):
            report_violation("the postgres server accepts connections without TLS: production needs pgstack:tls.required true")


def production_wal_archiving(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """The database server archives its WAL (archive_mode=on with an archive_command, and WAL_TARGET, where
    wal-archive.sh stores it: components/wal_pod.py archive_parameters): pgstack:backup.wal, with the S3 account
    pgstack:dumpS3 set (without it the program leaves archiving off). The CloudNativePG engine archives through
    its own plugin, not checked here."""
    if not is_production(args) or args.resource_type != STATEFULSET:
        return
    for container in containers(pod_spec(args)):
        if _get(container, "name") != "postgres":
            continue
        argv = [str(a) for a in _items(_get(container, "args"))]
        command = any(a.startswith("archive_command=") and a != "archive_command=" for a in argv)
        if "archive_mode=on" not in argv or not command or not _env_value(container, "WAL_TARGET"):
            report_violation(
                "the postgres server does not archive its WAL: production needs pgstack:backup.wal (point-in-time recovery) "
                "and its S3 account pgstack:dumpS3"
            )


# ------------------------------------------------------------------ advisory


def stateful_unguarded(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """The analyzer sees only the new inputs (AnalyzeRequest: type, properties, urn, name, options, provider),
    never the old state or the planned step, so it cannot tell a replacement apart. It warns instead about
    what a replacement would destroy unchecked: a stateful resource without protect."""
    if args.resource_type in STATEFUL_TYPES and not args.opts.protect:
        report_violation(
            f"{args.resource_type} {args.name} holds state and is not protected: a change that replaces it "
            "(pulumi preview shows +-/replace) would delete it without asking"
        )


def _policy(
    name: str, description: str, validate: Any, level: EnforcementLevel = EnforcementLevel.MANDATORY, production: bool = False
) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=level,
        config_schema=PRODUCTION_SCHEMA if production else None,
    )


POLICIES: list[ResourceValidationPolicy] = [
    _policy(
        "no-trust-auth", "PostgreSQL never authenticates with trust (POSTGRES_HOST_AUTH_METHOD, pg_hba, initdb --auth).", no_trust_auth
    ),
    _policy(
        "passwords-from-secrets", "PostgreSQL passwords come only from Secrets: no env literals, no ConfigMap keys.", passwords_from_secrets
    ),
    _policy("pgdata-subdirectory", "PGDATA is a subdirectory of the data volume, never its mount point.", pgdata_subdirectory),
    _policy("requests-and-limits", "Every container sets cpu and memory requests and limits.", requests_and_limits),
    _policy("claim-storage-class", "Every volume claim template and claim names its StorageClass.", claim_templates_have_class),
    _policy("pvc-retention-retain", "StatefulSet PVC retention is Retain when deleted and when scaled.", pvc_retention_retain),
    _policy("storage-class-retain", "The database StorageClass has reclaimPolicy Retain.", storage_class_retain),
    _policy("spread-replicas", "More than one pod needs pod anti-affinity or a topology spread constraint.", spread_when_replicated),
    _policy("restricted-security-context", "Pods meet the restricted Pod Security Standard.", restricted_security_context),
    _policy(
        "longhorn-uninstall-disarmed",
        "Longhorn's deletingConfirmationFlag stays false in a protected stack, and is armed elsewhere only with the stack's confirmation.",
        longhorn_uninstall_disarmed,
        production=True,
    ),
    _policy(
        "production-longhorn-replicas",
        "Production keeps at least 2 Longhorn replicas of each volume.",
        production_longhorn_replicas,
        production=True,
    ),
    _policy("production-protect", "Production protects every stateful resource.", production_protect, production=True),
    _policy("production-image-digest", "Production pins every image by digest.", production_image_digest, production=True),
    _policy("production-tls", "Production serves TLS on every connection and requires it.", production_tls, production=True),
    _policy(
        "production-wal-archiving",
        "Production archives its WAL continuously (point-in-time recovery).",
        production_wal_archiving,
        production=True,
    ),
    _policy(
        "stateful-unguarded",
        "Advisory: a stateful resource without protect would be deleted by a replacement without asking.",
        stateful_unguarded,
        level=EnforcementLevel.ADVISORY,
    ),
]
