"""The names, ports, labels and DNS of one PostgreSQL set: the one place these rules are written.

Pod 0 of StatefulSet ``<name>`` is the primary. With replication the standbys run in
StatefulSet ``<name>-standby`` with ordinals from 1, so their pods are ``<name>-standby-<n>``.
Every pod's data claim is ``data-<pod>``. The components, the settings (name-length checks,
the primary's allowed values) and the verification tool all derive names from here.
"""

from __future__ import annotations

from typing import Literal

from components.naming import DEFAULT_CLUSTER_DOMAIN, pod_dns

Role = Literal["primary", "standby"]

# The claim template's name: the StatefulSet controller names each pod's claim <volume>-<pod>.
DATA_VOLUME = "data"
FIRST_STANDBY_ORDINAL = 1
# The server's port in every pod: the container port, the probes' and the NetworkPolicies' port.
CONTAINER_PORT = 5432
# The superuser initdb creates (the official image's default); no other role may take its name.
SUPERUSER = "postgres"
# The metrics exporter's role (pg_monitor, peer over the socket only: init-managed-conf.sh, pod-roles.sh);
# reserved like the superuser's name: no configured role may take it.
MONITOR_ROLE = "pgstack_monitor"


def standby_set(name: str) -> str:
    """The standby StatefulSet: ``<name>-standby``."""
    return f"{name}-standby"


def pod_name(statefulset: str, ordinal: int) -> str:
    """A StatefulSet pod's name: ``<statefulset>-<ordinal>``."""
    return f"{statefulset}-{ordinal}"


def standby_pod(name: str, ordinal: int) -> str:
    """A standby pod: ``<name>-standby-<ordinal>`` (ordinals from 1)."""
    return pod_name(standby_set(name), ordinal)


def primary_pod_name(name: str, primary_pod: str | None = None) -> str:
    """The pod that must be the primary: ``primary_pod`` (set by the promotion runbook) or ``<name>-0``."""
    return primary_pod or pod_name(name, 0)


def statefulsets(name: str, replicas: int, replication: bool) -> list[tuple[str, Role, int, int]]:
    """(StatefulSet, role, replicas, first ordinal), the primary's first.

    With replication the standby set exists even with no standby (0 replicas), so scaling
    the standbys never touches the primary's set; without it, one set of unrelated pods.
    """
    if not replication:
        return [(name, "primary", replicas, 0)]
    return [(name, "primary", 1, 0), (standby_set(name), "standby", replicas - 1, FIRST_STANDBY_ORDINAL)]


def pod_names(name: str, replicas: int, replication: bool) -> list[str]:
    """Every pod of the set: <name>-0 then, with replication, the standbys <name>-standby-1.. (ordinals from 1)."""
    return [pod_name(sts, first + i) for sts, _, count, first in statefulsets(name, replicas, replication) for i in range(count)]


def claim_name(pod: str) -> str:
    """A pod's data claim: ``data-<pod>``."""
    return f"{DATA_VOLUME}-{pod}"


def headless_service(name: str) -> str:
    """The governing Service (stable pod DNS); the read-write client Service is ``<name>`` itself."""
    return f"{name}-hl"


def read_only_service(name: str) -> str:
    """The standbys' client Service."""
    return f"{name}-ro"


def scripts_config_map(name: str) -> str:
    """The pods' scripts ConfigMap. The pods name it as this known string, never as the ConfigMap's
    output: an output would make the StatefulSets' spec property-depend on it (tools/changes.py)."""
    return f"{name}-scripts"


def credentials_secret(name: str) -> str:
    """The passwords Secret, referred to by this known string for the same reason."""
    return f"{name}-credentials"


def tls_secret(name: str) -> str:
    """The TLS Secret (kubernetes.io/tls: tls.crt, tls.key, ca.crt) the pods mount, generated or written by
    cert-manager: ``<name>-tls``, a known string like the others."""
    return f"{name}-tls"


def backup_job(name: str) -> str:
    """The dump CronJob and its NetworkPolicy (components/logical_backup.py): ``<name>-backup``."""
    return f"{name}-backup"


def set_holding(name: str, replicas: int, replication: bool, primary_pod: str | None) -> str:
    """The StatefulSet that runs the configured primary: ``<name>`` unless the promotion runbook
    moved the primary to a standby-set pod."""
    primary = primary_pod_name(name, primary_pod)
    for sts, _, count, first in statefulsets(name, replicas, replication):
        if primary in (pod_name(sts, first + i) for i in range(count)):
            return sts
    return name


def pod_host(name: str, pod: str, namespace: str, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN) -> str:
    """A pod's stable DNS name through the set's headless Service."""
    return pod_dns(pod, headless_service(name), namespace, cluster_domain)


def instance_labels(name: str) -> dict[str, str]:
    """Every pod, claim and object of the set: the selector of the PDB, peers and anti-affinity."""
    return {"app.kubernetes.io/name": "postgresql", "app.kubernetes.io/instance": name}


def role_labels(name: str, role: Role) -> dict[str, str]:
    return instance_labels(name) | {"app.kubernetes.io/component": role}


def primary_selector(name: str, primary_pod: str) -> dict[str, str]:
    """Read-write Service: only the primary pod (pod 0 unless the promotion runbook moved it)."""
    return instance_labels(name) | {"statefulset.kubernetes.io/pod-name": primary_pod}


def dumps_claim(name: str) -> str:
    """The dump job's volume claim: ``<name>-dumps``."""
    return f"{name}-dumps"


def dumps_s3_secret(name: str) -> str:
    """The dump job's S3 credentials Secret: ``<name>-dumps-s3``."""
    return f"{name}-dumps-s3"


def wal_job(name: str) -> str:
    """The base-backup CronJob, its ServiceAccount and NetworkPolicy (components/wal_backup.py): ``<name>-wal``."""
    return f"{name}-wal"


def wal_s3_secret(name: str) -> str:
    """The WAL archive's S3 credentials Secret (rclone's remote WAL), read by the pods and the base-backup job:
    ``<name>-wal-s3``."""
    return f"{name}-wal-s3"


# Why each kind of object limits the names made from the set's name: (length limit, reason).
_STATEFULSET = (
    52,
    "a StatefulSet name can have at most 52 characters: the controller labels every pod controller-revision-hash="
    "<StatefulSet name>-<hash of up to 10 characters> (kubernetes pkg/controller/history ControllerRevisionName), "
    "and a label value has at most 63",
)
_POD = (63, "a StatefulSet pod's name is its hostname, a DNS-1123 label of at most 63 characters")
_SERVICE = (63, "a Service name is a DNS-1035 label of at most 63 characters")
_CRONJOB = (52, "Kubernetes refuses a CronJob name over 52 characters: each Job's name adds 11 (pkg/apis/batch/validation)")
_SUBDOMAIN = (253, "a DNS-1123 subdomain of at most 253 characters")


def derived_names(name: str, max_replicas: int) -> list[tuple[str, str, tuple[int, str]]]:
    """Every object name made from the set's name, its kind and its (length limit, reason), at the largest size:
    for max_replicas pods and with replication, whatever the set runs now, so that scaling up later never meets
    a name the cluster refuses."""
    last = max_replicas - 1
    return [
        (name, "the primary StatefulSet", _STATEFULSET),
        (standby_set(name), "the standby StatefulSet", _STATEFULSET),
        (standby_pod(name, last), "a standby pod", _POD),
        (pod_name(name, last), "a pod with replication off", _POD),
        (name, "the read-write Service", _SERVICE),
        (read_only_service(name), "the read-only Service", _SERVICE),
        (headless_service(name), "the headless Service", _SERVICE),
        (backup_job(name), "the dump CronJob", _CRONJOB),
        (credentials_secret(name), "the credentials Secret", _SUBDOMAIN),
        (scripts_config_map(name), "the scripts ConfigMap", _SUBDOMAIN),
        (tls_secret(name), "the TLS Secret", _SUBDOMAIN),
        (dumps_claim(name), "the dumps PersistentVolumeClaim", _SUBDOMAIN),
        (dumps_s3_secret(name), "the dump S3 Secret", _SUBDOMAIN),
        (wal_job(name), "the base-backup CronJob", _CRONJOB),
        (wal_s3_secret(name), "the WAL archive's S3 Secret", _SUBDOMAIN),
        (claim_name(standby_pod(name, last)), "a data PersistentVolumeClaim", _SUBDOMAIN),
    ]


def name_too_long(name: str, max_replicas: int) -> str | None:
    """Why the set's name is too long for one of the names made from it (the tightest limit), or None."""
    over = [
        (limit - (len(obj) - len(name)), obj, kind, why)
        for obj, kind, (limit, why) in derived_names(name, max_replicas)
        if len(obj) > limit
    ]
    if not over:
        return None
    allowed, obj, kind, why = min(over)
    return f"a name of at most {allowed} characters: it makes {kind} {obj} ({len(obj)} characters), and {why}"
